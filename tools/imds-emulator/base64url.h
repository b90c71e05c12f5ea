// base64url without padding (RFC 7515 §2), the only encoding JWTs and JWKS use.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace podid::emulator {

std::string base64url_encode(std::string_view bytes);
// nullopt when `text` holds a character outside the base64url alphabet or has an impossible length.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace podid::emulator
