#include "token/upstream_limiter.h"

#include <algorithm>

#include <boost/asio/async_result.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace podid {

namespace asio = boost::asio;

UpstreamLimiter::Permit& UpstreamLimiter::Permit::operator=(Permit&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = std::exchange(other.owner_, nullptr);
    }
    return *this;
}

void UpstreamLimiter::Permit::release() {
    if (owner_)
        std::exchange(owner_, nullptr)->release_slot();
}

UpstreamLimiter::UpstreamLimiter(LimiterOptions options) : options_(options) {
    // Zero would make every caller wait forever.
    options_.max_concurrent = std::max<std::size_t>(1, options_.max_concurrent);
    options_.max_per_window = std::max<std::size_t>(1, options_.max_per_window);
}

asio::awaitable<void> UpstreamLimiter::wait_for_slot() {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
        [this](auto handler) {
            auto stored = detail::store_handler<>(std::move(handler));
            std::lock_guard lock(mu_);
            // Queue behind earlier waiters even if a slot is free, so nobody overtakes.
            if (in_use_ < options_.max_concurrent && slot_waiters_.empty()) {
                ++in_use_;
                stored->complete();
                return;
            }
            slot_waiters_.push_back(std::move(stored));
        },
        asio::use_awaitable);
}

void UpstreamLimiter::release_slot() {
    std::lock_guard lock(mu_);
    if (!slot_waiters_.empty()) {
        // The slot passes straight to the next in line; in_use_ stays the same.
        auto next = std::move(slot_waiters_.front());
        slot_waiters_.pop_front();
        next->complete();
        return;
    }
    --in_use_;
}

UpstreamLimiter::Clock::time_point UpstreamLimiter::reserve_start() {
    std::lock_guard lock(mu_);
    auto start = Clock::now();
    if (starts_.size() >= options_.max_per_window) {
        start = std::max(start, starts_.front() + options_.window);
        starts_.pop_front();
    }
    starts_.push_back(start);
    return start;
}

asio::awaitable<UpstreamLimiter::Permit> UpstreamLimiter::acquire() {
    co_await wait_for_slot();
    Permit permit(this);
    const auto start = reserve_start();
    if (start > Clock::now()) {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        timer.expires_at(start);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return permit;
}

std::size_t UpstreamLimiter::in_use() const {
    std::lock_guard lock(mu_);
    return in_use_;
}

std::size_t UpstreamLimiter::queued() const {
    std::lock_guard lock(mu_);
    return slot_waiters_.size();
}

}  // namespace podid
