// Caller resolution without Kubernetes: origin -> cgroup path -> kubelet shape (if any).
// The Kubernetes mode wraps this and adds the pod object from the API-server watch.
#pragma once

#include "caller/cgroup_paths.h"
#include "http/server.h"

namespace podid {

// Fills cgroup_path and pod_ref from the origin; never waits.
Caller resolve_local(CgroupPathResolver& paths, std::optional<Origin> origin);

class LocalCallerResolver : public CallerResolver {
public:
    explicit LocalCallerResolver(CgroupPathResolver& paths) : paths_(paths) {}
    boost::asio::awaitable<Caller> resolve(std::optional<Origin> origin, bool may_wait) override;

private:
    CgroupPathResolver& paths_;
};

}  // namespace podid
