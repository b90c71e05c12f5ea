// Tokens and the interface of the token provider (cache + single-flight + upstream IMDS).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "common/reason.h"
#include "policy/binding.h"

namespace podid {

// Which identity to ask for, and where (the node's IMDS, or Entra ID when `entra` is set). Exactly one selector field
// or none (none = the node's system-assigned/default identity, used only for node-identity passthrough).
struct TokenKey {
    std::string client_id;
    std::string msi_res_id;
    std::string object_id;
    std::string resource;  // decoded App ID URI, e.g. "https://vault.azure.net"
    // Set for identities whose tokens come from Entra ID (federation, service principals), not the node's IMDS.
    std::optional<EntraRef> entra{};

    bool operator==(const TokenKey&) const = default;
    std::string to_string() const;  // for logs: "client_id=...;resource=..."
};

struct TokenRendering;  // token/token_body.h

struct Token {
    std::string access_token;
    std::string client_id;
    std::string resource;
    std::string token_type = "Bearer";
    int64_t expires_on = 0;      // epoch seconds
    int64_t not_before = 0;      // epoch seconds
    int64_t ext_expires_in = 0;  // seconds, as IMDS reported it
    // Set by the token cache when it stores the token: its response bodies and fingerprint, made once. Empty on
    // tokens from anywhere else (they are rendered per use).
    std::shared_ptr<const TokenRendering> rendering;
};

struct TokenOutcome {
    // Set on success. Shared with the cache: serving a cached token copies a pointer, not the token (~1.5 KB).
    std::shared_ptr<const Token> token;
    int status = 200;        // HTTP status to give the client when token is empty (upstream's, or 503/504)
    std::string error_body;  // IMDS-shaped JSON error body when token is empty
    bool cache_hit = false;  // served from cache without waiting for upstream
    bool shared = false;     // waited on another request's upstream call (single-flight)
    // Why there is no token, when the upstream knew better than its status (Entra ID's answers); the audit log
    // and metrics use it instead of error_upstream / error_unavailable.
    std::optional<Reason> reason;
};

class TokenProvider {
public:
    virtual ~TokenProvider() = default;
    // Never throws; errors come back as an IMDS-shaped outcome.
    virtual boost::asio::awaitable<TokenOutcome> get(TokenKey key, bool bypass_cache) = 0;
};

}  // namespace podid
