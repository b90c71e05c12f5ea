#include "stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace podid::bench {

double percentile(std::vector<double> values, double p) {
    if (values.empty())
        return std::numeric_limits<double>::quiet_NaN();
    std::sort(values.begin(), values.end());
    if (p == 50.0 && values.size() % 2 == 0) {
        size_t mid = values.size() / 2;
        return (values[mid - 1] + values[mid]) / 2;  // the usual median of an even count
    }
    auto rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(values.size())));
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

Interval median_ci95(std::vector<double> values) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const auto n = static_cast<double>(values.size());
    if (values.size() < 6)
        return {nan, nan};
    std::sort(values.begin(), values.end());
    // 1-based ranks of the binomial(n, 1/2) normal approximation, widened to whole ranks.
    const double half_width = 1.96 * std::sqrt(n) / 2;
    auto low = static_cast<size_t>(std::max(1.0, std::floor(n / 2 - half_width)));
    auto high = static_cast<size_t>(std::min(n, std::ceil(n / 2 + 1 + half_width)));
    return {values[low - 1], values[high - 1]};
}

std::vector<double> ratios(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> r;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
        if (b[i] > 0)
            r.push_back(a[i] / b[i]);
    return r;
}

}  // namespace podid::bench
