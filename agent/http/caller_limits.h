// Per-caller fairness: one pod must not be able to take the agent from the others. Callers are keyed by
// the cgroup id the kernel recorded at connect() (0 for connections without a record), so a pod cannot
// spread itself over several keys by changing its source address or port.
//
// Two limits, both optional (0 = off):
//   - concurrent connections per caller: an idle-connection flood from one pod stops at this cap instead
//     of at the server-wide max_connections, which every pod shares;
//   - requests per second per caller, a token bucket: a pod hammering the agent gets IMDS's own 429
//     shape beyond its share, the others keep their latency.
// A caller's bucket outlives its connections until it has refilled, so closing and reconnecting does not
// buy a fresh burst. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace podid {

struct CallerLimitsConfig {
    size_t max_connections = 0;  // concurrent connections per caller; 0 = no limit
    double rate = 0;             // requests per second per caller; 0 = no limit
    double burst = 0;            // bucket size; at least 1 when rate is set
};

class CallerLimits {
public:
    using Clock = std::chrono::steady_clock;

    explicit CallerLimits(CallerLimitsConfig config) : config_(config) {}

    // A new connection from `caller`; false when it already holds max_connections (refuse it).
    bool try_open(uint64_t caller, Clock::time_point now);
    // Its connection ended (only for connections try_open accepted).
    void close(uint64_t caller, Clock::time_point now);
    // One request from `caller`; false when its bucket is empty (answer 429).
    bool try_request(uint64_t caller, Clock::time_point now);

    size_t tracked() const;  // callers currently remembered (bounded by live connections + refilling buckets)

private:
    struct State {
        size_t connections = 0;
        double tokens = 0;
        Clock::time_point refilled;
    };
    void refill(State& state, Clock::time_point now) const;
    bool forgettable(const State& state, Clock::time_point now) const;
    void sweep(Clock::time_point now);

    const CallerLimitsConfig config_;
    mutable std::mutex mu_;
    std::unordered_map<uint64_t, State> callers_;
    size_t sweep_at_ = 64;
};

}  // namespace podid
