// The emulator over real loopback HTTP, in-process on 127.0.0.1:0: keep-alive, fault modes (429 with
// Retry-After for N requests, connection reset, latency, hang, slow body, HTML error page), IMDS limits,
// statistics, and the program itself.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "imds-emulator/http_client.h"
#include "imds-emulator/jwt.h"
#include "imds-emulator/server.h"

namespace podid::emulator {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kClientA = "a1a1a1a1-0000-4000-8000-00000000000a";
constexpr const char* kSystem = "5e5e5e5e-0000-4000-8000-000000000005";
const Headers kMeta = {{"Metadata", "true"}};

std::string token_target(const std::string& client_id = kClientA,
                         const std::string& resource = "https%3A%2F%2Fvault.azure.net") {
    std::string t = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + resource;
    if (!client_id.empty())
        t += "&client_id=" + client_id;
    return t;
}

TokenSigner fresh_signer() {
    auto signer = TokenSigner::generate();
    if (!signer)
        throw std::runtime_error(signer.error().message);
    return std::move(*signer);
}

std::unique_ptr<EmulatorServer> start_server(bool enforce_limits = false) {
    EmulatorConfig config;
    config.listen_ip = "127.0.0.1";
    config.listen_port = 0;
    config.identities.add_user_assigned({kClientA, "", ""});
    config.identities.set_system_assigned(kSystem);
    config.enforce_limits = enforce_limits;
    auto server = std::make_unique<EmulatorServer>(std::move(config), fresh_signer());
    auto port = server->start();
    if (!port)
        throw std::runtime_error(port.error().message);
    return server;
}

class EmulatorServerTest : public ::testing::Test {
protected:
    void SetUp() override { server_ = start_server(); }
    uint16_t port() const { return server_->port(); }
    Result<HttpResponse> get_token(const std::string& target = token_target()) {
        return http_get("127.0.0.1", port(), target, kMeta);
    }
    nlohmann::json stats() {
        auto s = fetch_stats("127.0.0.1", port());
        if (!s)
            throw std::runtime_error(s.error().message);
        return *s;
    }
    std::unique_ptr<EmulatorServer> server_;
};

TEST_F(EmulatorServerTest, KeepAliveConnectionServesSeveralRequestsAndStatsNameThePeer) {
    auto conn = HttpConnection::open("127.0.0.1", port());
    ASSERT_TRUE(conn) << conn.error().message;
    for (const auto& target : {token_target(), token_target(), token_target("")}) {
        auto res = conn->get(target, kMeta);
        ASSERT_TRUE(res) << res.error().message;
        EXPECT_EQ(res->result_int(), 200u) << res->body();
        EXPECT_TRUE(res->keep_alive());
    }
    auto s = stats();
    EXPECT_EQ(s["connections"], 2);  // ours, plus the one fetching the stats
    EXPECT_EQ(s["token_requests"], 3);
    EXPECT_EQ(s["by_client_id"][kClientA], 2);
    EXPECT_EQ(s["by_client_id"][kSystem], 1);  // no selector: recorded as the identity served
    EXPECT_EQ(s["by_resource"]["https://vault.azure.net"], 3);
    ASSERT_EQ(s["requests"].size(), 3u);
    for (const auto& r : s["requests"]) {
        EXPECT_EQ(r["peer"], conn->local_endpoint());
        EXPECT_EQ(r["path"], "/metadata/identity/oauth2/token");
        EXPECT_EQ(r["status"], 200);
    }
}

TEST_F(EmulatorServerTest, TokensVerifyWithTheServedJwksAndDiffer) {
    auto jwks = fetch_jwks("127.0.0.1", port());
    ASSERT_TRUE(jwks) << jwks.error().message;
    std::vector<std::string> tokens;
    for (int i = 0; i < 2; ++i) {
        auto res = get_token();
        ASSERT_TRUE(res && res->result_int() == 200);
        tokens.push_back(nlohmann::json::parse(res->body())["access_token"].get<std::string>());
        auto jwt = verify_jwt(tokens.back(), *jwks);
        ASSERT_TRUE(jwt) << jwt.error().message;
        EXPECT_EQ(jwt->claims["appid"], kClientA);
        EXPECT_EQ(jwt->claims["aud"], "https://vault.azure.net");
    }
    EXPECT_NE(tokens[0], tokens[1]);
}

struct StatusFaultCase {
    unsigned status;
    int retry_after;
    int count;
    std::string error;
};

TEST_F(EmulatorServerTest, StatusFaultAppliesToCountTokenRequestsThenClears) {
    const std::vector<StatusFaultCase> cases = {
        {429, 2, 2, "too_many_requests"},
        {500, -1, 1, "server_error"},
        {503, 5, 3, "server_error"},
        {410, 70, 1, "unknown"},
    };
    for (const auto& c : cases) {
        FaultSpec spec;
        spec.mode = FaultMode::status;
        spec.status = c.status;
        spec.retry_after = c.retry_after;
        spec.count = c.count;
        ASSERT_TRUE(set_fault("127.0.0.1", port(), spec));
        for (int i = 0; i < c.count; ++i) {
            auto res = get_token();
            ASSERT_TRUE(res) << res.error().message;
            EXPECT_EQ(res->result_int(), c.status);
            EXPECT_EQ(nlohmann::json::parse(res->body())["error"], c.error);
            auto retry_after = res->find(boost::beast::http::field::retry_after);
            if (c.retry_after < 0) {
                EXPECT_EQ(retry_after, res->end());
            } else {
                ASSERT_NE(retry_after, res->end());
                EXPECT_EQ(retry_after->value(), std::to_string(c.retry_after));
            }
        }
        auto after = get_token();
        ASSERT_TRUE(after);
        EXPECT_EQ(after->result_int(), 200u) << "fault outlived its count for status " << c.status;
    }
    auto current = http_get("127.0.0.1", port(), "/_emulator/faults");
    ASSERT_TRUE(current);
    EXPECT_EQ(nlohmann::json::parse(current->body())["mode"], "none");
    // Faults are for token requests only: the instance document is unaffected.
    ASSERT_TRUE(set_fault("127.0.0.1", port(), FaultSpec{FaultMode::status, 500, -1, 0, -1}));
    auto instance = http_get("127.0.0.1", port(), "/metadata/instance?api-version=2021-02-01", kMeta);
    ASSERT_TRUE(instance);
    EXPECT_EQ(instance->result_int(), 200u);
}

TEST_F(EmulatorServerTest, ResetFaultClosesTheConnectionWithoutAResponse) {
    ASSERT_TRUE(set_fault("127.0.0.1", port(), FaultSpec{FaultMode::reset, 500, -1, 0, 1}));
    auto conn = HttpConnection::open("127.0.0.1", port());
    ASSERT_TRUE(conn);
    auto res = conn->get(token_target(), kMeta);
    ASSERT_FALSE(res) << "got a response: " << res->body();
    auto next = get_token();
    ASSERT_TRUE(next) << next.error().message;
    EXPECT_EQ(next->result_int(), 200u);
    auto s = stats();
    ASSERT_EQ(s["requests"].size(), 2u);
    EXPECT_EQ(s["requests"][0]["status"], 0);
    EXPECT_EQ(s["requests"][0]["client_id"], kClientA);
    EXPECT_EQ(s["by_status"]["0"], 1);
}

TEST_F(EmulatorServerTest, LatencyFaultDelaysConcurrentRequestsWithoutSerialisingThem) {
    constexpr int kLatencyMs = 500;
    constexpr int kParallel = 3;
    ASSERT_TRUE(set_fault("127.0.0.1", port(), FaultSpec{FaultMode::latency, 500, -1, kLatencyMs, -1}));
    std::vector<std::future<std::pair<unsigned, Clock::duration>>> results;
    for (int i = 0; i < kParallel; ++i) {
        results.push_back(std::async(std::launch::async, [this] {
            auto start = Clock::now();
            auto res = get_token();
            return std::make_pair(res ? res->result_int() : 0u, Clock::now() - start);
        }));
    }
    for (auto& f : results) {
        auto [status, elapsed] = f.get();
        EXPECT_EQ(status, 200u);
        EXPECT_GE(elapsed, std::chrono::milliseconds(kLatencyMs));
    }
    auto s = stats();
    EXPECT_EQ(s["max_concurrent"], kParallel);
    EXPECT_EQ(s["in_flight"], 0);
}

// hang: the request is read and recorded, then nothing comes back until the client gives up (its timeout).
TEST_F(EmulatorServerTest, HangFaultNeverAnswersUntilTheClientGivesUp) {
    ASSERT_TRUE(set_fault("127.0.0.1", port(), FaultSpec{FaultMode::hang, 500, -1, 0, 1}));
    auto conn = HttpConnection::open("127.0.0.1", port(), 700ms);
    ASSERT_TRUE(conn);
    const auto start = Clock::now();
    auto res = conn->get(token_target(), kMeta);
    EXPECT_FALSE(res) << "got a response: " << res->body();
    EXPECT_GE(Clock::now() - start, 600ms) << "the connection was closed instead of left hanging";
    auto next = get_token();  // count 1: the next request is answered
    ASSERT_TRUE(next) << next.error().message;
    EXPECT_EQ(next->result_int(), 200u);
    auto s = stats();
    EXPECT_EQ(s["by_status"]["0"], 1);
    EXPECT_EQ(s["token_requests"], 2);
}

// slow_body: the head arrives at once, the body over latency_ms; the answer is the normal token.
TEST_F(EmulatorServerTest, SlowBodyFaultSpreadsTheBodyOverItsLatency) {
    constexpr int kSpreadMs = 600;
    ASSERT_TRUE(set_fault("127.0.0.1", port(), FaultSpec{FaultMode::slow_body, 500, -1, kSpreadMs, 1}));
    const auto start = Clock::now();
    auto res = get_token();
    const auto took = Clock::now() - start;
    ASSERT_TRUE(res) << res.error().message;
    EXPECT_EQ(res->result_int(), 200u);
    EXPECT_EQ(nlohmann::json::parse(res->body())["client_id"], kClientA);
    EXPECT_GE(took, std::chrono::milliseconds(kSpreadMs * 9 / 10));
    EXPECT_LT(took, std::chrono::milliseconds(kSpreadMs * 5));
}

// html: the injected status with a body that is not IMDS's JSON (a proxy's error page).
TEST_F(EmulatorServerTest, HtmlFaultAnswersAnErrorPage) {
    ASSERT_TRUE(set_fault("127.0.0.1", port(), FaultSpec{FaultMode::html, 502, 3, 0, 1}));
    auto res = get_token();
    ASSERT_TRUE(res) << res.error().message;
    EXPECT_EQ(res->result_int(), 502u);
    EXPECT_EQ((*res)[boost::beast::http::field::content_type], "text/html");
    EXPECT_EQ((*res)[boost::beast::http::field::retry_after], "3");
    EXPECT_TRUE(nlohmann::json::parse(res->body(), nullptr, false).is_discarded()) << res->body();
    auto next = get_token();
    ASSERT_TRUE(next);
    EXPECT_EQ(next->result_int(), 200u);
}

TEST_F(EmulatorServerTest, ResetZeroesCountersButKeepsFaults) {
    ASSERT_TRUE(get_token());
    ASSERT_TRUE(set_fault("127.0.0.1", port(), FaultSpec{FaultMode::status, 429, -1, 0, -1}));
    ASSERT_TRUE(reset_stats("127.0.0.1", port()));
    auto s = stats();
    EXPECT_EQ(s["token_requests"], 0);
    EXPECT_EQ(s["connections"], 1);  // the stats request's own connection
    EXPECT_TRUE(s["requests"].empty());
    EXPECT_TRUE(s["by_client_id"].empty());
    auto res = get_token();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 429u);
}

struct AdminCase {
    const char* name;
    boost::beast::http::verb method;
    std::string target;
    std::string body;
    unsigned status;
};

TEST_F(EmulatorServerTest, AdminApiRejectsBadInput) {
    using V = boost::beast::http::verb;
    const std::vector<AdminCase> cases = {
        {"fault_not_json", V::post, "/_emulator/faults", "{", 400},
        {"fault_unknown_mode", V::post, "/_emulator/faults", R"({"mode":"explode"})", 400},
        {"fault_bad_status", V::post, "/_emulator/faults", R"({"mode":"status","status":99})", 400},
        {"stats_is_get_only", V::post, "/_emulator/stats", "", 405},
        {"reset_is_post_only", V::get, "/_emulator/reset", "", 405},
        {"unknown_admin_path", V::get, "/_emulator/nope", "", 404},
        {"unknown_imds_path", V::get, "/metadata/nope", "", 404},
    };
    auto conn = HttpConnection::open("127.0.0.1", port());
    ASSERT_TRUE(conn);
    for (const auto& c : cases) {
        HttpRequest req{c.method, c.target, 11};
        req.body() = c.body;
        auto res = conn->send(std::move(req));
        ASSERT_TRUE(res) << c.name;
        EXPECT_EQ(res->result_int(), c.status) << c.name << ": " << res->body();
    }
    auto current = conn->get("/_emulator/faults");
    ASSERT_TRUE(current);
    EXPECT_EQ(nlohmann::json::parse(current->body())["mode"], "none");
}

TEST_F(EmulatorServerTest, StopReturnsWithIdleAndDelayedConnectionsOpen) {
    ASSERT_TRUE(set_fault("127.0.0.1", port(), FaultSpec{FaultMode::latency, 500, -1, 10000, -1}));
    auto idle = HttpConnection::open("127.0.0.1", port());
    ASSERT_TRUE(idle);
    auto delayed = std::async(std::launch::async, [this] { return get_token(); });
    std::this_thread::sleep_for(200ms);
    auto start = Clock::now();
    server_->stop();
    EXPECT_LT(Clock::now() - start, 2s);
    auto res = delayed.get();
    EXPECT_FALSE(res);  // the connection went away with the server
    EXPECT_FALSE(http_get("127.0.0.1", port(), "/_emulator/stats"));
}

TEST(EmulatorLimits, FiveConcurrentTokenRequestsThen429) {
    auto server = start_server(/*enforce_limits=*/true);
    server->set_fault(FaultSpec{FaultMode::latency, 500, -1, 600, -1});
    std::vector<std::future<unsigned>> results;
    for (int i = 0; i < 7; ++i) {
        results.push_back(std::async(std::launch::async, [&] {
            auto res = http_get("127.0.0.1", server->port(), token_target(), kMeta);
            return res ? res->result_int() : 0u;
        }));
    }
    int ok = 0, throttled = 0;
    for (auto& f : results) {
        unsigned status = f.get();
        ok += status == 200;
        throttled += status == 429;
    }
    EXPECT_EQ(ok, 5);
    EXPECT_EQ(throttled, 2);
    auto s = server->stats();
    EXPECT_EQ(s["by_status"]["200"], 5);
    EXPECT_EQ(s["by_status"]["429"], 2);
    EXPECT_GE(s["max_concurrent"], 6);  // refused requests count as arrivals: that is what exceeded the limit
}

TEST(EmulatorLimits, TwentyTokenRequestsPerSecond) {
    auto server = start_server(/*enforce_limits=*/true);
    auto conn = HttpConnection::open("127.0.0.1", server->port());
    ASSERT_TRUE(conn);
    auto start = Clock::now();
    int ok = 0, throttled = 0;
    for (int i = 0; i < 25; ++i) {
        auto res = conn->get(token_target(), kMeta);
        ASSERT_TRUE(res);
        ok += res->result_int() == 200;
        throttled += res->result_int() == 429;
    }
    if (Clock::now() - start >= 1s)
        GTEST_SKIP() << "machine too slow to send 25 requests within one second";
    EXPECT_EQ(ok, 20);
    EXPECT_EQ(throttled, 5);
}

// The program, as tests elsewhere and the demo run it.
struct Child {
    pid_t pid = -1;
    int out = -1, err = -1;
};

Child spawn(const std::vector<std::string>& args) {
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0)
        throw std::runtime_error("pipe failed");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        std::vector<char*> argv;
        std::string bin = PODID_EMULATOR_BIN;
        argv.push_back(bin.data());
        std::vector<std::string> copy = args;
        for (auto& a : copy)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    return Child{pid, out[0], err[0]};
}

std::string read_all(int fd) {
    std::string text;
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        text.append(buf, static_cast<size_t>(n));
    close(fd);
    return text;
}

int wait_exit(pid_t pid) {
    for (int i = 0; i < 100; ++i) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        std::this_thread::sleep_for(50ms);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -2;
}

TEST(EmulatorProgram, ServesOnReadyFilePortAndStopsOnSigterm) {
    auto dir = std::filesystem::temp_directory_path() / ("podid-emulator-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::string ready = (dir / "ready").string();
    Child child = spawn({"--listen", "127.0.0.1:0", "--identity", kClientA, "--ready-file", ready, "--tenant",
                         "7e7e7e7e-0000-4000-8000-00000000007e"});
    std::string endpoint;
    for (int i = 0; i < 200 && endpoint.empty(); ++i) {
        std::ifstream in(ready);
        std::getline(in, endpoint);
        if (endpoint.empty())
            std::this_thread::sleep_for(50ms);
    }
    ASSERT_FALSE(endpoint.empty()) << "no ready file";
    auto colon = endpoint.rfind(':');
    uint16_t port = static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1)));
    EXPECT_EQ(endpoint.substr(0, colon), "127.0.0.1");

    auto res = http_get("127.0.0.1", port, token_target(), kMeta);
    ASSERT_TRUE(res) << res.error().message;
    EXPECT_EQ(res->result_int(), 200u);
    auto jwt = decode_jwt(nlohmann::json::parse(res->body())["access_token"].get<std::string>());
    ASSERT_TRUE(jwt);
    EXPECT_EQ(jwt->claims["tid"], "7e7e7e7e-0000-4000-8000-00000000007e");

    kill(child.pid, SIGTERM);
    EXPECT_EQ(wait_exit(child.pid), 0);
    EXPECT_EQ(read_all(child.out), "listening on " + endpoint + "\n");
    read_all(child.err);
    std::filesystem::remove_all(dir);
}

TEST(EmulatorProgram, BadFlagExitsTwoWithOneLine) {
    Child child = spawn({"--listen", "nowhere"});
    EXPECT_EQ(wait_exit(child.pid), 2);
    std::string err = read_all(child.err);
    read_all(child.out);
    EXPECT_EQ(err, "podid-imds-emulator: --listen needs IP:PORT, got 'nowhere'\n");
}

}  // namespace
}  // namespace podid::emulator
