// Where the kernel's origin record for an accepted connection comes from (the datapath in the agent,
// a fake in handler tests).
#pragma once

#include <sys/socket.h>

#include <optional>

#include "datapath/origin.h"

namespace podid {

class OriginSource {
public:
    virtual ~OriginSource() = default;
    // The connection's two ends as accept() and the listener's bound address give them: the server already has
    // both, so no getpeername()/getsockname() is spent per connection.
    virtual std::optional<Origin> origin_of(const sockaddr_storage& peer, const sockaddr_storage& local) const = 0;
};

}  // namespace podid
