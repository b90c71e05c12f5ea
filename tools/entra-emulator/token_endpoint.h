// POST /{tenant}/oauth2/v2.0/token with grant_type=client_credentials: the request + the directory + the
// issuer keys -> Entra's answer. A coroutine only because a federated assertion may need the issuer's JWKS
// fetched; everything else is decided by the pure checks in client_credentials.h and federation.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "directory.h"
#include "errors.h"
#include "http.h"
#include "imds-emulator/jwt.h"
#include "issuer_keys.h"

namespace podid::entra_emulator {

struct TokenEndpointContext {
    const Directory& directory;
    const emulator::TokenSigner& signer;
    IssuerKeySource& issuer_keys;
    std::string origin;  // "https://host:port" as the client addressed the emulator (certificate assertion aud)
    int64_t now = 0;
    int64_t token_lifetime = 3599;
    int64_t clock_skew = 300;
};

struct TokenOutcome {
    std::optional<EntraError> error;
    std::string body;        // on success: the JSON answer
    std::string client_id;   // as sent ("" when absent)
    std::string credential;  // "secret", "certificate", "federated" or "none"
};

// The client id a token request names (form field, else HTTP Basic user), for accounting before validation.
std::string requested_client_id(const HttpRequest& req);

boost::asio::awaitable<TokenOutcome> answer_token_request(const HttpRequest& req, std::string tenant_segment,
                                                          TokenEndpointContext ctx);

}  // namespace podid::entra_emulator
