// URL pieces shared by the HTTP clients (IMDS, Kubernetes API).
#pragma once

#include <string>
#include <string_view>

namespace podid {

// RFC 3986: every byte but the unreserved characters (A-Z a-z 0-9 - . _ ~) becomes %XX (upper case).
std::string percent_encode(std::string_view text);

}  // namespace podid
