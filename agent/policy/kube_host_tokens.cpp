#include "policy/kube_host_tokens.h"

#include "policy/kube_bindings.h"

namespace podid {

boost::asio::awaitable<std::optional<Binding>> KubeHostTokens::binding_of(const std::string& ns,
                                                                          const std::string& name) {
    auto pod = state_.pod_by_name(ns, name);
    if (!pod)
        co_return std::nullopt;
    co_return resolve_kube_binding(*pod, *state_.snapshot(), options_);
}

}  // namespace podid
