// SecretReader: decoding, the TTL cache, single-flight and the errors, against scripted answers (the API-server
// double stores no Secrets), and against the double over HTTPS for a Secret it does not have. The reader's GETs
// run on a control-plane io_context thread; callers co_await from two other threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
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
#include "kube/secrets.h"
#include "support/kube_apiserver.h"
#include "support/tls_certs.h"

namespace podid::kube {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using nlohmann::json;
using test::base64_encode;

const std::string kToken = "t0k3n";
const std::string kClientSecret = "s3cr3t-value-do-not-print";
const std::string kPkcs12 = std::string("\x30\x82\x00\x01\x00\xff", 6);  // raw bytes, a NUL among them

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

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
        throw std::runtime_error("calls did not finish within 20 s");
    return results;
}

// Scripted answers to get(), counted; each answer comes after `delay`.
class ScriptedRequests final : public KubeRequests {
public:
    std::function<ApiResult<json>(const std::string& target)> answer;
    std::chrono::milliseconds delay{0};
    std::atomic<int> gets{0};
    std::mutex mu;
    std::vector<std::string> targets;

    asio::awaitable<ApiResult<json>> get(std::string target) override {
        ++gets;
        {
            std::lock_guard lock(mu);
            targets.push_back(target);
        }
        if (delay.count() > 0) {
            asio::steady_timer timer(co_await asio::this_coro::executor, delay);
            co_await timer.async_wait(asio::use_awaitable);
        }
        co_return answer(target);
    }
    asio::awaitable<ApiResult<json>> create(std::string, json) override {
        co_return ApiError{405, "MethodNotAllowed", make_error("no POST here")};
    }
};

json secret_json(const json& data) {
    return {{"kind", "Secret"},
            {"apiVersion", "v1"},
            {"metadata", {{"name", "sp1"}, {"namespace", "ns1"}}},
            {"type", "Opaque"},
            {"data", data}};
}

class SecretReaderTest : public ::testing::Test {
protected:
    SecretReaderTest() {
        api->answer = [](const std::string&) -> ApiResult<json> {
            return secret_json(
                {{"clientSecret", base64_encode(kClientSecret)}, {"certificate", base64_encode(kPkcs12)}});
        };
    }

    Result<SecretData> read(SecretReader& reader, const std::string& ns = "ns1", const std::string& name = "sp1") {
        return gather<Result<SecretData>>(callers.io, 1, [&] { return reader.read(ns, name); }).front();
    }

    Loop control{1};
    Loop callers{2};
    std::shared_ptr<ScriptedRequests> api = std::make_shared<ScriptedRequests>();
};

TEST_F(SecretReaderTest, ReadsAndDecodesTheData) {
    SecretReader reader(control.io.get_executor(), api);
    auto data = read(reader);
    ASSERT_TRUE(data) << data.error().message;
    EXPECT_EQ(*data, (SecretData{{"certificate", kPkcs12}, {"clientSecret", kClientSecret}}));
    std::lock_guard lock(api->mu);
    EXPECT_EQ(api->targets, std::vector<std::string>{"/api/v1/namespaces/ns1/secrets/sp1"});
}

TEST_F(SecretReaderTest, ASecretWithoutDataIsEmpty) {
    api->answer = [](const std::string&) -> ApiResult<json> {
        return json{{"kind", "Secret"}, {"metadata", {{"name", "sp1"}}}};
    };
    SecretReader reader(control.io.get_executor(), api);
    auto data = read(reader);
    ASSERT_TRUE(data) << data.error().message;
    EXPECT_TRUE(data->empty());
}

TEST_F(SecretReaderTest, CachedForTheTtl) {
    std::atomic<int64_t> now{1'000'000};
    SecretReaderOptions options;
    options.ttl = 60s;
    options.now_ms = [&] { return now.load(); };
    SecretReader reader(control.io.get_executor(), api, options);
    ASSERT_TRUE(read(reader));
    now += 59'000;
    ASSERT_TRUE(read(reader));
    EXPECT_EQ(api->gets.load(), 1);
    EXPECT_EQ(reader.stats().cache_hits, 1u);

    now += 1'000;  // 60 s after the GET
    auto data = read(reader);
    ASSERT_TRUE(data);
    EXPECT_EQ(data->at("clientSecret"), kClientSecret);
    EXPECT_EQ(api->gets.load(), 2);

    ASSERT_TRUE(read(reader, "ns1", "sp2"));  // another Secret: its own GET
    EXPECT_EQ(api->gets.load(), 3);
    EXPECT_EQ(reader.stats().cached, 2u);
}

TEST_F(SecretReaderTest, ABurstReadsOnce) {
    api->delay = 100ms;
    SecretReader reader(control.io.get_executor(), api);
    auto results = gather<Result<SecretData>>(callers.io, 200, [&] { return reader.read("ns1", "sp1"); });
    ASSERT_EQ(results.size(), 200u);
    for (const auto& r : results) {
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->at("clientSecret"), kClientSecret);
    }
    EXPECT_EQ(api->gets.load(), 1);
    const auto stats = reader.stats();
    EXPECT_EQ(stats.requests, 1u);
    EXPECT_EQ(stats.shared + stats.cache_hits, 199u);
}

struct ErrorCase {
    const char* name;
    ApiResult<json> answer;
    int want_code;
    std::string want_text;
};

TEST_F(SecretReaderTest, ErrorsSayWhatToFixAndNeverShowAValue) {
    const std::vector<ErrorCase> cases = {
        {"forbidden",
         ApiError{403, "Forbidden",
                  make_error("API server 10.0.0.1:443: GET /api/v1/namespaces/ns1/secrets/sp1: HTTP 403: secrets "
                             "\"sp1\" is forbidden: User \"system:serviceaccount:podid:podid\" cannot get resource "
                             "\"secrets\" in API group \"\" in the namespace \"ns1\"")},
         EACCES, "cannot read secret ns1/sp1: the agent's ClusterRole needs `get` on this secret"},
        {"not found",
         ApiError{404, "NotFound",
                  make_error("API server 10.0.0.1:443: GET /api/v1/namespaces/ns1/secrets/sp1: HTTP 404: secrets "
                             "\"sp1\" not found")},
         ENOENT, "cannot read secret ns1/sp1: secret not found: "},
        {"unreachable", ApiError{0, "", make_error("API server 10.0.0.1:443: connect failed", ECONNREFUSED)},
         ECONNREFUSED, "cannot read secret ns1/sp1: API server 10.0.0.1:443: connect failed"},
        {"a value that is not base64",
         secret_json({{"clientSecret", base64_encode(kClientSecret)}, {"password", kClientSecret + "!"}}), EPROTO,
         "the value of key \"password\" is not base64"},
        {"a value that is not a string", secret_json({{"clientSecret", base64_encode(kClientSecret)}, {"n", 1}}),
         EPROTO, "the value of key \"n\" is not base64"},
        {"data that is not an object", secret_json(json::array({kClientSecret})), EPROTO, "its data is not an object"},
    };
    for (const auto& c : cases) {
        api->answer = [&](const std::string&) { return c.answer; };
        SecretReader reader(control.io.get_executor(), api);
        auto result = read(reader);
        ASSERT_FALSE(result) << c.name;
        EXPECT_EQ(result.error().code, c.want_code) << c.name;
        EXPECT_TRUE(contains(result.error().message, c.want_text)) << c.name << ": " << result.error().message;
        EXPECT_FALSE(contains(result.error().message, kClientSecret)) << c.name << ": " << result.error().message;
        EXPECT_FALSE(contains(result.error().message, base64_encode(kClientSecret)))
            << c.name << ": " << result.error().message;
        EXPECT_EQ(reader.stats().failures, 1u) << c.name;
        EXPECT_EQ(reader.stats().cached, 0u) << c.name;
    }
}

TEST_F(SecretReaderTest, FailuresAreNotRemembered) {
    std::atomic<bool> allowed{false};
    api->answer = [&](const std::string&) -> ApiResult<json> {
        if (!allowed)
            return ApiError{403, "Forbidden", make_error("HTTP 403")};
        return secret_json({{"clientSecret", base64_encode(kClientSecret)}});
    };
    SecretReader reader(control.io.get_executor(), api);
    EXPECT_FALSE(read(reader));
    allowed = true;  // the ClusterRole was fixed
    auto data = read(reader);
    ASSERT_TRUE(data) << data.error().message;
    EXPECT_EQ(api->gets.load(), 2);
}

TEST_F(SecretReaderTest, NamesThatAreNoNamesAreRefusedWithoutARequest) {
    SecretReader reader(control.io.get_executor(), api);
    for (auto [ns, name] : {std::pair{"ns1", ""}, std::pair{"", "sp1"}, std::pair{"ns1", "../pods/x"},
                            std::pair{"ns1", "sp1?watch=1"}, std::pair{"NS1", "sp1"}}) {
        auto result = read(reader, ns, name);
        ASSERT_FALSE(result) << ns << "/" << name;
        EXPECT_EQ(result.error().code, EINVAL) << ns << "/" << name;
    }
    EXPECT_EQ(api->gets.load(), 0);
}

// ---- over HTTPS, against the API-server double ------------------------------------------------------

TEST(SecretReaderDouble, ASecretTheServerDoesNotHaveIsNotFound) {
    test::KubeApiServerOptions options;
    options.tokens = {kToken};
    test::KubeApiServer api(options);
    ASSERT_TRUE(api.listen("127.0.0.1", 0));
    KubeConfig config;
    config.server = api.url();
    config.host = "127.0.0.1";
    config.port = std::to_string(api.port());
    config.ca_pem = api.pki().ca.cert_pem;
    config.token = kToken;
    auto client = Client::create(config).value();
    Loop control{1};
    Loop callers{1};
    {
        SecretReader reader(control.io.get_executor(), client);
        auto result = gather<Result<SecretData>>(callers.io, 1, [&] { return reader.read("ns1", "sp1"); }).front();
        ASSERT_FALSE(result);
        EXPECT_EQ(result.error().code, ENOENT);
        EXPECT_TRUE(contains(result.error().message,
                             "cannot read secret ns1/sp1: secret not found: API server "
                             "127.0.0.1:" +
                                 std::to_string(api.port()) + ": GET /api/v1/namespaces/ns1/secrets/sp1: HTTP 404"))
            << result.error().message;
        const auto log = api.requests();
        ASSERT_EQ(log.size(), 1u);
        EXPECT_EQ(log[0].method, "GET");
        EXPECT_EQ(log[0].target, "/api/v1/namespaces/ns1/secrets/sp1");
        EXPECT_EQ(log[0].user, "token:" + kToken);
        EXPECT_EQ(log[0].status, 404);
    }
    client->shutdown();
}

}  // namespace
}  // namespace podid::kube
