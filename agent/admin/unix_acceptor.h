// The accept loop of a listening unix socket, shared by the admin socket and the hand-over socket: each accepted
// connection goes to a callback on the io_context, until stop().
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "common/fd.h"
#include "common/result.h"

namespace podid {

class UnixAcceptor {
public:
    using Socket = boost::asio::local::stream_protocol::socket;
    using OnAccept = std::function<void(std::shared_ptr<Socket>)>;

    explicit UnixAcceptor(boost::asio::io_context& io) : io_(io) {}

    // Accepts on `listener` (bound to `path`, named `what` in errors), which it takes on success.
    Result<void> start(Fd listener, const std::string& path, const std::string& what, OnAccept on_accept);
    // Stops accepting and closes the listener. True for the call that stopped a started acceptor.
    bool stop();
    bool stopped() const { return stopped_.load(); }
    int native_handle() const;  // -1 before start
    std::string path() const;

private:
    using Acceptor = boost::asio::local::stream_protocol::acceptor;
    boost::asio::awaitable<void> accept_loop(std::shared_ptr<Acceptor> acceptor);

    boost::asio::io_context& io_;
    OnAccept on_accept_;
    mutable std::mutex mu_;  // guards acceptor_, path_ (stop() and native_handle() come from other threads)
    std::shared_ptr<Acceptor> acceptor_;
    std::string path_;
    std::atomic<bool> stopped_{false};
};

}  // namespace podid
