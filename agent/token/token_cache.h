// The token provider pods are served from: a per-identity cache in front of the node's IMDS.
//
// Why it exists: NMI, which podid replaces, turned every pod request into an IMDS request, and IMDS
// answers 429 beyond 20 requests/s or 5 concurrent per VM. Here a token is fetched once, refreshed
// in the background before it runs low, and concurrent requests for one identity share one call.
//
// Rules (times in the injected clock):
//  - served from cache while more than `safety_margin` of its life is left; never inside it;
//  - once less than half of its lifetime (±`refresh_jitter`) remains, the next request starts one
//    background refresh while the cached token keeps being served; a failing background refresh
//    retries with backoff until the token enters the safety margin; its failures never reach clients;
//  - single-flight per key; at most `limits.max_concurrent` upstream calls and `limits.max_per_window`
//    starts per window, waiting in line;
//  - a miss retries 404/410/429/5xx and transport failures with IMDS's backoff (honouring
//    Retry-After) until `request_deadline`; giving up passes on the last upstream status and body, or
//    503 `service_unavailable` (no answer) / 504 `gateway_timeout` (the last attempt timed out);
//  - other upstream errors (400 "Identity not found", 401, 403, ...) are passed through and
//    remembered for `negative_ttl` so a misconfigured pod cannot storm IMDS;
//  - bypass_cache=true refreshes at most once per key per `bypass_interval` (single-flight too).
//
// Restarts: snapshot() and seed() carry the stored tokens over an agent restart (token/token_cache_file.h writes
// them to a root-only file), so a restarted agent serves them without asking IMDS again.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "token/token.h"
#include "token/token_upstream.h"
#include "token/upstream_limiter.h"

namespace podid {

struct TokenCacheOptions {
    std::chrono::seconds safety_margin{60};
    double refresh_fraction = 0.5;  // refresh once less than this fraction of the lifetime remains
    double refresh_jitter = 0.1;    // ± relative jitter on that fraction, so keys do not refresh in lock step
    std::chrono::milliseconds request_deadline{20000};
    std::chrono::seconds negative_ttl{5};
    std::chrono::seconds bypass_interval{30};
    LimiterOptions limits;
    // Epoch time in milliseconds; default: the system clock. Tests move it by hand.
    std::function<int64_t()> now_ms;
    // Backoff sleeps; default: a steady_timer on the calling executor. Tests can make sleeping
    // advance their clock instead of waiting.
    std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)> sleep;
    // Called after every upstream attempt: HTTP status (0 = no answer) and its duration in seconds.
    std::function<void(int status, double seconds)> on_upstream;
    // Called after the stored tokens changed: a fetch or a refresh stored a new token, or forget() dropped one (not
    // by seed()). Called on the fetch's executor or forget()'s caller, never with the cache's lock held: it should
    // only schedule work (token/token_cache_file.h's TokenCachePersister writes the file later, once per burst).
    std::function<void()> on_stored;
    uint64_t jitter_seed = 0;  // 0 = seed from std::random_device
};

struct TokenCacheStats {
    uint64_t hits = 0;                           // answered from cache, no waiting
    uint64_t misses = 0;                         // no usable token: started an upstream fetch
    uint64_t shared = 0;                         // waited on a fetch another request started (single-flight)
    uint64_t forced = 0;                         // bypass_cache refreshes started
    uint64_t negative_hits = 0;                  // answered from the remembered upstream error
    uint64_t refreshes_ok = 0;                   // background refreshes that got a new token
    uint64_t refreshes_failed = 0;               // background refreshes that gave up
    std::map<int, uint64_t> upstream_by_status;  // per attempt; 0 = no answer
    std::size_t entries = 0;
};

struct TokenCacheEntryInfo {
    TokenKey key;
    int64_t expires_on = 0;    // epoch seconds, 0 without a token
    int64_t last_refresh = 0;  // epoch seconds of the last successful fetch, 0 if never
    int64_t refresh_at = 0;    // epoch seconds when refresh-ahead starts
    bool fetching = false;     // an upstream fetch is in flight
    bool negative = false;     // an upstream error is being remembered
};

// A stored token and the key it answers, for carrying the cache over a restart. `token.rendering` is left empty.
struct CachedToken {
    TokenKey key;
    Token token;
};

class CachingTokenProvider : public TokenProvider {
public:
    // Upstream fetches and background refreshes run on `executor`; get() may be co_awaited from
    // any executor or thread.
    CachingTokenProvider(boost::asio::any_io_executor executor, std::shared_ptr<TokenUpstream> upstream,
                         TokenCacheOptions options = {});
    // Non-owning: `upstream` must outlive this object and every fetch it started.
    CachingTokenProvider(boost::asio::any_io_executor executor, TokenUpstream& upstream,
                         TokenCacheOptions options = {});
    ~CachingTokenProvider() override;

    boost::asio::awaitable<TokenOutcome> get(TokenKey key, bool bypass_cache) override;

    TokenCacheStats stats() const;
    // Drops every entry whose key matches (a deleted pod's federated tokens); a fetch in flight for one still
    // answers its waiters but stores nothing. Returns how many were dropped.
    std::size_t forget(const std::function<bool(const TokenKey&)>& matches);
    std::vector<TokenCacheEntryInfo> entries() const;  // for the admin endpoint; never token values

    // Every stored token that is still servable (more than `safety_margin` of its life left), with its key; no
    // fetches in flight, no remembered errors.
    std::vector<CachedToken> snapshot() const;
    // Stores tokens as if they had just been fetched (rendered once, refresh-ahead from their remaining life), for a
    // restarted agent. Skips tokens that are expired or inside `safety_margin`, and keys the cache already holds
    // something for (a token, a fetch in flight, a remembered error). Returns how many were stored. Does not call
    // on_stored: the tokens came from where it would write them.
    std::size_t seed(std::vector<CachedToken> tokens);

    struct State;  // shared with in-flight fetches, which may outlive this object

private:
    std::shared_ptr<State> state_;
};

}  // namespace podid
