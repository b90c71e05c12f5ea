#include "http/caller_limits.h"

#include <algorithm>

namespace podid {

void CallerLimits::refill(State& state, Clock::time_point now) const {
    if (config_.rate <= 0)
        return;
    const double elapsed = std::chrono::duration<double>(now - state.refilled).count();
    if (elapsed > 0) {
        state.tokens = std::min(std::max(config_.burst, 1.0), state.tokens + elapsed * config_.rate);
        state.refilled = now;
    }
}

bool CallerLimits::forgettable(const State& state, Clock::time_point now) const {
    if (state.connections > 0)
        return false;
    if (config_.rate <= 0)
        return true;
    State copy = state;
    refill(copy, now);
    return copy.tokens >= std::max(config_.burst, 1.0);
}

void CallerLimits::sweep(Clock::time_point now) {
    std::erase_if(callers_, [&](const auto& entry) { return forgettable(entry.second, now); });
    // Next sweep when the table has doubled: amortised O(1) per connection, memory O(live callers).
    sweep_at_ = std::max<size_t>(64, callers_.size() * 2);
}

bool CallerLimits::try_open(uint64_t caller, Clock::time_point now) {
    std::lock_guard lock(mu_);
    if (callers_.size() >= sweep_at_)
        sweep(now);
    auto [it, inserted] = callers_.try_emplace(caller);
    State& state = it->second;
    if (inserted) {
        state.tokens = std::max(config_.burst, 1.0);
        state.refilled = now;
    }
    if (config_.max_connections > 0 && state.connections >= config_.max_connections)
        return false;
    ++state.connections;
    return true;
}

void CallerLimits::close(uint64_t caller, Clock::time_point now) {
    std::lock_guard lock(mu_);
    auto it = callers_.find(caller);
    if (it == callers_.end())
        return;
    if (it->second.connections > 0)
        --it->second.connections;
    if (forgettable(it->second, now))
        callers_.erase(it);
}

bool CallerLimits::try_request(uint64_t caller, Clock::time_point now) {
    if (config_.rate <= 0)
        return true;
    std::lock_guard lock(mu_);
    auto [it, inserted] = callers_.try_emplace(caller);
    State& state = it->second;
    if (inserted) {
        state.tokens = std::max(config_.burst, 1.0);
        state.refilled = now;
    }
    refill(state, now);
    if (state.tokens < 1.0)
        return false;
    state.tokens -= 1.0;
    return true;
}

size_t CallerLimits::tracked() const {
    std::lock_guard lock(mu_);
    return callers_.size();
}

}  // namespace podid
