#include "admin/unix_acceptor.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace podid {

namespace asio = boost::asio;

Result<void> UnixAcceptor::start(Fd listener, const std::string& path, const std::string& what, OnAccept on_accept) {
    auto acceptor = std::make_shared<Acceptor>(io_);
    boost::system::error_code ec;
    acceptor->assign(asio::local::stream_protocol(), listener.get(), ec);
    if (ec)
        return make_error("cannot serve the " + what + " " + path + ": " + ec.message(), ec.value());
    listener.release();
    on_accept_ = std::move(on_accept);
    {
        std::lock_guard lock(mu_);
        acceptor_ = acceptor;
        path_ = path;
    }
    asio::co_spawn(io_, accept_loop(acceptor), asio::detached);
    return {};
}

bool UnixAcceptor::stop() {
    std::lock_guard lock(mu_);
    if (!acceptor_ || stopped_.exchange(true))
        return false;
    // Closed on the io_context, where the pending accept runs.
    asio::post(acceptor_->get_executor(), [a = acceptor_] {
        boost::system::error_code ec;
        a->close(ec);
    });
    return true;
}

int UnixAcceptor::native_handle() const {
    std::lock_guard lock(mu_);
    return acceptor_ ? acceptor_->native_handle() : -1;
}

std::string UnixAcceptor::path() const {
    std::lock_guard lock(mu_);
    return path_;
}

asio::awaitable<void> UnixAcceptor::accept_loop(std::shared_ptr<Acceptor> acceptor) {
    while (!stopped_) {
        boost::system::error_code ec;
        auto socket = std::make_shared<Socket>(io_);
        co_await acceptor->async_accept(*socket, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (stopped_ || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
                co_return;
            continue;
        }
        on_accept_(std::move(socket));
    }
}

}  // namespace podid
