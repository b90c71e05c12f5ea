// Order statistics for trial results (medians of repeated A/B trials, latency percentiles).
#pragma once

#include <vector>

namespace podid::bench {

// NaN for an empty input. p in [0, 100], nearest-rank.
double percentile(std::vector<double> values, double p);
inline double median(const std::vector<double>& values) { return percentile(values, 50); }

}  // namespace podid::bench
