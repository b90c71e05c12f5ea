// Order statistics for trial results (medians of repeated A/B trials, latency percentiles).
#pragma once

#include <vector>

namespace podid::bench {

// NaN for an empty input. p in [0, 100], nearest-rank.
double percentile(std::vector<double> values, double p);
inline double median(const std::vector<double>& values) { return percentile(values, 50); }

// A distribution-free 95 % confidence interval of the median of `values` (order statistics: the ranks
// n/2 -/+ 0.98 sqrt(n)); {NaN, NaN} for fewer than 6 values, where no such interval exists.
struct Interval {
    double low, high;
};
Interval median_ci95(std::vector<double> values);

// a[i] / b[i] for trials run side by side (pairs where b[i] is 0 are skipped): the median of these cancels
// drift over a run (other load on the machine) that the ratio of two medians keeps.
std::vector<double> ratios(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace podid::bench
