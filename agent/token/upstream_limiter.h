// Keeps podid's own calls to the node's IMDS inside IMDS's per-VM limits (identity category:
// 20 requests/s, 5 concurrent; 429 beyond). Callers wait in line (FIFO) instead of failing.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include <boost/asio/awaitable.hpp>

#include "token/stored_handler.h"

namespace podid {

struct LimiterOptions {
    std::size_t max_concurrent = 5;
    std::size_t max_per_window = 20;
    // A sliding window, not a token bucket: no burst can put more than max_per_window starts into
    // any window-long interval, which is how a per-second limit on the other side is counted.
    std::chrono::milliseconds window{1000};
};

class UpstreamLimiter {
public:
    // Holding a Permit is holding one of the concurrent slots; it is released on destruction.
    class Permit {
    public:
        Permit() = default;
        explicit Permit(UpstreamLimiter* owner) : owner_(owner) {}
        Permit(Permit&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
        Permit& operator=(Permit&& other) noexcept;
        Permit(const Permit&) = delete;
        Permit& operator=(const Permit&) = delete;
        ~Permit() { release(); }
        void release();

    private:
        UpstreamLimiter* owner_ = nullptr;
    };

    explicit UpstreamLimiter(LimiterOptions options);

    // Waits for a concurrent slot (in arrival order), then for the start rate. Real (steady) time:
    // the limits protect a real service, whatever clock the cache is given.
    boost::asio::awaitable<Permit> acquire();

    std::size_t in_use() const;
    std::size_t queued() const;
    const LimiterOptions& options() const { return options_; }

private:
    using Clock = std::chrono::steady_clock;

    boost::asio::awaitable<void> wait_for_slot();
    Clock::time_point reserve_start();  // the earliest start the window allows, booked for the caller
    void release_slot();

    LimiterOptions options_;
    mutable std::mutex mu_;
    std::size_t in_use_ = 0;
    std::deque<std::unique_ptr<detail::StoredHandler<>>> slot_waiters_;
    std::deque<Clock::time_point> starts_;  // the last max_per_window booked starts
};

}  // namespace podid
