// Where the kernel's origin record for an accepted connection comes from (the datapath in the agent,
// a fake in handler tests).
#pragma once

#include <optional>

#include "caller/caller.h"

namespace podid {

class OriginSource {
public:
    virtual ~OriginSource() = default;
    virtual std::optional<Origin> origin_of(int accepted_fd) const = 0;
};

}  // namespace podid
