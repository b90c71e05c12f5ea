// Readiness (/readyz): attached programs, the self-check's result and age, and the bindings' first sync.
#include "observe/health.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace podid {
namespace {

TEST(Health, ReadinessTable) {
    struct Row {
        const char* name;
        size_t attached;
        bool check_enabled;
        std::optional<SelfCheckStatus> check;  // nullopt: provider not wired
        int64_t now;
        bool bindings;
        bool want_ready;
        const char* want_reason_part;
    } rows[] = {
        {"all good", 6, true, SelfCheckStatus{true, 1000, ""}, 2000, true, true, ""},
        {"no programs", 0, true, SelfCheckStatus{true, 1000, ""}, 2000, true, false, "not attached"},
        {"too few programs", 2, true, SelfCheckStatus{true, 1000, ""}, 2000, true, false, "only 2 of 6"},
        {"check never ran", 6, true, SelfCheckStatus{}, 2000, true, false, "has not run"},
        {"check failed", 6, true, SelfCheckStatus{false, 1000, "connect: refused"}, 2000, true, false,
         "self-check failed: connect: refused"},
        {"check stale", 6, true, SelfCheckStatus{true, 1000, ""}, 1000 + 90'001, true, false, "stale"},
        {"check not wired", 6, true, std::nullopt, 2000, true, false, "not running"},
        {"check disabled", 6, false, std::nullopt, 2000, true, true, ""},
        {"bindings not synced", 6, true, SelfCheckStatus{true, 1000, ""}, 2000, false, false, "not synced"},
    };
    for (const auto& r : rows) {
        HealthSources s;
        s.programs_attached = [&] { return r.attached; };
        s.programs_expected = 6;
        if (r.check)
            s.self_check = [&] { return *r.check; };
        s.self_check_enabled = r.check_enabled;
        s.bindings_ready = [&] { return r.bindings; };
        s.now_ms = [&] { return r.now; };
        auto got = Health(s).readiness();
        EXPECT_EQ(got.ready, r.want_ready) << r.name;
        EXPECT_NE(got.reason.find(r.want_reason_part), std::string::npos) << r.name << ": " << got.reason;
    }
}

// An agent that handed its listeners to the next one is not ready, however healthy it is otherwise; before that,
// the retired provider changes nothing.
TEST(Health, HandedOverAgentIsNotReady) {
    std::string retired;
    HealthSources s;
    s.programs_attached = [] { return size_t{6}; };
    s.programs_expected = 6;
    s.self_check_enabled = false;
    s.bindings_ready = [] { return true; };
    s.now_ms = [] { return int64_t{0}; };
    s.retired = [&] { return retired; };
    Health health(s);
    EXPECT_TRUE(health.readiness().ready);
    retired = "handed over to the agent with pid 42";
    Readiness r = health.readiness();
    EXPECT_FALSE(r.ready);
    EXPECT_EQ(r.reason, retired);
}

}  // namespace
}  // namespace podid
