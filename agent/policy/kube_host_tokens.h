// /host/token for the Secrets Store CSI driver in Kubernetes mode: only callers allowed by --host-token-callers,
// and the named pod's own bindings, decided exactly as for the pod's own requests.
#pragma once

#include "kube/state.h"
#include "policy/host_token_authority.h"
#include "policy/host_token_policy.h"
#include "policy/kube_bindings.h"

namespace podid {

class KubeHostTokens : public HostTokenAuthority {
public:
    KubeHostTokens(HostTokenPolicy policy, kube::KubeState& state, KubeBindingOptions options = {})
        : policy_(std::move(policy)), state_(state), options_(std::move(options)) {}
    bool authorised(const Caller& caller) const override { return policy_.allows(caller); }
    boost::asio::awaitable<std::optional<Binding>> binding_of(const std::string& ns, const std::string& name) override;

private:
    HostTokenPolicy policy_;
    kube::KubeState& state_;
    KubeBindingOptions options_;
};

}  // namespace podid
