// Real IMDS's per-VM limits for the identity category: 20 requests/s and 5 concurrent, 429 beyond.
// Opt-in (--enforce-limits) so that podid's caching and concurrency control can be shown to stay under them.
#pragma once

#include <chrono>
#include <deque>
#include <mutex>

namespace podid::emulator {

struct LimitSettings {
    int per_second = 20;
    int concurrent = 5;
};

class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;
    explicit RateLimiter(LimitSettings settings = {}) : settings_(settings) {}

    // `in_flight` counts token requests being served now, this one excluded. Admitted requests count
    // against the one-second window; refused ones do not (IMDS throttles, it does not punish).
    bool admit(Clock::time_point now, int in_flight);

private:
    LimitSettings settings_;
    std::mutex mu_;
    std::deque<Clock::time_point> window_;
};

}  // namespace podid::emulator
