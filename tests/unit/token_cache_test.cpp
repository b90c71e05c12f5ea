// CachingTokenProvider against a fake upstream and a hand-moved clock: no network.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "token/shared_result.h"
#include "token/token_body.h"
#include "token/token_cache.h"
#include "token/token_fingerprint.h"

namespace podid {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr int64_t kStartMs = 1'700'000'000'000;
constexpr int64_t kLifetimeS = 3600;

// The injected clock. In auto mode a backoff sleep moves time forward at once (and records how long
// it was asked to sleep); in manual mode sleepers wait until the test moves time past their wake-up.
struct FakeTime {
    std::atomic<int64_t> now{kStartMs};
    bool auto_advance = true;
    std::mutex mu;
    std::vector<milliseconds> sleeps;

    int64_t seconds() const { return now.load() / 1000; }
    void advance(milliseconds d) { now += d.count(); }

    asio::awaitable<void> sleep(milliseconds d) {
        {
            std::lock_guard lock(mu);
            sleeps.push_back(d);
        }
        if (auto_advance) {
            now += d.count();
            co_return;
        }
        const int64_t wake = now.load() + d.count();
        asio::steady_timer timer(co_await asio::this_coro::executor);
        while (now.load() < wake) {
            timer.expires_after(1ms);
            co_await timer.async_wait(asio::use_awaitable);
        }
    }

    std::vector<milliseconds> recorded() {
        std::lock_guard lock(mu);
        return sleeps;
    }
};

UpstreamResult ok_token(const std::string& value, int64_t expires_on) {
    UpstreamResult r;
    r.status = 200;
    r.token = Token{};
    r.token->access_token = value;
    r.token->expires_on = expires_on;
    return r;
}

UpstreamResult failure(int status, std::string body = "", std::optional<std::chrono::seconds> retry_after = {}) {
    UpstreamResult r;
    r.status = status;
    r.body = std::move(body);
    r.retry_after = retry_after;
    return r;
}

struct FakeUpstream : TokenUpstream {
    explicit FakeUpstream(FakeTime& t) : time(t) {}

    FakeTime& time;
    // Answer for call number `call` (0-based); default: a fresh one-hour token "tok-<call>".
    std::function<UpstreamResult(const TokenKey&, int call)> respond;
    milliseconds delay{0};
    std::shared_ptr<SharedResult<bool>> gate;  // when set, calls wait for it to open

    std::atomic<int> calls{0};
    std::atomic<int> in_flight{0};
    std::atomic<int> max_in_flight{0};
    std::mutex mu;
    std::vector<std::chrono::steady_clock::time_point> starts;

    asio::awaitable<UpstreamResult> fetch(const TokenKey& key) override {
        const int call = calls++;
        {
            std::lock_guard lock(mu);
            starts.push_back(std::chrono::steady_clock::now());
        }
        const int current = ++in_flight;
        int seen = max_in_flight.load();
        while (current > seen && !max_in_flight.compare_exchange_weak(seen, current)) {
        }
        if (delay > 0ms) {
            asio::steady_timer timer(co_await asio::this_coro::executor, delay);
            co_await timer.async_wait(asio::use_awaitable);
        }
        if (auto g = gate)
            co_await g->wait();
        --in_flight;
        if (respond)
            co_return respond(key, call);
        co_return ok_token("tok-" + std::to_string(call), time.seconds() + kLifetimeS);
    }
};

TokenKey key_for(const std::string& client_id) { return TokenKey{client_id, "", "", "https://vault.azure.net"}; }

struct Fixture {
    explicit Fixture(TokenCacheOptions options = {}) {
        upstream = std::make_shared<FakeUpstream>(time);
        options.now_ms = [this] { return time.now.load(); };
        options.sleep = [this](milliseconds d) { return time.sleep(d); };
        if (!options.jitter_seed)
            options.jitter_seed = 42;
        provider = std::make_unique<CachingTokenProvider>(ioc.get_executor(), upstream, options);
    }

    // Runs the io_context until `done` holds (or a generous real-time limit passes).
    void run_until(const std::function<bool()>& done, std::chrono::seconds limit = 10s) {
        const auto give_up = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < give_up) {
            ioc.run_for(2ms);
            if (ioc.stopped())
                ioc.restart();
        }
        ASSERT_TRUE(done()) << "timed out";
    }

    // Starts n concurrent get()s; results land in `out` in completion order.
    void spawn_gets(int n, TokenKey key, bool bypass, std::vector<TokenOutcome>& out, std::mutex& mu) {
        for (int i = 0; i < n; ++i)
            asio::co_spawn(
                ioc,
                [this, key, bypass, &out, &mu]() -> asio::awaitable<void> {
                    auto outcome = co_await provider->get(key, bypass);
                    std::lock_guard lock(mu);
                    out.push_back(std::move(outcome));
                },
                asio::detached);
    }

    TokenOutcome get(TokenKey key, bool bypass = false) {
        std::vector<TokenOutcome> out;
        std::mutex mu;
        spawn_gets(1, std::move(key), bypass, out, mu);
        run_until([&] {
            std::lock_guard lock(mu);
            return out.size() == 1;
        });
        return out.at(0);
    }

    asio::io_context ioc;  // declared first: destroyed last, after everything that uses it
    FakeTime time;
    std::shared_ptr<FakeUpstream> upstream;
    std::unique_ptr<CachingTokenProvider> provider;
};

std::string value_of(const TokenOutcome& outcome) { return outcome.token ? outcome.token->access_token : "<none>"; }

TEST(TokenCache, HundredConcurrentRequestsMakeOneUpstreamCall) {
    Fixture f;
    f.upstream->delay = 50ms;
    std::vector<TokenOutcome> out;
    std::mutex mu;
    f.spawn_gets(100, key_for("a"), false, out, mu);
    f.run_until([&] {
        std::lock_guard lock(mu);
        return out.size() == 100;
    });
    EXPECT_EQ(f.upstream->calls.load(), 1);
    int shared = 0;
    for (const auto& o : out) {
        EXPECT_EQ(value_of(o), "tok-0");
        EXPECT_FALSE(o.cache_hit);
        shared += o.shared;
    }
    EXPECT_EQ(shared, 99);
    const auto stats = f.provider->stats();
    EXPECT_EQ(stats.misses, 1u);
    EXPECT_EQ(stats.shared, 99u);

    auto again = f.get(key_for("a"));
    EXPECT_TRUE(again.cache_hit);
    EXPECT_EQ(value_of(again), "tok-0");
    EXPECT_EQ(f.upstream->calls.load(), 1);
}

TEST(TokenCache, DistinctKeysAreCachedSeparately) {
    Fixture f;
    EXPECT_EQ(value_of(f.get(key_for("a"))), "tok-0");
    EXPECT_EQ(value_of(f.get(key_for("b"))), "tok-1");
    TokenKey other_resource = key_for("a");
    other_resource.resource = "https://storage.azure.com";
    EXPECT_EQ(value_of(f.get(other_resource)), "tok-2");
    EXPECT_EQ(value_of(f.get(key_for("a"))), "tok-0");
    EXPECT_EQ(f.upstream->calls.load(), 3);
    EXPECT_EQ(f.provider->stats().entries, 3u);
}

TEST(TokenCache, RefreshAheadMakesOneBackgroundCallAndKeepsServingTheOldToken) {
    Fixture f;
    ASSERT_EQ(value_of(f.get(key_for("a"))), "tok-0");
    // Before the refresh point (45-55 % of the lifetime with jitter): plain hits.
    f.time.advance(milliseconds(kLifetimeS * 1000 * 40 / 100));
    EXPECT_TRUE(f.get(key_for("a")).cache_hit);
    EXPECT_EQ(f.upstream->calls.load(), 1);

    f.time.advance(milliseconds(kLifetimeS * 1000 * 20 / 100));  // 60 % elapsed
    f.upstream->gate = std::make_shared<SharedResult<bool>>();
    std::vector<TokenOutcome> out;
    std::mutex mu;
    f.spawn_gets(20, key_for("a"), false, out, mu);
    f.run_until([&] { return f.upstream->calls.load() == 2; });
    f.run_until([&] {
        std::lock_guard lock(mu);
        return out.size() == 20;
    });
    for (const auto& o : out) {
        EXPECT_TRUE(o.cache_hit);
        EXPECT_EQ(value_of(o), "tok-0");
    }
    EXPECT_EQ(f.upstream->calls.load(), 2);  // exactly one background refresh

    f.upstream->gate->set(true);
    f.run_until([&] { return f.provider->stats().refreshes_ok == 1; });
    auto after = f.get(key_for("a"));
    EXPECT_TRUE(after.cache_hit);
    EXPECT_EQ(value_of(after), "tok-1");
    EXPECT_EQ(f.upstream->calls.load(), 2);
}

TEST(TokenCache, RefreshPointIsJitteredAroundHalfLife) {
    std::vector<int64_t> points;
    for (uint64_t seed : {1, 2, 3, 4, 5, 6}) {
        TokenCacheOptions options;
        options.jitter_seed = seed;
        Fixture f(options);
        f.get(key_for("a"));
        auto entries = f.provider->entries();
        ASSERT_EQ(entries.size(), 1u);
        const int64_t elapsed = entries[0].refresh_at - f.time.seconds();
        EXPECT_GE(elapsed, kLifetimeS * 45 / 100) << "seed " << seed;
        EXPECT_LE(elapsed, kLifetimeS * 55 / 100) << "seed " << seed;
        points.push_back(elapsed);
    }
    std::sort(points.begin(), points.end());
    EXPECT_NE(points.front(), points.back()) << "no jitter across seeds";
}

// Never serve a token inside the safety margin: rows are positions relative to the cached token's
// expiry, and whether IMDS can give a new one then.
TEST(TokenCache, NeverServesATokenInsideTheSafetyMargin) {
    struct Row {
        int64_t seconds_before_expiry;
        bool upstream_ok;
        std::string expected;  // token served, or "<none>"
        int expected_status;
    };
    const Row rows[] = {
        {61, true, "tok-0", 200}, {61, false, "tok-0", 200},   // still servable (a refresh may start)
        {60, true, "tok-1", 200}, {60, false, "<none>", 500},  // at the margin: not servable
        {30, true, "tok-1", 200}, {30, false, "<none>", 500}, {-10, true, "tok-1", 200}, {-10, false, "<none>", 500},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(std::to_string(row.seconds_before_expiry) + (row.upstream_ok ? " ok" : " failing"));
        Fixture f;
        const int64_t first_expiry = f.time.seconds() + kLifetimeS;
        ASSERT_EQ(value_of(f.get(key_for("a"))), "tok-0");
        f.upstream->respond = [&](const TokenKey&, int call) {
            if (row.upstream_ok)
                return ok_token("tok-" + std::to_string(call), f.time.seconds() + kLifetimeS);
            return failure(500, R"({"error":"server_error"})");
        };
        f.time.now = (first_expiry - row.seconds_before_expiry) * 1000;
        auto outcome = f.get(key_for("a"));
        EXPECT_EQ(value_of(outcome), row.expected);
        if (outcome.token) {
            EXPECT_GT(outcome.token->expires_on * 1000 - f.time.now.load(), 60'000);
        } else {
            EXPECT_EQ(outcome.status, row.expected_status);
        }
    }
}

TEST(TokenCache, UpstreamFailureWhileCachedNeverReachesClients) {
    Fixture f;
    ASSERT_EQ(value_of(f.get(key_for("a"))), "tok-0");
    f.time.auto_advance = false;
    f.upstream->respond = [](const TokenKey&, int) { return failure(503, R"({"error":"server_error"})"); };
    f.time.advance(milliseconds(kLifetimeS * 1000 * 60 / 100));
    for (int i = 0; i < 5; ++i) {
        auto outcome = f.get(key_for("a"));
        EXPECT_EQ(value_of(outcome), "tok-0");
        EXPECT_TRUE(outcome.cache_hit);
        f.time.advance(10s);  // lets the background refresh retry
        f.run_until([&] { return f.upstream->calls.load() >= 2 + i; });
    }
    EXPECT_EQ(f.provider->stats().refreshes_failed, 0u);  // still retrying: the token is still good

    // Into the safety margin: the refresh gives up and clients now see the upstream error.
    f.time.now = (kStartMs / 1000 + kLifetimeS - 59) * 1000;
    f.run_until([&] { return f.provider->stats().refreshes_failed == 1; });
    f.time.auto_advance = true;
    auto outcome = f.get(key_for("a"));
    EXPECT_FALSE(outcome.token);
    EXPECT_EQ(outcome.status, 503);
}

TEST(TokenCache, BackoffHonoursRetryAfter) {
    Fixture f;
    f.upstream->respond = [&](const TokenKey&, int call) {
        if (call < 2)
            return failure(429, R"({"error":"too_many_requests"})", 1s);
        return ok_token("tok-" + std::to_string(call), f.time.seconds() + kLifetimeS);
    };
    auto outcome = f.get(key_for("a"));
    EXPECT_EQ(value_of(outcome), "tok-2");
    EXPECT_EQ(f.upstream->calls.load(), 3);
    // Backoff 0 s then 2 s, each at least Retry-After (1 s).
    EXPECT_EQ(f.time.recorded(), (std::vector<milliseconds>{1000ms, 2000ms}));
}

// Which upstream answers a client-facing miss retries, and what the client gets when it gives up
// (deadline 20 s: attempts at 0, 0, 2, 8 s; the next backoff, 14 s, would cross it).
TEST(TokenCache, MissRetriesTransientErrorsUntilTheDeadline) {
    struct Row {
        std::string name;
        UpstreamResult answer;
        int expected_calls;
        int expected_status;
        std::string expected_error;  // "error" field of the body
    };
    UpstreamResult timeout;
    timeout.timed_out = true;
    const Row rows[] = {
        {"400 identity not found",
         failure(400, R"({"error":"invalid_request","error_description":"Identity not found"})"), 1, 400,
         "invalid_request"},
        {"403", failure(403, "forbidden"), 1, 403, "invalid_request"},
        {"404", failure(404, R"({"error":"not_found"})"), 4, 404, "not_found"},
        {"410", failure(410, ""), 4, 410, "gone"},
        {"429", failure(429, R"({"error":"too_many_requests"})"), 4, 429, "too_many_requests"},
        {"500", failure(500, R"({"error":"unknown"})"), 4, 500, "unknown"},
        {"503 html", failure(503, "<html>busy</html>"), 4, 503, "service_unavailable"},
        {"connection refused", failure(0), 4, 503, "service_unavailable"},
        {"timeout", timeout, 4, 504, "gateway_timeout"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        Fixture f;
        f.upstream->respond = [&](const TokenKey&, int) { return row.answer; };
        auto outcome = f.get(key_for("a"));
        EXPECT_FALSE(outcome.token);
        EXPECT_EQ(f.upstream->calls.load(), row.expected_calls);
        EXPECT_EQ(outcome.status, row.expected_status);
        EXPECT_NE(outcome.error_body.find("\"error\":\"" + row.expected_error + "\""), std::string::npos)
            << outcome.error_body;
        EXPECT_LT(f.time.now.load() - kStartMs, 20'000);
    }
}

// A Retry-After longer than the request deadline ends the fetch at once; it must still hold the next upstream call
// back: clients asking meanwhile get the same 429 without a call, and the first one after it makes one.
TEST(TokenCache, RetryAfterBeyondTheDeadlineHoldsLaterFetches) {
    TokenCacheOptions options;
    options.request_deadline = 3s;
    Fixture f(options);
    f.upstream->respond = [&](const TokenKey&, int) { return failure(429, R"({"error":"too_many_requests"})", 5s); };
    auto first = f.get(key_for("a"));
    EXPECT_EQ(first.status, 429);
    EXPECT_EQ(f.upstream->calls.load(), 1);
    for (int i = 0; i < 4; ++i) {
        f.time.advance(1s);
        auto held = f.get(key_for("a"));
        EXPECT_EQ(held.status, 429);
        EXPECT_TRUE(held.cache_hit);
    }
    EXPECT_EQ(f.upstream->calls.load(), 1) << "a client request went upstream inside Retry-After";
    f.time.advance(1s);  // 5 s after the answer
    f.upstream->respond = nullptr;
    EXPECT_TRUE(f.get(key_for("a")).token);
    EXPECT_EQ(f.upstream->calls.load(), 2);
}

TEST(TokenCache, RateLimitKeepsFiveConcurrentAndTwentyPerSecond) {
    Fixture f;
    f.upstream->delay = 30ms;
    std::vector<TokenOutcome> out;
    std::mutex mu;
    for (int i = 0; i < 50; ++i)
        f.spawn_gets(1, key_for("id-" + std::to_string(i)), false, out, mu);
    f.run_until([&] {
        std::lock_guard lock(mu);
        return out.size() == 50;
    });
    for (const auto& o : out)
        EXPECT_TRUE(o.token);
    EXPECT_EQ(f.upstream->calls.load(), 50);
    EXPECT_LE(f.upstream->max_in_flight.load(), 5);
    EXPECT_GE(f.upstream->max_in_flight.load(), 2);  // the limiter is not simply serialising
    std::lock_guard lock(f.upstream->mu);
    auto starts = f.upstream->starts;
    std::sort(starts.begin(), starts.end());
    for (std::size_t i = 0; i + 20 < starts.size(); ++i)
        EXPECT_GE(starts[i + 20] - starts[i], 990ms) << "more than 20 starts within one second at " << i;
}

TEST(TokenCache, IdentityNotFoundIsRememberedBriefly) {
    Fixture f;
    const std::string body = R"({"error":"invalid_request","error_description":"Identity not found"})";
    f.upstream->respond = [&](const TokenKey&, int) { return failure(400, body); };
    auto first = f.get(key_for("a"));
    EXPECT_EQ(first.status, 400);
    EXPECT_EQ(first.error_body, body);
    EXPECT_FALSE(first.cache_hit);

    for (int i = 0; i < 10; ++i) {
        auto again = f.get(key_for("a"));
        EXPECT_EQ(again.status, 400);
        EXPECT_EQ(again.error_body, body);
        EXPECT_TRUE(again.cache_hit);
    }
    EXPECT_EQ(f.upstream->calls.load(), 1);
    EXPECT_EQ(f.provider->stats().negative_hits, 10u);

    f.get(key_for("b"));  // another identity is not affected
    EXPECT_EQ(f.upstream->calls.load(), 2);

    f.time.advance(6s);
    f.upstream->respond = nullptr;
    EXPECT_TRUE(f.get(key_for("a")).token);
    EXPECT_EQ(f.upstream->calls.load(), 3);
}

TEST(TokenCache, BypassCacheRefreshesAtMostOncePerThirtySeconds) {
    Fixture f;
    ASSERT_EQ(value_of(f.get(key_for("a"))), "tok-0");
    f.upstream->delay = 20ms;
    std::vector<TokenOutcome> out;
    std::mutex mu;
    f.spawn_gets(10, key_for("a"), true, out, mu);
    f.run_until([&] {
        std::lock_guard lock(mu);
        return out.size() == 10;
    });
    EXPECT_EQ(f.upstream->calls.load(), 2);  // one forced refresh for all ten
    for (const auto& o : out)
        EXPECT_EQ(value_of(o), "tok-1");

    f.time.advance(29s);
    auto cached = f.get(key_for("a"), true);
    EXPECT_TRUE(cached.cache_hit);
    EXPECT_EQ(value_of(cached), "tok-1");
    EXPECT_EQ(f.upstream->calls.load(), 2);

    f.time.advance(2s);
    EXPECT_EQ(value_of(f.get(key_for("a"), true)), "tok-2");
    EXPECT_EQ(f.upstream->calls.load(), 3);
    EXPECT_EQ(f.provider->stats().forced, 2u);

    // A forced refresh that fails still serves the valid cached token.
    f.time.advance(31s);
    f.upstream->respond = [](const TokenKey&, int) { return failure(400, R"({"error":"invalid_request"})"); };
    auto kept = f.get(key_for("a"), true);
    EXPECT_EQ(value_of(kept), "tok-2");
}

TEST(TokenCache, StatsAndEntriesCarryNoTokenValues) {
    TokenCacheOptions options;
    std::vector<int> statuses;
    options.on_upstream = [&](int status, double seconds) {
        statuses.push_back(status);
        EXPECT_GE(seconds, 0.0);
    };
    Fixture f(options);
    f.get(key_for("a"));
    f.get(key_for("a"));
    auto stats = f.provider->stats();
    EXPECT_EQ(stats.hits, 1u);
    EXPECT_EQ(stats.misses, 1u);
    EXPECT_EQ(stats.upstream_by_status.at(200), 1u);
    EXPECT_EQ(statuses, std::vector<int>{200});
    auto entries = f.provider->entries();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].key, key_for("a"));
    EXPECT_EQ(entries[0].expires_on, f.time.seconds() + kLifetimeS);
    EXPECT_EQ(entries[0].last_refresh, f.time.seconds());
    EXPECT_FALSE(entries[0].fetching);
}

}  // namespace
}  // namespace podid

namespace podid {
namespace {

TokenKey federated_key(const std::string& pod_uid, const std::string& resource = "https://vault.azure.net") {
    TokenKey key{"a1111111-1111-4111-8111-111111111111", "", "", resource};
    EntraRef e;
    e.tenant = "contoso";
    e.pod_ns = "default";
    e.pod_name = "web-" + pod_uid;
    e.pod_uid = pod_uid;
    e.service_account = "wi-sa";
    key.entra = e;
    return key;
}

// Federated tokens are cached per pod (their assertion is bound to it): two pods of one app never share an entry, and
// forget() drops a deleted pod's entries and nothing else.
TEST(TokenCache, FederatedKeysArePerPodAndForgetDropsOnlyThatPod) {
    Fixture f;
    EXPECT_EQ(value_of(f.get(federated_key("uid-1"))), "tok-0");
    EXPECT_EQ(value_of(f.get(federated_key("uid-2"))), "tok-1");
    EXPECT_EQ(value_of(f.get(federated_key("uid-1", "https://storage.azure.com"))), "tok-2");
    EXPECT_EQ(value_of(f.get(key_for("a1111111-1111-4111-8111-111111111111"))), "tok-3") << "the node's IMDS key";
    EXPECT_EQ(f.upstream->calls.load(), 4);
    EXPECT_TRUE(f.get(federated_key("uid-1")).cache_hit);

    EXPECT_EQ(f.provider->forget([](const TokenKey& k) { return k.entra && k.entra->pod_uid == "uid-1"; }), 2u);
    EXPECT_EQ(f.provider->stats().entries, 2u);
    EXPECT_TRUE(f.get(federated_key("uid-2")).cache_hit);
    EXPECT_TRUE(f.get(key_for("a1111111-1111-4111-8111-111111111111")).cache_hit);
    auto again = f.get(federated_key("uid-1"));
    EXPECT_FALSE(again.cache_hit);
    EXPECT_EQ(value_of(again), "tok-4");
}

// A fetch in flight when its pod is forgotten still answers its waiters, and the cache keeps nothing of it.
TEST(TokenCache, ForgetDuringAFetchKeepsNothing) {
    Fixture f;
    f.upstream->delay = 50ms;
    std::vector<TokenOutcome> out;
    std::mutex mu;
    f.spawn_gets(3, federated_key("uid-9"), false, out, mu);
    f.run_until([&] { return f.upstream->calls.load() == 1; });
    EXPECT_EQ(f.provider->forget([](const TokenKey& k) { return k.entra && k.entra->pod_uid == "uid-9"; }), 1u);
    f.run_until([&] {
        std::lock_guard lock(mu);
        return out.size() == 3;
    });
    for (const auto& o : out)
        EXPECT_EQ(value_of(o), "tok-0");
    EXPECT_EQ(f.provider->stats().entries, 0u);
    EXPECT_FALSE(f.get(federated_key("uid-9")).cache_hit);
}

}  // namespace
}  // namespace podid

namespace podid {
namespace {

CachedToken cached(TokenKey key, const std::string& value, int64_t expires_on) {
    CachedToken out{std::move(key), Token{}};
    out.token.access_token = value;
    out.token.client_id = out.key.client_id;
    out.token.resource = out.key.resource;
    out.token.expires_on = expires_on;
    return out;
}

// snapshot(): servable tokens with their keys; nothing for remembered errors, nothing inside the safety margin.
TEST(TokenCacheRestart, SnapshotHoldsOnlyServableTokens) {
    Fixture f;
    f.upstream->respond = [&](const TokenKey& key, int call) {
        if (key.client_id == "denied")
            return failure(400, R"({"error":"invalid_request","error_description":"Identity not found"})");
        return ok_token("tok-" + std::to_string(call), f.time.seconds() + kLifetimeS);
    };
    ASSERT_TRUE(f.get(key_for("a")).token);
    ASSERT_TRUE(f.get(federated_key("uid-1")).token);
    ASSERT_FALSE(f.get(key_for("denied")).token);
    EXPECT_EQ(f.provider->stats().entries, 3u);

    auto snap = f.provider->snapshot();
    std::sort(snap.begin(), snap.end(),
              [](const CachedToken& x, const CachedToken& y) { return x.token.access_token < y.token.access_token; });
    ASSERT_EQ(snap.size(), 2u);
    EXPECT_EQ(snap[0].key, key_for("a"));
    EXPECT_EQ(snap[0].token.access_token, "tok-0");
    EXPECT_EQ(snap[0].token.expires_on, kStartMs / 1000 + kLifetimeS);
    EXPECT_EQ(snap[1].key, federated_key("uid-1"));
    EXPECT_EQ(snap[1].token.access_token, "tok-1");
    for (const auto& item : snap)
        EXPECT_FALSE(item.token.rendering) << "the cache's rendering does not leave it";

    // 60 s before expiry the tokens are no longer servable, so they are not worth keeping either.
    f.time.now = (kStartMs / 1000 + kLifetimeS - 60) * 1000;
    EXPECT_TRUE(f.provider->snapshot().empty());
}

// A restarted agent's cache, seeded with the old one's tokens, serves them without a single upstream call.
TEST(TokenCacheRestart, SeededTokensAreServedWithoutUpstreamCalls) {
    Fixture before;
    ASSERT_TRUE(before.get(key_for("a")).token);
    ASSERT_TRUE(before.get(federated_key("uid-1")).token);
    auto snap = before.provider->snapshot();
    ASSERT_EQ(snap.size(), 2u);

    Fixture after;
    after.time.advance(10min);  // the restart took a while
    EXPECT_EQ(after.provider->seed(snap), 2u);
    for (const auto& item : snap) {
        SCOPED_TRACE(item.key.to_string());
        auto outcome = after.get(item.key);
        ASSERT_TRUE(outcome.token);
        EXPECT_TRUE(outcome.cache_hit);
        EXPECT_EQ(outcome.token->access_token, item.token.access_token);
        EXPECT_EQ(outcome.token->expires_on, item.token.expires_on);
        // Rendered once on the way in, as a fetched token is.
        ASSERT_TRUE(outcome.token->rendering);
        EXPECT_EQ(outcome.token->rendering->fingerprint, token_fingerprint(item.token.access_token));
        EXPECT_EQ(outcome.token->rendering->imds.at(after.time.seconds()),
                  TokenBody(item.token, item.token.client_id, item.token.resource, false).at(after.time.seconds()));
    }
    EXPECT_EQ(after.upstream->calls.load(), 0);
    EXPECT_EQ(after.provider->stats().hits, 2u);
}

// What seed() takes: rows are the token's life left at seeding, and what the cache already holds for its key.
TEST(TokenCacheRestart, SeedSkipsExpiredTokensTheSafetyMarginAndKeysPresent) {
    enum class Present { nothing, token, negative, fetching };
    struct Row {
        std::string name;
        int64_t seconds_left;
        Present present;
        bool taken;
    };
    const Row rows[] = {
        {"an hour left", 3600, Present::nothing, true},
        {"just outside the margin", 61, Present::nothing, true},
        {"at the margin", 60, Present::nothing, false},
        {"inside the margin", 30, Present::nothing, false},
        {"expired", -5, Present::nothing, false},
        {"key holds a token", 3600, Present::token, false},
        {"key holds a remembered error", 3600, Present::negative, false},
        {"key has a fetch in flight", 3600, Present::fetching, false},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        Fixture f;
        f.upstream->respond = [&](const TokenKey&, int call) {
            if (row.present == Present::negative)
                return failure(400, R"({"error":"invalid_request"})");
            return ok_token("fetched-" + std::to_string(call), f.time.seconds() + kLifetimeS);
        };
        std::vector<TokenOutcome> out;
        std::mutex mu;
        if (row.present == Present::token || row.present == Present::negative) {
            f.get(key_for("a"));
        } else if (row.present == Present::fetching) {
            f.upstream->gate = std::make_shared<SharedResult<bool>>();
            f.spawn_gets(1, key_for("a"), false, out, mu);
            f.run_until([&] { return f.upstream->calls.load() == 1; });
        }
        const int calls_before = f.upstream->calls.load();

        const std::size_t taken =
            f.provider->seed({cached(key_for("a"), "seeded", f.time.seconds() + row.seconds_left)});
        EXPECT_EQ(taken, row.taken ? 1u : 0u);

        if (row.present == Present::fetching) {
            f.upstream->gate->set(true);
            f.run_until([&] {
                std::lock_guard lock(mu);
                return out.size() == 1;
            });
            EXPECT_EQ(value_of(out[0]), "fetched-0");
        }
        f.upstream->respond = nullptr;
        auto outcome = f.get(key_for("a"));
        if (row.taken) {
            EXPECT_EQ(value_of(outcome), "seeded");
            EXPECT_EQ(f.upstream->calls.load(), calls_before);
        } else {
            EXPECT_NE(value_of(outcome), "seeded");
        }
    }
}

// A seeded token refreshes ahead like a fetched one, from the life it had left when it was seeded.
TEST(TokenCacheRestart, SeededTokenRefreshesAheadFromItsRemainingLife) {
    Fixture f;
    constexpr int64_t kLeftS = 1000;
    ASSERT_EQ(f.provider->seed({cached(key_for("a"), "seeded", f.time.seconds() + kLeftS)}), 1u);
    auto entries = f.provider->entries();
    ASSERT_EQ(entries.size(), 1u);
    const int64_t refresh_in = entries[0].refresh_at - f.time.seconds();
    EXPECT_GE(refresh_in, kLeftS * 45 / 100);
    EXPECT_LE(refresh_in, kLeftS * 55 / 100);

    f.time.advance(milliseconds(kLeftS * 1000 * 40 / 100));
    EXPECT_EQ(value_of(f.get(key_for("a"))), "seeded");
    EXPECT_EQ(f.upstream->calls.load(), 0);

    f.time.advance(milliseconds(kLeftS * 1000 * 20 / 100));  // 60 % of its remaining life gone
    EXPECT_EQ(value_of(f.get(key_for("a"))), "seeded");      // served while the refresh runs
    f.run_until([&] { return f.provider->stats().refreshes_ok == 1; });
    EXPECT_EQ(f.upstream->calls.load(), 1);
    EXPECT_EQ(value_of(f.get(key_for("a"))), "tok-0");
}

// on_stored: after every new token stored (a miss, a refresh) and after forget() dropped a token; never for hits,
// errors or seeding.
TEST(TokenCacheRestart, OnStoredFollowsEveryChangeOfTheStoredTokens) {
    TokenCacheOptions options;
    std::atomic<int> stored{0};
    options.on_stored = [&] { ++stored; };
    Fixture f(options);

    ASSERT_TRUE(f.get(key_for("a")).token);
    EXPECT_EQ(stored.load(), 1);
    ASSERT_TRUE(f.get(key_for("a")).cache_hit);
    EXPECT_EQ(stored.load(), 1) << "a hit stores nothing";

    f.upstream->respond = [](const TokenKey&, int) { return failure(400, R"({"error":"invalid_request"})"); };
    ASSERT_FALSE(f.get(key_for("denied")).token);
    EXPECT_EQ(stored.load(), 1) << "a remembered error is not a token";
    f.upstream->respond = nullptr;
    EXPECT_EQ(f.provider->forget([](const TokenKey& k) { return k.client_id == "denied"; }), 1u);
    EXPECT_EQ(stored.load(), 1) << "it held no token";

    EXPECT_EQ(f.provider->seed({cached(key_for("b"), "seeded", f.time.seconds() + kLifetimeS)}), 1u);
    EXPECT_EQ(stored.load(), 1) << "seeding writes nothing back";

    f.time.advance(milliseconds(kLifetimeS * 1000 * 60 / 100));
    ASSERT_TRUE(f.get(key_for("a")).cache_hit);  // starts the background refresh
    f.run_until([&] { return f.provider->stats().refreshes_ok == 1; });
    EXPECT_EQ(stored.load(), 2);

    EXPECT_EQ(f.provider->forget([](const TokenKey& k) { return k.client_id == "nobody"; }), 0u);
    EXPECT_EQ(stored.load(), 2);
    EXPECT_EQ(f.provider->forget([](const TokenKey& k) { return k.client_id == "b"; }), 1u);
    EXPECT_EQ(stored.load(), 3);
}

}  // namespace
}  // namespace podid
