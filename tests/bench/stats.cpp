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

std::vector<double> ratios(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> r;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
        if (b[i] > 0)
            r.push_back(a[i] / b[i]);
    return r;
}

}  // namespace podid::bench
