// Kubernetes mode's caller stage: the local resolution (cgroup path, kubelet shape) plus the pod object from the
// node-scoped watch. A token request from a pod the watch has not delivered yet waits for its ADDED event (bounded
// by --pod-wait).
#pragma once

#include <chrono>
#include <string>

#include "caller/caller_resolver.h"
#include "caller/cgroup_paths.h"
#include "kube/state.h"

namespace podid {

class KubeCallerResolver : public CallerResolver {
public:
    KubeCallerResolver(CgroupPathResolver& paths, std::string kubepods_root, kube::KubeState& state,
                       std::chrono::milliseconds pod_wait)
        : paths_(paths), kubepods_root_(std::move(kubepods_root)), state_(state), pod_wait_(pod_wait) {}

    boost::asio::awaitable<Caller> resolve(std::optional<Origin> origin, bool may_wait) override;
    // Later requests on the same connection: the cgroup and its kubelet shape cannot change, the pod object can
    // (labels, or it arrives late), so only the pod is read again, from memory.
    boost::asio::awaitable<Caller> refresh(Caller cached, bool may_wait) override;

private:
    CgroupPathResolver& paths_;
    std::string kubepods_root_;
    kube::KubeState& state_;
    std::chrono::milliseconds pod_wait_;
};

}  // namespace podid
