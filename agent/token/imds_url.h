// The node's IMDS base URL (--imds-url), parsed once at startup.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace podid {

struct ImdsUrl {
    std::string host;  // IP literal (IPv6 without brackets) or DNS name
    uint16_t port = 80;
    std::string host_header;  // what goes into Host: "169.254.169.254", "127.0.0.1:8080", "[::1]:80"
};

// Accepts only `http://host[:port][/]`: IMDS is plain HTTP, and a path, query, user info or
// fragment would be silently dropped, so they are rejected instead.
Result<ImdsUrl> parse_imds_url(std::string_view url);

}  // namespace podid
