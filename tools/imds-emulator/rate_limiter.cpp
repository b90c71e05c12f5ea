#include "rate_limiter.h"

namespace podid::emulator {

bool RateLimiter::admit(Clock::time_point now, int in_flight) {
    std::lock_guard lock(mu_);
    while (!window_.empty() && now - window_.front() >= std::chrono::seconds(1)) window_.pop_front();
    if (in_flight >= settings_.concurrent) return false;
    if (static_cast<int>(window_.size()) >= settings_.per_second) return false;
    window_.push_back(now);
    return true;
}

}  // namespace podid::emulator
