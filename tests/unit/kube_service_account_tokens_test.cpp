// ServiceAccountTokens against the API-server double (TokenRequests over HTTPS, bound to pods the double stores)
// and against scripted answers for what the double does not do (403, malformed answers, slow answers). The
// cache's calls run on a control-plane io_context thread; callers co_await from two other threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "kube/client.h"
#include "kube/service_account_tokens.h"
#include "support/kube_apiserver.h"

namespace podid::kube {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using nlohmann::json;
using test::KubeApiServer;
using test::KubeApiServerOptions;

const std::string kToken = "t0k3n";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// An io_context with `threads` threads, running until the object goes.
struct Loop {
    explicit Loop(int threads) {
        for (int i = 0; i < threads; ++i)
            workers.emplace_back([this] { io.run(); });
    }
    ~Loop() {
        guard.reset();
        for (auto& t : workers)
            t.join();
    }
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
    std::vector<std::thread> workers;
};

// Starts `make()` `n` times on `io` and waits for every result.
template <class T>
std::vector<T> gather(asio::io_context& io, int n, std::function<asio::awaitable<T>()> make) {
    std::mutex mu;
    std::vector<T> results;
    std::atomic<int> done{0};
    for (int i = 0; i < n; ++i)
        asio::co_spawn(
            io,
            [&, make]() -> asio::awaitable<void> {
                T result = co_await make();
                {
                    std::lock_guard lock(mu);
                    results.push_back(std::move(result));
                }
                ++done;
            },
            asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (done.load() < n && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    if (done.load() < n)
        throw std::runtime_error("calls did not finish within 20 s");  // detached calls still use `mu`: abort
    return results;
}

// Scripted answers to create(), counted; each answer comes after `delay`.
class ScriptedRequests final : public KubeRequests {
public:
    std::function<ApiResult<json>(const std::string& target, const json& body)> answer;
    std::chrono::milliseconds delay{0};
    std::atomic<int> creates{0};

    asio::awaitable<ApiResult<json>> get(std::string target) override {
        co_return ApiError{405, "MethodNotAllowed", make_error("no GET here")};
    }
    asio::awaitable<ApiResult<json>> create(std::string target, json body) override {
        ++creates;
        if (delay.count() > 0) {
            asio::steady_timer timer(co_await asio::this_coro::executor, delay);
            co_await timer.async_wait(asio::use_awaitable);
        }
        co_return answer(target, body);
    }
};

json granted(const std::string& token, const std::string& expiry) {
    return {{"kind", "TokenRequest"}, {"status", {{"token", token}, {"expirationTimestamp", expiry}}}};
}

PodInfo pod_info(const std::string& name, const std::string& uid, const std::string& service_account = "workload") {
    PodInfo pod;
    pod.ns = "ns1";
    pod.name = name;
    pod.uid = uid;
    pod.service_account = service_account;
    pod.node_name = "node1";
    return pod;
}

// ---- against the API-server double ------------------------------------------------------------------

class ServiceAccountTokensTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(api.listen("127.0.0.1", 0));
        for (const char* name : {"default", "workload"})
            ASSERT_TRUE(api.create("ServiceAccount", {{"metadata", {{"name", name}, {"namespace", "ns1"}}}}));
        app = add_pod("app", "workload");
        KubeConfig config;
        config.server = api.url();
        config.host = "127.0.0.1";
        config.port = std::to_string(api.port());
        config.ca_pem = api.pki().ca.cert_pem;
        config.token = kToken;
        client = Client::create(config).value();
    }

    void TearDown() override { client->shutdown(); }

    PodInfo add_pod(const std::string& name, const std::string& service_account) {
        auto made = api.create("Pod", {{"metadata", {{"name", name}, {"namespace", "ns1"}}},
                                       {"spec", {{"nodeName", "node1"}, {"serviceAccountName", service_account}}}});
        EXPECT_TRUE(made) << made.error().message;
        return pod_info(name, made ? (*made)["metadata"]["uid"].get<std::string>() : "", service_account);
    }

    std::unique_ptr<ServiceAccountTokens> make_tokens(ServiceAccountTokensOptions options = {}) {
        return std::make_unique<ServiceAccountTokens>(control.io.get_executor(), client, std::move(options));
    }

    Result<ServiceAccountToken> token_for(ServiceAccountTokens& tokens, const PodInfo& pod,
                                          std::chrono::seconds lifetime = 3600s) {
        return gather<Result<ServiceAccountToken>>(callers.io, 1, [&] { return tokens.token_for(pod, lifetime); })
            .front();
    }

    static KubeApiServerOptions options() {
        KubeApiServerOptions o;
        o.tokens = {kToken};
        return o;
    }

    KubeApiServer api{options()};
    Loop control{1};
    Loop callers{2};
    std::shared_ptr<Client> client;
    PodInfo app;
};

TEST_F(ServiceAccountTokensTest, FetchesATokenBoundToThePodAndCachesIt) {
    auto tokens = make_tokens();
    auto first = token_for(*tokens, app);
    ASSERT_TRUE(first) << first.error().message;

    ASSERT_EQ(api.issued_tokens().size(), 1u);
    const test::kube::IssuedToken issued = api.issued_tokens()[0];
    EXPECT_EQ(first->token, issued.token);
    EXPECT_EQ(first->expires_on,
              std::chrono::duration_cast<std::chrono::seconds>(issued.expires_at.time_since_epoch()).count());
    EXPECT_EQ(issued.ns, "ns1");
    EXPECT_EQ(issued.service_account, "workload");
    EXPECT_EQ(issued.audiences, std::vector<std::string>{"api://AzureADTokenExchange"});
    EXPECT_EQ(issued.bound_kind, "Pod");
    EXPECT_EQ(issued.bound_name, "app");
    EXPECT_EQ(issued.bound_uid, app.uid);
    EXPECT_EQ(issued.expiration_seconds, 3600);
    auto jwt = api.verify_token(first->token);
    ASSERT_TRUE(jwt) << jwt.error().message;
    EXPECT_EQ(jwt->claims["sub"], "system:serviceaccount:ns1:workload");
    EXPECT_EQ(jwt->claims["kubernetes.io"]["pod"]["uid"], app.uid);

    auto second = token_for(*tokens, app);
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(second->token, first->token);
    EXPECT_EQ(api.token_requests(), 1u);
    const auto stats = tokens->stats();
    EXPECT_EQ(stats.requests, 1u);
    EXPECT_EQ(stats.cache_hits, 1u);
    EXPECT_EQ(stats.failures, 0u);
    EXPECT_EQ(stats.cached, 1u);
}

TEST_F(ServiceAccountTokensTest, TheAudienceComesFromTheOptions) {
    ServiceAccountTokensOptions options;
    options.audience = "api://custom";
    auto tokens = make_tokens(options);
    ASSERT_TRUE(token_for(*tokens, app));
    ASSERT_EQ(api.issued_tokens().size(), 1u);
    EXPECT_EQ(api.issued_tokens()[0].audiences, std::vector<std::string>{"api://custom"});
}

TEST_F(ServiceAccountTokensTest, ConcurrentCallersForOnePodShareOneTokenRequest) {
    auto tokens = make_tokens();
    auto results = gather<Result<ServiceAccountToken>>(callers.io, 200, [&] { return tokens->token_for(app, 3600s); });
    ASSERT_EQ(results.size(), 200u);
    std::set<std::string> seen;
    for (const auto& r : results) {
        ASSERT_TRUE(r) << r.error().message;
        seen.insert(r->token);
    }
    EXPECT_EQ(seen.size(), 1u);
    EXPECT_EQ(api.token_requests(), 1u);
    const auto stats = tokens->stats();
    EXPECT_EQ(stats.requests, 1u);
    EXPECT_EQ(stats.shared + stats.cache_hits, 199u);
}

TEST_F(ServiceAccountTokensTest, PodsGetTheirOwnTokens) {
    const PodInfo other = add_pod("other", "workload");
    auto tokens = make_tokens();
    auto a = token_for(*tokens, app);
    auto b = token_for(*tokens, other);
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->token, b->token);
    EXPECT_EQ(api.token_requests("ns1", "workload"), 2u);
    EXPECT_EQ(tokens->stats().cached, 2u);
}

TEST_F(ServiceAccountTokensTest, RefetchedOnce80PercentOfTheLifetimeHasPassed) {
    std::atomic<int64_t> now{wall_ms()};
    ServiceAccountTokensOptions options;
    options.now_ms = [&] { return now.load(); };
    auto tokens = make_tokens(options);
    // 60 s asked for is raised to the API's floor of 600 s (the double refuses less), so reuse ends at 480 s.
    auto first = token_for(*tokens, app, 60s);
    ASSERT_TRUE(first) << first.error().message;
    ASSERT_EQ(api.issued_tokens().size(), 1u);
    EXPECT_EQ(api.issued_tokens()[0].expiration_seconds, 600);

    now += 470'000;
    auto reused = token_for(*tokens, app, 60s);
    ASSERT_TRUE(reused);
    EXPECT_EQ(reused->token, first->token);
    EXPECT_EQ(api.token_requests(), 1u);

    now += 20'000;  // 490 s
    auto renewed = token_for(*tokens, app, 60s);
    ASSERT_TRUE(renewed) << renewed.error().message;
    EXPECT_NE(renewed->token, first->token);
    EXPECT_EQ(api.token_requests(), 2u);
    auto again = token_for(*tokens, app, 60s);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->token, renewed->token);
    EXPECT_EQ(api.token_requests(), 2u);
}

TEST_F(ServiceAccountTokensTest, TheLifetimeTheServerGrantsCounts) {
    api.set_max_token_expiration(100s);  // --service-account-max-token-expiration: 3600 s asked, 100 s granted
    std::atomic<int64_t> now{wall_ms()};
    ServiceAccountTokensOptions options;
    options.now_ms = [&] { return now.load(); };
    auto tokens = make_tokens(options);
    auto first = token_for(*tokens, app, 3600s);
    ASSERT_TRUE(first) << first.error().message;
    ASSERT_EQ(api.issued_tokens().size(), 1u);
    EXPECT_EQ(api.issued_tokens()[0].expiration_seconds, 100);

    now += 70'000;
    ASSERT_TRUE(token_for(*tokens, app, 3600s));
    EXPECT_EQ(api.token_requests(), 1u);
    now += 15'000;  // 85 s: past 80 % of 100 s
    ASSERT_TRUE(token_for(*tokens, app, 3600s));
    EXPECT_EQ(api.token_requests(), 2u);
}

TEST_F(ServiceAccountTokensTest, ForgetPodDropsItsToken) {
    auto tokens = make_tokens();
    auto first = token_for(*tokens, app);
    ASSERT_TRUE(first);
    tokens->forget_pod(app.uid);
    EXPECT_EQ(tokens->stats().cached, 0u);
    auto second = token_for(*tokens, app);
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_NE(second->token, first->token);
    EXPECT_EQ(api.token_requests(), 2u);
}

struct RefusalCase {
    const char* name;
    std::function<PodInfo(const PodInfo& app)> pod;
    int want_code;
    std::vector<std::string> want_text;
};

TEST_F(ServiceAccountTokensTest, RefusalsSayWhy) {
    const std::vector<RefusalCase> cases = {
        {"uid of another pod",
         [](const PodInfo& p) { return pod_info(p.name, "00000000-0000-0000-0000-00000000dead"); },
         0,
         {"no token for service account ns1/workload of pod ns1/app",
          "the UID in the bound object reference (00000000-0000-0000-0000-00000000dead) does not match the UID in "
          "record"}},
        {"pod runs as another service account",
         [](const PodInfo& p) { return pod_info(p.name, p.uid, "default"); },
         0,
         {"cannot bind token for serviceaccount \"default\" to pod running with different serviceaccount name"}},
        {"service account missing",
         [](const PodInfo& p) { return pod_info(p.name, p.uid, "nope"); },
         ENOENT,
         {"the service account does not exist", "serviceaccounts \"nope\" not found"}},
        {"pod gone",
         [](const PodInfo&) { return pod_info("gone", "00000000-0000-0000-0000-0000000000aa"); },
         ENOENT,
         {"the service account does not exist (or the pod is gone)", "pods \"gone\" not found"}},
    };
    for (const auto& c : cases) {
        auto tokens = make_tokens();
        auto result = token_for(*tokens, c.pod(app));
        ASSERT_FALSE(result) << c.name;
        EXPECT_EQ(result.error().code, c.want_code) << c.name;
        for (const auto& text : c.want_text)
            EXPECT_TRUE(contains(result.error().message, text)) << c.name << ": " << result.error().message;
        EXPECT_EQ(tokens->stats().failures, 1u) << c.name;
        EXPECT_EQ(tokens->stats().cached, 0u) << c.name;
    }
    EXPECT_TRUE(api.issued_tokens().empty());
}

TEST_F(ServiceAccountTokensTest, AnIncompletePodIsRefusedWithoutARequest) {
    auto tokens = make_tokens();
    PodInfo no_uid = app;
    no_uid.uid.clear();
    PodInfo odd_account = app;
    odd_account.service_account = "a/../../b";
    for (const PodInfo& pod : {no_uid, odd_account}) {
        auto result = token_for(*tokens, pod);
        ASSERT_FALSE(result);
        EXPECT_EQ(result.error().code, EINVAL);
    }
    EXPECT_EQ(api.requests().size(), 0u);
    EXPECT_EQ(tokens->stats().requests, 0u);
}

// ---- scripted answers ----------------------------------------------------------------------------------

class ScriptedTokensTest : public ::testing::Test {
protected:
    Result<ServiceAccountToken> token_for(ServiceAccountTokens& tokens, const PodInfo& pod) {
        return gather<Result<ServiceAccountToken>>(callers.io, 1, [&] { return tokens.token_for(pod, 3600s); }).front();
    }

    Loop control{1};
    Loop callers{2};
    std::shared_ptr<ScriptedRequests> api = std::make_shared<ScriptedRequests>();
    PodInfo app = pod_info("app", "0000000a-0000-0000-0000-000000000001");
};

struct AnswerCase {
    const char* name;
    ApiResult<json> answer;
    int want_code;
    std::string want_text;
};

TEST_F(ScriptedTokensTest, AnswersThatBringNoTokenSayWhy) {
    const std::string token = "eyJhbGciOiJSUzI1NiJ9.secret-claims.signature";
    const std::vector<AnswerCase> cases = {
        {"forbidden",
         ApiError{403, "Forbidden",
                  make_error("API server 10.0.0.1:443: POST /api/v1/namespaces/ns1/serviceaccounts/workload/token: "
                             "HTTP 403: serviceaccounts \"workload\" is forbidden: User "
                             "\"system:serviceaccount:podid:podid\" cannot create resource \"serviceaccounts/token\"")},
         EACCES, "the agent's ClusterRole needs `create` on `serviceaccounts/token`"},
        {"unreachable", ApiError{0, "", make_error("API server 10.0.0.1:443: connect failed", ECONNREFUSED)},
         ECONNREFUSED, "connect failed"},
        {"no status", json{{"kind", "TokenRequest"}}, EPROTO, "the TokenRequest answer has no status"},
        {"no token", granted("", "2030-01-01T00:00:00Z"), EPROTO, "has no status.token"},
        {"expiry not RFC 3339", granted(token, "tomorrow"), EPROTO, "no RFC 3339 status.expirationTimestamp"},
        {"expiry missing", json{{"status", {{"token", token}}}}, EPROTO, "status.expirationTimestamp"},
    };
    for (const auto& c : cases) {
        api->answer = [&](const std::string&, const json&) { return c.answer; };
        ServiceAccountTokens tokens(control.io.get_executor(), api);
        auto result = token_for(tokens, app);
        ASSERT_FALSE(result) << c.name;
        EXPECT_EQ(result.error().code, c.want_code) << c.name;
        EXPECT_TRUE(contains(result.error().message, c.want_text)) << c.name << ": " << result.error().message;
        EXPECT_FALSE(contains(result.error().message, "secret-claims")) << c.name << ": " << result.error().message;
        EXPECT_EQ(tokens.stats().failures, 1u) << c.name;
    }
}

TEST_F(ScriptedTokensTest, SendsTheTokenRequestOfTheSpec) {
    std::string seen_target;
    json seen_body;
    api->answer = [&](const std::string& target, const json& body) -> ApiResult<json> {
        seen_target = target;
        seen_body = body;
        return granted("t", "2030-01-01T00:00:00Z");
    };
    ServiceAccountTokens tokens(control.io.get_executor(), api);
    auto result = token_for(tokens, app);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->expires_on, 1893456000);
    EXPECT_EQ(seen_target, "/api/v1/namespaces/ns1/serviceaccounts/workload/token");
    EXPECT_EQ(seen_body, json::parse(R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{
        "audiences":["api://AzureADTokenExchange"],"expirationSeconds":3600,
        "boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"app","uid":"0000000a-0000-0000-0000-000000000001"}}})"));
}

TEST_F(ScriptedTokensTest, ExpiryTimesInRfc3339Forms) {
    const std::vector<std::pair<std::string, int64_t>> cases = {
        {"2030-01-01T00:00:00Z", 1893456000},
        {"2030-01-01T00:00:00.999999Z", 1893456000},  // fractions dropped: never later than the server said
        {"2030-01-01T01:30:00+01:30", 1893456000},
        {"2029-12-31T23:00:00-01:00", 1893456000},
        {"2030-01-01t00:00:00z", 1893456000},
    };
    for (const auto& [text, want] : cases) {
        api->answer = [&](const std::string&, const json&) -> ApiResult<json> { return granted("t", text); };
        ServiceAccountTokens tokens(control.io.get_executor(), api);
        auto result = token_for(tokens, app);
        ASSERT_TRUE(result) << text << ": " << result.error().message;
        EXPECT_EQ(result->expires_on, want) << text;
    }
    for (const char* bad : {"2030-01-01 00:00:00Z", "2030-13-01T00:00:00Z", "2030-01-01T00:00:00",
                            "2030-01-01T00:00:00.Z", "2030-01-01T00:00:00+0100", "1893456000"}) {
        api->answer = [&](const std::string&, const json&) -> ApiResult<json> { return granted("t", bad); };
        ServiceAccountTokens tokens(control.io.get_executor(), api);
        EXPECT_FALSE(token_for(tokens, app)) << bad;
    }
}

TEST_F(ScriptedTokensTest, ConcurrentCallersShareOneFailure) {
    api->delay = 100ms;
    api->answer = [](const std::string&, const json&) -> ApiResult<json> {
        return ApiError{403, "Forbidden", make_error("HTTP 403: forbidden")};
    };
    ServiceAccountTokens tokens(control.io.get_executor(), api);
    auto results = gather<Result<ServiceAccountToken>>(callers.io, 50, [&] { return tokens.token_for(app, 3600s); });
    for (const auto& r : results) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, EACCES);
    }
    EXPECT_EQ(api->creates.load(), 1);
    EXPECT_EQ(tokens.stats().shared, 49u);
    EXPECT_EQ(tokens.stats().failures, 1u);

    // Failures are not remembered: the next caller asks again.
    EXPECT_FALSE(token_for(tokens, app));
    EXPECT_EQ(api->creates.load(), 2);
}

TEST_F(ScriptedTokensTest, ATokenForAPodForgottenMeanwhileIsNotKept) {
    api->delay = 300ms;
    api->answer = [](const std::string&, const json&) -> ApiResult<json> {
        return granted("t", "2100-01-01T00:00:00Z");
    };
    ServiceAccountTokens tokens(control.io.get_executor(), api);
    std::optional<Result<ServiceAccountToken>> first;
    std::thread caller([&] { first = token_for(tokens, app); });
    while (api->creates.load() == 0)
        std::this_thread::sleep_for(1ms);
    tokens.forget_pod(app.uid);  // the pod was deleted while its TokenRequest was in flight
    caller.join();
    ASSERT_TRUE(first && *first);  // its callers still get the answer
    EXPECT_EQ(tokens.stats().cached, 0u);
    ASSERT_TRUE(token_for(tokens, app));
    EXPECT_EQ(api->creates.load(), 2);
}

TEST_F(ScriptedTokensTest, UidsMatchCaseInsensitively) {
    api->answer = [](const std::string&, const json&) -> ApiResult<json> {
        return granted("t", "2100-01-01T00:00:00Z");
    };
    ServiceAccountTokens tokens(control.io.get_executor(), api);
    ASSERT_TRUE(token_for(tokens, app));
    tokens.forget_pod("0000000A-0000-0000-0000-000000000001");
    EXPECT_EQ(tokens.stats().cached, 0u);
}

}  // namespace
}  // namespace podid::kube
