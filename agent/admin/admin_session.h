// One keep-alive HTTP session of the admin endpoints (the metrics/health port and the podidctl unix socket): read a
// small request, answer it, until the peer stops, the answer says close, the server stops, or the peer has been
// silent for 30 s. Sockets only; what to answer is the caller's.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "admin/admin_http.h"

namespace podid {

template <class Socket, class Answer>
boost::asio::awaitable<void> serve_admin_session(std::shared_ptr<Socket> socket, Answer answer,
                                                 const std::atomic<bool>& stopping) {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    // A scraper, kubelet or podidctl that stops talking must not hold a socket forever.
    asio::steady_timer deadline(socket->get_executor());
    boost::beast::flat_buffer buffer;
    for (;;) {
        deadline.expires_after(std::chrono::seconds(30));
        deadline.async_wait([socket](const boost::system::error_code& ec) {
            if (!ec) {
                boost::system::error_code ignored;
                socket->close(ignored);
            }
        });
        http::request_parser<http::string_body> parser;
        parser.header_limit(8 * 1024);
        parser.body_limit(4 * 1024);
        boost::system::error_code ec;
        co_await http::async_read(*socket, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            break;
        AdminRequest req = parser.release();
        AdminResponse res = answer(req);
        const bool keep = res.keep_alive() && !stopping;
        co_await http::async_write(*socket, res, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !keep)
            break;
    }
    deadline.cancel();
    boost::system::error_code ignored;
    socket->shutdown(Socket::shutdown_both, ignored);
    socket->close(ignored);
}

}  // namespace podid
