// Where the cache gets tokens from: the node's IMDS in the agent (ImdsTokenUpstream), a fake in tests.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "token/token.h"

namespace podid {

struct UpstreamResult {
    // The HTTP status IMDS answered with; 0 when there was no answer (connect failure, reset,
    // timeout). A 200 whose body is not a usable token is reported as 502.
    int status = 0;
    std::optional<Token> token;  // set exactly when status == 200
    std::string body;            // IMDS's error body (never a token)
    std::optional<std::chrono::seconds> retry_after;
    bool timed_out = false;        // status 0 because the per-request timeout fired
    std::string detail;            // transport error, for logs (never a token)
    std::optional<Reason> reason;  // set by upstreams that can say why (Entra ID)
};

class TokenUpstream {
public:
    virtual ~TokenUpstream() = default;
    // Must not throw; one attempt, no retries (the cache owns retry policy and limits).
    virtual boost::asio::awaitable<UpstreamResult> fetch(const TokenKey& key) = 0;
};

}  // namespace podid
