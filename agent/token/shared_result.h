// A value produced once and awaited by any number of coroutines on any executors: how
// single-flight waiters receive the result of the one upstream call made for their key.
#pragma once

#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "token/stored_handler.h"

namespace podid {

template <class T>
class SharedResult {
public:
    // Only the first call has an effect.
    void set(T value) {
        std::lock_guard lock(mu_);
        if (value_)
            return;
        value_ = std::move(value);
        for (auto& waiter : waiters_)
            waiter->complete(*value_);
        waiters_.clear();
    }

    // Completes with a copy of the value once set (immediately if already set). The object must
    // outlive the wait: callers hold it by shared_ptr.
    boost::asio::awaitable<T> wait() {
        return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(T)>(
            [this](auto handler) {
                auto stored = detail::store_handler<T>(std::move(handler));
                std::lock_guard lock(mu_);
                if (value_) {
                    stored->complete(*value_);
                    return;
                }
                waiters_.push_back(std::move(stored));
            },
            boost::asio::use_awaitable);
    }

    bool ready() const {
        std::lock_guard lock(mu_);
        return value_.has_value();
    }

private:
    mutable std::mutex mu_;
    std::optional<T> value_;
    std::vector<std::unique_ptr<detail::StoredHandler<T>>> waiters_;
};

}  // namespace podid
