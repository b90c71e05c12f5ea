#include "admin/admin_http.h"

#include "admin/admin_session.h"
#include "common/listen.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace podid {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

AdminResponse text(const AdminRequest& req, http::status status, std::string body,
                   const char* content_type = "text/plain; charset=utf-8") {
    AdminResponse res{status, req.version()};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    if (req.method() == http::verb::head)
        res.body().clear();  // Content-Length stays that of the GET answer
    return res;
}

}  // namespace

AdminResponse admin_response(const AdminRequest& req, const AdminHandlers& handlers) {
    std::string_view target = req.target();
    target = target.substr(0, target.find('?'));
    if (target != "/metrics" && target != "/healthz" && target != "/readyz")
        return text(req, http::status::not_found, "not found\n");
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        auto res = text(req, http::status::method_not_allowed, "method not allowed\n");
        res.set(http::field::allow, "GET, HEAD");
        return res;
    }
    if (target == "/healthz")
        return text(req, http::status::ok, "ok\n");
    if (target == "/readyz") {
        Readiness r = handlers.readiness ? handlers.readiness() : Readiness{false, "readiness not wired"};
        if (r.ready)
            return text(req, http::status::ok, "ok\n");
        return text(req, http::status::service_unavailable, "not ready: " + r.reason + "\n");
    }
    if (!handlers.metrics)
        return text(req, http::status::service_unavailable, "metrics not wired\n");
    return text(req, http::status::ok, handlers.metrics(), "text/plain; version=0.0.4; charset=utf-8");
}

Result<tcp::endpoint> parse_listen_address(const std::string& text) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size())
        return make_error("listen address \"" + text + "\" is not host:port");
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    unsigned port = 0;
    const char* first = text.data() + colon + 1;
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, port);
    if (ec != std::errc() || end != last || port > 65535)
        return make_error("listen address \"" + text + "\" has a bad port");
    boost::system::error_code aec;
    auto address = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, aec);
    if (aec)
        return make_error("listen address \"" + text + "\" has a bad IP address");
    return tcp::endpoint(address, static_cast<uint16_t>(port));
}

AdminServer::AdminServer(asio::io_context& io, AdminHandlers handlers) : io_(io), handlers_(std::move(handlers)) {}

AdminServer::~AdminServer() { shutdown(); }

Result<tcp::endpoint> AdminServer::listen(const tcp::endpoint& endpoint) {
    auto opened = open_acceptor(io_.get_executor(), endpoint, "for metrics");
    if (!opened)
        return opened.error();
    return serve(*opened);
}

Result<tcp::endpoint> AdminServer::adopt(Fd listener) {
    auto acceptor = adopt_acceptor(io_.get_executor(), std::move(listener), "for metrics");
    if (!acceptor)
        return acceptor.error();
    return serve(*acceptor);
}

int AdminServer::listener_fd() const {
    std::lock_guard lock(mu_);
    return acceptor_ ? acceptor_->native_handle() : -1;
}

Result<tcp::endpoint> AdminServer::serve(std::shared_ptr<tcp::acceptor> acceptor) {
    boost::system::error_code bound_ec;
    auto bound = acceptor->local_endpoint(bound_ec);
    {
        std::lock_guard lock(mu_);
        acceptor_ = acceptor;
    }
    asio::co_spawn(io_, accept_loop(acceptor), asio::detached);
    return bound;
}

void AdminServer::shutdown() {
    if (stopping_.exchange(true))
        return;
    std::lock_guard lock(mu_);
    // Closing from this thread races with the io threads; post the closes to the objects' executor instead.
    if (acceptor_)
        asio::post(acceptor_->get_executor(), [a = acceptor_] {
            boost::system::error_code ec;
            a->close(ec);
        });
    for (const auto& s : sockets_)
        asio::post(s->get_executor(), [s] {
            boost::system::error_code ec;
            s->shutdown(tcp::socket::shutdown_both, ec);
            s->close(ec);
        });
}

asio::awaitable<void> AdminServer::accept_loop(std::shared_ptr<tcp::acceptor> acceptor) {
    while (!stopping_) {
        boost::system::error_code ec;
        auto socket = std::make_shared<tcp::socket>(io_);
        co_await acceptor->async_accept(*socket, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (stopping_ || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
                co_return;
            continue;  // EMFILE and friends: keep serving the connections we have
        }
        {
            std::lock_guard lock(mu_);
            sockets_.insert(socket);
        }
        asio::co_spawn(io_, session(socket), asio::detached);
    }
}

asio::awaitable<void> AdminServer::session(std::shared_ptr<tcp::socket> socket) {
    co_await serve_admin_session(
        socket, [this](const AdminRequest& req) { return admin_response(req, handlers_); }, stopping_);
    std::lock_guard lock(mu_);
    sockets_.erase(socket);
}

}  // namespace podid
