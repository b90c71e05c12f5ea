#include "token/imds_token_upstream.h"

#include <cerrno>

#include <nlohmann/json.hpp>

#include "token/retry_policy.h"
#include "token/token_json.h"

namespace podid {

UpstreamResult to_upstream_result(const ImdsResponse& response, int64_t now) {
    UpstreamResult out;
    out.status = static_cast<int>(response.status);
    out.retry_after = parse_retry_after(response.retry_after);
    if (response.status != 200) {
        out.body = response.body;
        return out;
    }
    auto token = parse_token_json(response.body, now);
    if (!token) {
        // A 200 without a usable token is IMDS misbehaving: report it as a bad gateway (retryable)
        // and never echo the body, which may hold part of a token.
        out.status = 502;
        out.detail = token.error().message;
        out.body =
            nlohmann::json{{"error", "bad_gateway"},
                           {"error_description", "IMDS returned an unusable token response: " + token.error().message}}
                .dump();
        return out;
    }
    out.token = std::move(*token);
    return out;
}

ImdsTokenUpstream::ImdsTokenUpstream(ImdsClient& client, std::function<int64_t()> now)
    : client_(client), now_(std::move(now)) {}

boost::asio::awaitable<UpstreamResult> ImdsTokenUpstream::fetch(const TokenKey& key) {
    auto response = co_await client_.get_token(key);
    if (!response) {
        UpstreamResult out;
        out.timed_out = response.error().code == ETIMEDOUT;
        out.detail = response.error().message;
        co_return out;
    }
    co_return to_upstream_result(*response, now_());
}

}  // namespace podid
