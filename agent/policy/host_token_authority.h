// The binding stage's answer for /host/token: may this caller ask for another pod's token, and what is that pod
// bound to.
#pragma once

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "caller/caller.h"
#include "policy/binding.h"

namespace podid {

// /host/token (Secrets Store CSI driver): is `caller` allowed to ask for pod ns/name, and what is that
// pod bound to. Absent in standalone mode (then /host/token answers 404).
class HostTokenAuthority {
public:
    virtual ~HostTokenAuthority() = default;
    virtual bool authorised(const Caller& caller) const = 0;
    virtual boost::asio::awaitable<std::optional<Binding>> binding_of(const std::string& ns,
                                                                      const std::string& name) = 0;
};

}  // namespace podid
