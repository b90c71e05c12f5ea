// CallerLimits on a fake clock: which connections and requests the server admits per caller (its cgroup id).
#include "http/caller_limits.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace podid {
namespace {

// Per-caller fairness (http/caller_limits.h), which the server applies before any request reaches the
// handler. One row per scenario: a sequence of steps on a fake clock and what each must answer.
struct LimitStep {
    enum Op { open, close, request } op;
    uint64_t caller;
    int at_ms;
    bool expect;  // for open/request: admitted
};

struct LimitRow {
    const char* name;
    CallerLimitsConfig config;
    std::vector<LimitStep> steps;
};

TEST(CallerLimits, Table) {
    using S = LimitStep;
    const std::vector<LimitRow> rows = {
        {"connection cap is per caller",
         {2, 0, 0},
         {{S::open, 1, 0, true},
          {S::open, 1, 0, true},
          {S::open, 1, 0, false},
          {S::open, 2, 0, true},
          {S::close, 1, 0, true},
          {S::open, 1, 0, true},
          {S::open, 1, 0, false}}},
        {"no limits admit everything",
         {0, 0, 0},
         {{S::open, 1, 0, true}, {S::open, 1, 0, true}, {S::request, 1, 0, true}, {S::request, 1, 0, true}}},
        {"burst then refill at the rate",
         {0, 10, 3},
         {{S::open, 7, 0, true},
          {S::request, 7, 0, true},
          {S::request, 7, 0, true},
          {S::request, 7, 0, true},
          {S::request, 7, 0, false},
          {S::request, 7, 50, false},
          {S::request, 7, 100, true},
          {S::request, 7, 100, false}}},
        {"one caller's empty bucket leaves the others alone",
         {0, 1, 1},
         {{S::request, 1, 0, true}, {S::request, 1, 0, false}, {S::request, 2, 0, true}, {S::request, 3, 0, true}}},
        {"reconnecting does not refill the bucket",
         {0, 1, 2},
         {{S::open, 5, 0, true},
          {S::request, 5, 0, true},
          {S::request, 5, 0, true},
          {S::close, 5, 0, true},
          {S::open, 5, 10, true},
          {S::request, 5, 10, false}}},
        {"refill never exceeds the burst",
         {0, 100, 2},
         {{S::request, 4, 0, true},
          {S::request, 4, 60'000, true},
          {S::request, 4, 60'000, true},
          {S::request, 4, 60'000, false}}},
    };
    for (const LimitRow& row : rows) {
        CallerLimits limits(row.config);
        const auto t0 = CallerLimits::Clock::time_point{} + std::chrono::hours(1);
        int i = 0;
        for (const LimitStep& step : row.steps) {
            const auto now = t0 + std::chrono::milliseconds(step.at_ms);
            switch (step.op) {
            case LimitStep::open:
                EXPECT_EQ(limits.try_open(step.caller, now), step.expect) << row.name << " #" << i;
                break;
            case LimitStep::close: limits.close(step.caller, now); break;
            case LimitStep::request:
                EXPECT_EQ(limits.try_request(step.caller, now), step.expect) << row.name << " #" << i;
                break;
            }
            ++i;
        }
    }
}

// Memory stays bounded by live callers: a caller whose connections are gone and whose bucket has
// refilled is forgotten, however many distinct callers came and went.
TEST(CallerLimits, ForgetsIdleCallers) {
    CallerLimits limits({0, 100, 10});
    auto now = CallerLimits::Clock::time_point{} + std::chrono::hours(1);
    for (uint64_t caller = 1; caller <= 10'000; ++caller) {
        ASSERT_TRUE(limits.try_open(caller, now));
        EXPECT_TRUE(limits.try_request(caller, now));
        limits.close(caller, now);
        now += std::chrono::milliseconds(20);  // enough for the previous callers' buckets to refill
    }
    EXPECT_LT(limits.tracked(), 200u);
}

}  // namespace
}  // namespace podid
