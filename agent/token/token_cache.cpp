#include "token/token_cache.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "token/retry_policy.h"
#include "token/shared_result.h"
#include "token/token_body.h"
#include "token/upstream_error.h"

namespace podid {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

struct KeyHash {
    std::size_t operator()(const TokenKey& key) const {
        std::hash<std::string> h;
        std::size_t seed = h(key.resource);
        auto mix = [&](const std::string& part) {
            seed ^= h(part) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
        };
        for (const auto* part : {&key.client_id, &key.msi_res_id, &key.object_id})
            mix(*part);
        if (key.entra)  // the fields that tell Entra keys apart; equality compares them all
            for (const auto* part : {&key.entra->tenant, &key.entra->pod_uid, &key.entra->secret_name})
                mix(*part);
        return seed;
    }
};

// One upstream fetch for one key, possibly several attempts; everyone waiting for the key awaits it.
struct Flight {
    bool background = false;
    SharedResult<TokenOutcome> done;
};

struct Entry {
    std::shared_ptr<const Token> token;
    int64_t fetched_ms = 0;
    int64_t refresh_at_ms = 0;
    std::shared_ptr<Flight> flight;
    std::optional<int64_t> last_forced_ms;
    std::optional<TokenOutcome> negative;
    int64_t negative_until_ms = 0;
};

struct FetchEnd {
    TokenOutcome outcome;
    bool remember_error = false;  // a non-retryable answer, cached as negative
    // Gave up on a retryable answer before the retry policy's next attempt was due (the deadline came first):
    // no new fetch before then, so the policy's delay, and any Retry-After, holds across fetches too.
    int64_t hold_until_ms = 0;
};

constexpr int64_t kSweepEveryMs = 60'000;

int64_t to_ms(int64_t epoch_seconds) { return epoch_seconds * 1000; }

TokenOutcome token_outcome(std::shared_ptr<const Token> token) {
    TokenOutcome out;
    out.token = std::move(token);
    return out;
}

}  // namespace

struct CachingTokenProvider::State {
    asio::any_io_executor executor;
    std::shared_ptr<TokenUpstream> upstream;
    TokenCacheOptions options;
    UpstreamLimiter limiter;

    mutable std::mutex mu;
    std::unordered_map<TokenKey, Entry, KeyHash> entries;
    TokenCacheStats counters;
    std::mt19937_64 rng;
    int64_t last_sweep_ms = 0;

    State(asio::any_io_executor ex, std::shared_ptr<TokenUpstream> up, TokenCacheOptions opts)
        : executor(std::move(ex)),
          upstream(std::move(up)),
          options(std::move(opts)),
          limiter(options.limits),
          rng(options.jitter_seed ? options.jitter_seed : std::random_device{}()) {}

    int64_t now() const { return options.now_ms(); }

    bool usable(const Entry& entry, int64_t now_ms) const {
        return entry.token && to_ms(entry.token->expires_on) - now_ms > milliseconds(options.safety_margin).count();
    }

    // Caller holds mu.
    int64_t refresh_time(const Token& token, int64_t now_ms) {
        const int64_t expires_ms = to_ms(token.expires_on);
        const double lifetime = static_cast<double>(std::max<int64_t>(0, expires_ms - now_ms));
        std::uniform_real_distribution<double> spread(-options.refresh_jitter, options.refresh_jitter);
        const double fraction = std::clamp(options.refresh_fraction * (1.0 + spread(rng)), 0.0, 1.0);
        const int64_t at = expires_ms - static_cast<int64_t>(lifetime * fraction);
        return std::min(at, expires_ms - milliseconds(options.safety_margin).count());
    }

    // Caller holds mu. Drops entries with nothing left worth remembering.
    void sweep(int64_t now_ms) {
        if (now_ms - last_sweep_ms < kSweepEveryMs)
            return;
        last_sweep_ms = now_ms;
        std::erase_if(entries, [&](const auto& item) {
            const Entry& e = item.second;
            return !e.flight && (!e.token || to_ms(e.token->expires_on) <= now_ms) &&
                   (!e.negative || now_ms >= e.negative_until_ms) &&
                   (!e.last_forced_ms || now_ms - *e.last_forced_ms >= milliseconds(options.bypass_interval).count());
        });
    }

    void record_attempt(int status, double seconds) {
        {
            std::lock_guard lock(mu);
            ++counters.upstream_by_status[status];
        }
        if (options.on_upstream)
            options.on_upstream(status, seconds);
    }
};

namespace {

using State = CachingTokenProvider::State;

// One fetch with retries. Client-facing fetches retry what IMDS says is transient until their
// deadline; background refreshes retry everything until the cached token is no longer servable.
asio::awaitable<FetchEnd> fetch_with_retry(std::shared_ptr<State> s, TokenKey key, bool background,
                                           int64_t deadline_ms) {
    for (int retry = 0;; ++retry) {
        UpstreamResult result;
        {
            auto permit = co_await s->limiter.acquire();
            const auto started = std::chrono::steady_clock::now();
            result = co_await s->upstream->fetch(key);
            const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
            s->record_attempt(result.status, took.count());
        }
        if (result.token && to_ms(result.token->expires_on) <= s->now()) {
            // Never hand out an expired token, even a fresh one.
            result.token.reset();
            result.status = 502;
            result.body.clear();
        }
        if (result.token) {
            // Rendered once here, so that serving the token from cache never serialises JSON or hashes it again.
            auto token = std::make_shared<Token>(std::move(*result.token));
            token->rendering = render_once(*token);
            co_return FetchEnd{token_outcome(std::move(token)), false};
        }

        if (!background && !is_retryable_status(result.status))
            co_return FetchEnd{upstream_error_outcome(result), true};
        const milliseconds delay = backoff_delay(retry, result.retry_after);
        if (const int64_t next = s->now() + delay.count(); next >= deadline_ms)
            co_return FetchEnd{upstream_error_outcome(result), false, next};
        co_await s->options.sleep(delay);
    }
}

asio::awaitable<void> run_flight(std::shared_ptr<State> s, TokenKey key, std::shared_ptr<Flight> flight,
                                 int64_t deadline_ms) {
    FetchEnd end;
    try {
        end = co_await fetch_with_retry(s, key, flight->background, deadline_ms);
    } catch (const std::exception&) {
        // Upstreams must not throw; if one does, its clients get a plain 503 and the key recovers.
        end.outcome = upstream_error_outcome(UpstreamResult{});
    }
    // The entry is gone only when forget() dropped it during the fetch: the waiters get the outcome, the cache
    // keeps nothing (a deleted pod's token must not come back).
    bool stored = false;
    if (std::lock_guard lock(s->mu); s->entries.contains(key)) {
        const int64_t now = s->now();
        Entry& entry = s->entries[key];
        if (entry.flight == flight)
            entry.flight.reset();
        if (end.outcome.token) {
            entry.token = end.outcome.token;
            entry.fetched_ms = now;
            entry.refresh_at_ms = s->refresh_time(*entry.token, now);
            entry.negative.reset();
            stored = true;
        } else if (end.remember_error) {
            entry.negative = end.outcome;
            entry.negative_until_ms = now + milliseconds(s->options.negative_ttl).count();
        } else if (end.hold_until_ms > now) {
            // Until the next attempt is due, clients get this answer (IMDS's own 429/5xx shape) at once.
            entry.negative = end.outcome;
            entry.negative_until_ms = end.hold_until_ms;
        }
        if (flight->background)
            ++(end.outcome.token ? s->counters.refreshes_ok : s->counters.refreshes_failed);
    }
    if (stored && s->options.on_stored)
        s->options.on_stored();
    flight->done.set(std::move(end.outcome));
}

// Caller holds s->mu.
std::shared_ptr<Flight> start_flight(const std::shared_ptr<State>& s, const TokenKey& key, Entry& entry,
                                     bool background, int64_t deadline_ms) {
    auto flight = std::make_shared<Flight>();
    flight->background = background;
    entry.flight = flight;
    asio::co_spawn(s->executor, run_flight(s, key, flight, deadline_ms), asio::detached);
    return flight;
}

asio::awaitable<void> sleep_on_current_executor(milliseconds delay) {
    asio::steady_timer timer(co_await asio::this_coro::executor, delay);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace

CachingTokenProvider::CachingTokenProvider(asio::any_io_executor executor, std::shared_ptr<TokenUpstream> upstream,
                                           TokenCacheOptions options) {
    if (!options.now_ms)
        options.now_ms = [] {
            return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        };
    if (!options.sleep)
        options.sleep = sleep_on_current_executor;
    state_ = std::make_shared<State>(std::move(executor), std::move(upstream), std::move(options));
}

CachingTokenProvider::CachingTokenProvider(asio::any_io_executor executor, TokenUpstream& upstream,
                                           TokenCacheOptions options)
    : CachingTokenProvider(std::move(executor), std::shared_ptr<TokenUpstream>(&upstream, [](TokenUpstream*) {}),
                           std::move(options)) {}

CachingTokenProvider::~CachingTokenProvider() = default;

asio::awaitable<TokenOutcome> CachingTokenProvider::get(TokenKey key, bool bypass_cache) {
    auto s = state_;
    const int64_t margin_ms = milliseconds(s->options.safety_margin).count();
    for (int round = 0;; ++round) {
        std::shared_ptr<Flight> flight;
        bool shared = false;
        std::optional<TokenOutcome> immediate;
        {
            std::lock_guard lock(s->mu);
            const int64_t now = s->now();
            s->sweep(now);
            Entry& entry = s->entries[key];
            const bool valid = s->usable(entry, now);
            const bool force = bypass_cache && round == 0 &&
                               (!entry.last_forced_ms ||
                                now - *entry.last_forced_ms >= milliseconds(s->options.bypass_interval).count());
            // A bypass request joins a refresh already under way rather than taking the old token.
            const bool join_refresh = bypass_cache && entry.flight;
            if (valid && !force && !join_refresh) {
                ++s->counters.hits;
                if (now >= entry.refresh_at_ms && !entry.flight)
                    start_flight(s, key, entry, /*background=*/true, to_ms(entry.token->expires_on) - margin_ms);
                immediate = token_outcome(entry.token);
                immediate->cache_hit = true;
            } else if (!force && entry.negative && now < entry.negative_until_ms) {
                ++s->counters.negative_hits;
                immediate = entry.negative;
                immediate->cache_hit = true;
            } else if (entry.flight) {
                flight = entry.flight;
                shared = true;
                ++s->counters.shared;
                if (force)
                    entry.last_forced_ms = now;  // the running fetch is the forced refresh
            } else {
                ++(force ? s->counters.forced : s->counters.misses);
                if (force)
                    entry.last_forced_ms = now;
                flight = start_flight(s, key, entry, /*background=*/false, now + s->options.request_deadline.count());
            }
        }
        if (immediate)
            co_return std::move(*immediate);

        TokenOutcome outcome = co_await flight->done.wait();
        outcome.shared = shared;
        if (outcome.token)
            co_return outcome;
        {
            // Upstream failures never reach clients while a servable token exists (a failed forced
            // refresh, or a background refresh that failed while this caller waited on it).
            std::lock_guard lock(s->mu);
            auto it = s->entries.find(key);
            if (it != s->entries.end() && s->usable(it->second, s->now())) {
                outcome.token = it->second.token;
                co_return outcome;
            }
        }
        // A background refresh gives up only when the token is about to expire; this caller still
        // deserves a client-facing fetch with its own retries.
        if (flight->background && round == 0)
            continue;
        co_return outcome;
    }
}

TokenCacheStats CachingTokenProvider::stats() const {
    std::lock_guard lock(state_->mu);
    TokenCacheStats out = state_->counters;
    out.entries = state_->entries.size();
    return out;
}

std::size_t CachingTokenProvider::forget(const std::function<bool(const TokenKey&)>& matches) {
    std::size_t dropped = 0;
    bool dropped_token = false;
    {
        std::lock_guard lock(state_->mu);
        dropped = std::erase_if(state_->entries, [&](const auto& item) {
            if (!matches(item.first))
                return false;
            dropped_token = dropped_token || item.second.token != nullptr;
            return true;
        });
    }
    // A persisted copy of a deleted pod's token should not outlive it for long either.
    if (dropped_token && state_->options.on_stored)
        state_->options.on_stored();
    return dropped;
}

std::vector<TokenCacheEntryInfo> CachingTokenProvider::entries() const {
    std::lock_guard lock(state_->mu);
    const int64_t now = state_->now();
    std::vector<TokenCacheEntryInfo> out;
    out.reserve(state_->entries.size());
    for (const auto& [key, entry] : state_->entries) {
        TokenCacheEntryInfo info;
        info.key = key;
        if (entry.token) {
            info.expires_on = entry.token->expires_on;
            info.last_refresh = entry.fetched_ms / 1000;
            info.refresh_at = entry.refresh_at_ms / 1000;
        }
        info.fetching = entry.flight != nullptr;
        info.negative = entry.negative && now < entry.negative_until_ms;
        out.push_back(std::move(info));
    }
    return out;
}

std::vector<CachedToken> CachingTokenProvider::snapshot() const {
    std::lock_guard lock(state_->mu);
    const int64_t now = state_->now();
    std::vector<CachedToken> out;
    for (const auto& [key, entry] : state_->entries) {
        if (!state_->usable(entry, now))
            continue;
        CachedToken item{key, *entry.token};
        item.token.rendering.reset();  // the cache's own, made again by seed()
        out.push_back(std::move(item));
    }
    return out;
}

std::size_t CachingTokenProvider::seed(std::vector<CachedToken> tokens) {
    std::lock_guard lock(state_->mu);
    const int64_t now = state_->now();
    std::size_t taken = 0;
    for (auto& item : tokens) {
        if (auto it = state_->entries.find(item.key); it != state_->entries.end()) {
            const Entry& present = it->second;
            if (present.token || present.flight || (present.negative && now < present.negative_until_ms))
                continue;
        }
        if (to_ms(item.token.expires_on) - now <= milliseconds(state_->options.safety_margin).count())
            continue;  // expired, or too close to expiry to be served
        // As run_flight() stores a fetched token: rendered once, refresh-ahead from the life it has left.
        auto token = std::make_shared<Token>(std::move(item.token));
        token->rendering = render_once(*token);
        Entry& entry = state_->entries[item.key];
        entry.token = std::move(token);
        entry.fetched_ms = now;
        entry.refresh_at_ms = state_->refresh_time(*entry.token, now);
        ++taken;
    }
    return taken;
}

}  // namespace podid
