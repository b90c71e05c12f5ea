// A completion handler parked until some other coroutine (maybe on another thread) decides to
// complete it. Used by the awaitable primitives of the token provider (single-flight results, the
// upstream limiter's queue), which must wake callers that co_await from arbitrary executors.
#pragma once

#include <memory>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

namespace podid::detail {

template <class... Args>
class StoredHandler {
public:
    virtual ~StoredHandler() = default;
    // Posts the handler to its own executor: never runs the waiter inline on the completer's thread,
    // so the completer may hold a lock while completing.
    virtual void complete(Args... args) = 0;
};

template <class Handler, class... Args>
class StoredHandlerImpl final : public StoredHandler<Args...> {
public:
    explicit StoredHandlerImpl(Handler handler)
        // A parked handler must keep its io_context running, or run() could return while the
        // waiter still waits for a result produced elsewhere.
        : executor_(boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                        boost::asio::execution::outstanding_work.tracked)),
          handler_(std::move(handler)) {}

    void complete(Args... args) override {
        boost::asio::post(executor_, [handler = std::move(handler_), ... args = std::move(args)]() mutable {
            std::move(handler)(std::move(args)...);
        });
    }

private:
    decltype(boost::asio::prefer(boost::asio::get_associated_executor(std::declval<Handler&>()),
                                 boost::asio::execution::outstanding_work.tracked)) executor_;
    Handler handler_;
};

template <class... Args, class Handler>
std::unique_ptr<StoredHandler<Args...>> store_handler(Handler handler) {
    return std::make_unique<StoredHandlerImpl<Handler, Args...>>(std::move(handler));
}

}  // namespace podid::detail
