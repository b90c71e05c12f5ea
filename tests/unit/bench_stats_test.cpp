// The order statistics podid-bench reports its medians and ratios with (tests/bench/stats.cpp).
#include "stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace podid::bench {
namespace {

TEST(BenchStats, PercentileIsNearestRankAndMedianAveragesTheMiddlePair) {
    EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
    EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
    EXPECT_DOUBLE_EQ(percentile({10, 20, 30, 40}, 25), 10);
    EXPECT_DOUBLE_EQ(percentile({10, 20, 30, 40}, 75), 30);
    EXPECT_DOUBLE_EQ(percentile({10, 20, 30, 40}, 100), 40);
    EXPECT_TRUE(std::isnan(median({})));
}

TEST(BenchStats, RatiosPairTrialsAndSkipZeroDenominators) {
    auto r = ratios({2, 3, 4, 9}, {1, 0, 8});
    ASSERT_EQ(r.size(), 2u);
    EXPECT_DOUBLE_EQ(r[0], 2);
    EXPECT_DOUBLE_EQ(r[1], 0.5);
}

TEST(BenchStats, MedianIntervalUsesOrderStatisticsAroundTheMiddle) {
    std::vector<double> v;
    for (int i = 1; i <= 100; ++i)
        v.push_back(i);
    // n = 100: half width 9.8 ranks, so ranks 40 and 61.
    Interval ci = median_ci95(v);
    EXPECT_DOUBLE_EQ(ci.low, 40);
    EXPECT_DOUBLE_EQ(ci.high, 61);
    EXPECT_TRUE(std::isnan(median_ci95({1, 2, 3, 4, 5}).low));
}

TEST(BenchStats, MedianIntervalCoversTheTrueMedianAboutNinetyFivePercentOfTheTime) {
    std::mt19937 rng(42);
    std::normal_distribution<double> noise(1.0, 0.1);  // true median 1.0
    int covered = 0;
    const int runs = 2000;
    for (int run = 0; run < runs; ++run) {
        std::vector<double> sample(64);
        for (auto& x : sample)
            x = noise(rng);
        Interval ci = median_ci95(sample);
        covered += ci.low <= 1.0 && 1.0 <= ci.high;
    }
    // Whole ranks make the interval slightly conservative: expect 94-98 %, never the 50-80 % of a wrong formula.
    EXPECT_GE(covered, runs * 94 / 100);
    EXPECT_LE(covered, runs * 98 / 100);
}

}  // namespace
}  // namespace podid::bench
