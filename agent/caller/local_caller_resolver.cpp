#include "caller/local_caller_resolver.h"

#include "caller/kubelet_cgroup.h"

namespace podid {

Caller resolve_local(CgroupPathResolver& paths, const std::string& kubepods_root, std::optional<Origin> origin) {
    Caller caller;
    caller.origin = std::move(origin);
    if (!caller.origin)
        return caller;
    // A cgroup removed since the connect leaves the path empty: bindings then match nothing (deny).
    if (auto path = paths.path_of(caller.origin->cgroup_id))
        caller.cgroup_path = *path;
    if (!caller.cgroup_path.empty())
        caller.pod_ref = parse_kubelet_cgroup(caller.cgroup_path, kubepods_root);
    return caller;
}

boost::asio::awaitable<Caller> LocalCallerResolver::resolve(std::optional<Origin> origin, bool may_wait) {
    co_return resolve_local(paths_, kubepods_root_, std::move(origin));
}

boost::asio::awaitable<Caller> LocalCallerResolver::refresh(Caller cached, bool) { co_return cached; }

}  // namespace podid
