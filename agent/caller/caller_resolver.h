// The caller stage's interface: the kernel's origin record in, who is calling out.
#pragma once

#include <optional>

#include <boost/asio/awaitable.hpp>

#include "caller/caller.h"

namespace podid {

// Resolves the caller (cgroup path, pod) from the kernel's origin record; may wait for the pod
// directory (Kubernetes mode) when `may_wait` — never for probes.
class CallerResolver {
public:
    virtual ~CallerResolver() = default;
    virtual boost::asio::awaitable<Caller> resolve(std::optional<Origin> origin, bool may_wait) = 0;
    // The next request on a connection whose caller was already resolved: the origin is per connection, so only
    // what can change between requests needs looking at again. The default resolves everything again (always
    // correct); a resolver whose answer cannot change (standalone: cgroup path and kubelet shape only) returns
    // `cached` as is, and one with a pod directory may re-read only the pod, without touching cgroupfs.
    virtual boost::asio::awaitable<Caller> refresh(Caller cached, bool may_wait) {
        return resolve(std::move(cached.origin), may_wait);
    }
};

}  // namespace podid
