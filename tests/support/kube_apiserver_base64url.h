// base64url without padding (RFC 4648 §5, RFC 7515 §2): the API-server double's list continue tokens, and the
// JWTs and JWKS of its service-account token issuer.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace podid::test::kube {

std::string base64url_encode(std::string_view bytes);
// nullopt for a character outside the base64url alphabet (padding included) or an impossible length.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace podid::test::kube
