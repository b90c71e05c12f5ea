// podid-imds-emulator's flags, fault JSON and the IMDS rate limiter, as pure functions.
#include <gtest/gtest.h>

#include <functional>

#include "imds-emulator/faults.h"
#include "imds-emulator/identity_store.h"
#include "imds-emulator/options.h"
#include "imds-emulator/rate_limiter.h"

namespace podid::emulator {
namespace {

struct FlagCase {
    const char* name;
    std::vector<std::string> args;
    std::string error;  // "" = accepted
    std::function<void(const CommandLine&)> check;
};

TEST(CommandLineFlags, ParseOrRejectWithOneLine) {
    const std::vector<FlagCase> cases = {
        {"defaults",
         {},
         "",
         [](const CommandLine& c) {
             EXPECT_EQ(c.listen_ip, "169.254.169.254");
             EXPECT_EQ(c.listen_port, 80);
             EXPECT_EQ(c.token_lifetime, 86400);
             EXPECT_FALSE(c.system_identity);
             EXPECT_EQ(c.fault.mode, FaultMode::none);
         }},
        {"listen_loopback_any_port",
         {"--listen", "127.0.0.1:0"},
         "",
         [](const CommandLine& c) {
             EXPECT_EQ(c.listen_ip, "127.0.0.1");
             EXPECT_EQ(c.listen_port, 0);
         }},
        {"listen_inline_value_ipv6",
         {"--listen=[::1]:8080"},
         "",
         [](const CommandLine& c) {
             EXPECT_EQ(c.listen_ip, "::1");
             EXPECT_EQ(c.listen_port, 8080);
         }},
        {"repeated_identities",
         {"--identity", "c1", "--identity", "c2,/subscriptions/s/x,o2"},
         "",
         [](const CommandLine& c) {
             ASSERT_EQ(c.identities.size(), 2u);
             EXPECT_EQ(c.identities[0].client_id, "c1");
             EXPECT_EQ(c.identities[1].resource_id, "/subscriptions/s/x");
             EXPECT_EQ(c.identities[1].object_id, "o2");
         }},
        {"everything_else",
         {"--system-identity", "sys", "--tenant", "t", "--token-lifetime", "60", "--key-file", "k.pem", "--ready-file",
          "r", "--enforce-limits", "--fault", R"({"mode":"status","status":429,"count":2})"},
         "",
         [](const CommandLine& c) {
             EXPECT_EQ(c.system_identity, "sys");
             EXPECT_EQ(c.tenant_id, "t");
             EXPECT_EQ(c.token_lifetime, 60);
             EXPECT_EQ(c.key_file, "k.pem");
             EXPECT_EQ(c.ready_file, "r");
             EXPECT_TRUE(c.enforce_limits);
             EXPECT_EQ(c.fault.mode, FaultMode::status);
             EXPECT_EQ(c.fault.status, 429u);
             EXPECT_EQ(c.fault.count, 2);
         }},
        {"help", {"--help"}, "", [](const CommandLine& c) { EXPECT_TRUE(c.help); }},
        {"unknown_flag", {"--verbose"}, "unknown flag '--verbose' (see --help)", nullptr},
        {"missing_value", {"--tenant"}, "--tenant needs a value", nullptr},
        {"listen_without_port", {"--listen", "127.0.0.1"}, "--listen needs IP:PORT, got '127.0.0.1'", nullptr},
        {"listen_bad_ip", {"--listen", "localhost:80"}, "--listen: 'localhost' is not an IP address", nullptr},
        {"listen_bad_port", {"--listen", "127.0.0.1:70000"}, "--listen: '70000' is not a port number", nullptr},
        {"lifetime_not_positive",
         {"--token-lifetime", "0"},
         "--token-lifetime needs a positive number of seconds",
         nullptr},
        {"identity_too_many_parts",
         {"--identity", "a,/b,c,d"},
         "--identity takes CLIENT_ID[,RESOURCE_ID[,OBJECT_ID]]",
         nullptr},
        {"identity_bad_resource_id",
         {"--identity", "a,b"},
         "--identity resource id must be an ARM id starting with '/': b",
         nullptr},
        {"fault_bad_json", {"--fault", "{"}, "--fault: fault is not valid JSON", nullptr},
        {"flag_without_value_given_one", {"--enforce-limits=yes"}, "--enforce-limits takes no value", nullptr},
    };
    for (const auto& c : cases) {
        auto parsed = parse_command_line(c.args);
        if (c.error.empty()) {
            ASSERT_TRUE(parsed) << c.name << ": " << parsed.error().message;
            c.check(*parsed);
        } else {
            ASSERT_FALSE(parsed) << c.name;
            EXPECT_EQ(parsed.error().message, c.error) << c.name;
        }
    }
}

TEST(CommandLineFlags, ConfigDerivesMissingIdentityIds) {
    auto parsed = parse_command_line({"--identity", "c1", "--system-identity", "sys"});
    ASSERT_TRUE(parsed);
    EmulatorConfig config = to_config(*parsed);
    const EmulatedIdentity* c1 = config.identities.find(Selector::client_id, "c1");
    ASSERT_NE(c1, nullptr);
    EXPECT_EQ(c1->object_id, derived_object_id("c1"));
    EXPECT_EQ(c1->resource_id, config.identities.vm().user_identity_resource_id("id-c1"));
    EXPECT_EQ(config.identities.find(Selector::none, "")->client_id, "sys");
}

struct FaultCase {
    std::string json;
    std::string error;  // "" = accepted
    FaultMode mode;
    int count;
};

TEST(FaultSpecs, ParseOrReject) {
    const std::vector<FaultCase> cases = {
        {R"({"mode":"none"})", "", FaultMode::none, -1},
        {R"({"mode":"status","status":429,"retry_after":2,"count":3})", "", FaultMode::status, 3},
        {R"({"mode":"latency","latency_ms":500})", "", FaultMode::latency, -1},
        {R"({"mode":"reset","count":1})", "", FaultMode::reset, 1},
        {R"({"mode":"status","count":0})", "", FaultMode::none, 0},  // applies to nothing
        {R"({"mode":"latency"})", "latency fault needs latency_ms > 0", FaultMode::none, 0},
        {R"({"mode":"hang","count":2})", "", FaultMode::hang, 2},
        {R"({"mode":"slow_body","latency_ms":2000})", "", FaultMode::slow_body, -1},
        {R"({"mode":"slow_body"})", "slow_body fault needs latency_ms > 0", FaultMode::none, 0},
        {R"({"mode":"html","status":502,"retry_after":1})", "", FaultMode::html, -1},
        {R"({"status":429})", "fault needs \"mode\": none, status, latency, reset, hang, slow_body or html",
         FaultMode::none, 0},
        {R"({"mode":"status","status":"429"})", "fault field 'status' must be an integer", FaultMode::none, 0},
        {R"({"mode":"status","count":-2})", "fault count must be -1 (until cleared) or a number of requests",
         FaultMode::none, 0},
        {R"([1])", "fault must be a JSON object", FaultMode::none, 0},
    };
    for (const auto& c : cases) {
        auto spec = parse_fault(std::string_view(c.json));
        if (c.error.empty()) {
            ASSERT_TRUE(spec) << c.json << ": " << spec.error().message;
            EXPECT_EQ(spec->mode, c.mode) << c.json;
            EXPECT_EQ(spec->count, c.count) << c.json;
            auto again = parse_fault(to_json(*spec));  // what GET /_emulator/faults shows parses back the same
            ASSERT_TRUE(again);
            EXPECT_EQ(to_json(*again), to_json(*spec));
        } else {
            ASSERT_FALSE(spec) << c.json;
            EXPECT_EQ(spec.error().message, c.error) << c.json;
        }
    }
}

TEST(FaultSpecs, CountRunsOutThenNormal) {
    FaultState state;
    state.set(FaultSpec{FaultMode::status, 429, 2, 0, 2});
    EXPECT_EQ(state.take().status, 429u);
    EXPECT_EQ(state.take().mode, FaultMode::status);
    EXPECT_EQ(state.take().mode, FaultMode::none);
    EXPECT_EQ(state.current().mode, FaultMode::none);
    state.set(FaultSpec{FaultMode::reset, 500, -1, 0, -1});
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(state.take().mode, FaultMode::reset);
}

TEST(RateLimits, TwentyPerSecondAndFiveConcurrent) {
    RateLimiter limiter;
    auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
    int admitted = 0;
    for (int i = 0; i < 25; ++i)
        admitted += limiter.admit(t0 + std::chrono::milliseconds(i), 0);
    EXPECT_EQ(admitted, 20);
    EXPECT_FALSE(limiter.admit(t0 + std::chrono::milliseconds(999), 0));
    EXPECT_TRUE(limiter.admit(t0 + std::chrono::milliseconds(1000), 0));  // the first one left the window

    RateLimiter fresh;
    EXPECT_TRUE(fresh.admit(t0, 4));
    EXPECT_FALSE(fresh.admit(t0, 5));
}

}  // namespace
}  // namespace podid::emulator
