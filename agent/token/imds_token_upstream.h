// TokenUpstream backed by the node's IMDS: one attempt per call, answer turned into an UpstreamResult.
#pragma once

#include <functional>

#include "token/imds_client.h"
#include "token/token_upstream.h"

namespace podid {

class ImdsTokenUpstream : public TokenUpstream {
public:
    // `now` gives epoch seconds (used when IMDS sends only expires_in). `client` must outlive this.
    ImdsTokenUpstream(ImdsClient& client, std::function<int64_t()> now);
    boost::asio::awaitable<UpstreamResult> fetch(const TokenKey& key) override;

private:
    ImdsClient& client_;
    std::function<int64_t()> now_;
};

// Turns one IMDS answer into an UpstreamResult (pure; the adapter's logic, tested on its own).
UpstreamResult to_upstream_result(const ImdsResponse& response, int64_t now);

}  // namespace podid
