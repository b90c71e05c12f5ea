#include "token/retry_policy.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace podid {

namespace {
constexpr std::chrono::milliseconds kBackoffStep{2000};
constexpr std::chrono::milliseconds kBackoffCap{60000};
}  // namespace

bool is_retryable_status(int status) {
    return status == 0 || status == 404 || status == 410 || status == 429 || (status >= 500 && status <= 599);
}

std::chrono::milliseconds backoff_delay(int retry, std::optional<std::chrono::seconds> retry_after) {
    // (2^n - 1) * 2 s gives IMDS's 0, 2, 6, 14, 30 s; stop doubling before it can overflow.
    const int n = std::clamp(retry, 0, 10);
    auto delay = std::min(kBackoffStep * ((int64_t{1} << n) - 1), kBackoffCap);
    if (retry_after)
        delay = std::max(delay, std::min<std::chrono::milliseconds>(*retry_after, kBackoffCap));
    return delay;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
    const bool digits =
        !value.empty() && std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); });
    if (!digits)
        return std::nullopt;
    if (value.size() > 9)
        return std::chrono::duration_cast<std::chrono::seconds>(kBackoffCap);  // no overflow
    int64_t seconds = 0;
    for (unsigned char c : value)
        seconds = seconds * 10 + (c - '0');
    return std::chrono::seconds(std::min<int64_t>(seconds, 60));
}

}  // namespace podid
