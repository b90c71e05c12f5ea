// Token values never appear in logs or error messages; this names one without revealing it.
#pragma once

#include <string>
#include <string_view>

namespace podid {

// First 16 hex digits of SHA-256(token) (the audit log's token_sha256): enough to tell tokens apart in logs, useless to
// an attacker.
std::string token_fingerprint(std::string_view access_token);

}  // namespace podid
