// IMDS's token response body, made once per token and served many times. Only expires_in changes from one
// request to the next, so the JSON is kept as the text on either side of its value and the value is spliced in:
// no JSON serialisation (of a ~1.6 KB body, mostly the access token) on the serving path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "token/token.h"

namespace podid {

class TokenBody {
public:
    // `client_id` and `resource` as the client is to see them (the caller's fallbacks already applied).
    // `host_shape`: /host/token's {"token":{...},"clientid":"..."} instead of IMDS's flat object.
    TokenBody(const Token& token, std::string_view client_id, std::string_view resource, bool host_shape);

    // IMDS's byte format: every field a JSON string, in IMDS's order; expires_in = max(0, expires_on - now).
    std::string at(int64_t now) const;

private:
    std::string head_;  // everything up to and including expires_in's opening quote
    std::string tail_;  // from its closing quote on
    int64_t expires_on_ = 0;
};

// What the token cache attaches to a token it stores (Token::rendering): both shapes, rendered with the token's own
// client_id and resource, and the fingerprint the audit log names the token by.
struct TokenRendering {
    std::string client_id;
    std::string resource;
    std::string fingerprint;  // token_fingerprint(access_token)
    TokenBody imds;
    TokenBody host;
};

std::shared_ptr<const TokenRendering> render_once(const Token& token);

}  // namespace podid
