// Caller resolution without Kubernetes: origin -> cgroup path -> kubelet shape (if any).
// The Kubernetes mode wraps this and adds the pod object from the API-server watch.
#pragma once

#include "caller/caller_resolver.h"
#include "caller/cgroup_paths.h"

namespace podid {

// Fills cgroup_path and pod_ref from the origin; never waits. Only cgroups below `kubepods_root`
// (relative to the mount, e.g. "/kubepods.slice") are parsed as pods: a look-alike directory elsewhere
// (a container that can write cgroupfs) must not pass for a pod.
Caller resolve_local(CgroupPathResolver& paths, const std::string& kubepods_root, std::optional<Origin> origin);

class LocalCallerResolver : public CallerResolver {
public:
    LocalCallerResolver(CgroupPathResolver& paths, std::string kubepods_root)
        : paths_(paths), kubepods_root_(std::move(kubepods_root)) {}
    boost::asio::awaitable<Caller> resolve(std::optional<Origin> origin, bool may_wait) override;
    // Nothing here changes during a connection (its cgroup id is fixed at connect; ids are never reused).
    boost::asio::awaitable<Caller> refresh(Caller cached, bool may_wait) override;

private:
    CgroupPathResolver& paths_;
    std::string kubepods_root_;
};

}  // namespace podid
