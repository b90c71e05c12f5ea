// IPv4 text both ways: format_ip4 is on every accepted connection's path, parse_ip4 reads --node-ip.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "common/result.h"

namespace podid {

// Converts "a.b.c.d" to network order; error on anything else.
Result<uint32_t> parse_ip4(const std::string& text);
std::string format_ip4(uint32_t network_order);
// "a.b.c.d:port" or "v6addr:port" of an IPv4 or IPv6 socket address; "?:0" for any other family.
std::string format_sockaddr(const sockaddr_storage& address);

}  // namespace podid
