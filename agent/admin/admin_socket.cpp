#include "admin/admin_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "admin/admin_session.h"
#include "common/log.h"
#include "common/unix_listener.h"

namespace podid {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

bool admin_peer_allowed(uint32_t peer_uid, uint32_t own_uid) { return peer_uid == 0 || peer_uid == own_uid; }

namespace {

AdminResponse forbidden(const AdminRequest& req) {
    AdminResponse res(http::status::forbidden, req.version());
    res.set(http::field::content_type, "application/json");
    res.body() = R"({"error":"forbidden","error_description":"the admin socket is for root only"})";
    res.prepare_payload();
    res.keep_alive(false);
    return res;
}

}  // namespace

AdminSocketServer::AdminSocketServer(asio::io_context& io, AdminRoute route) : io_(io), route_(std::move(route)) {}

AdminSocketServer::~AdminSocketServer() { shutdown(); }

Result<void> AdminSocketServer::listen(const std::string& path) {
    auto fd = bind_unix_listener(path, "admin socket");
    if (!fd)
        return fd.error();
    return acceptor_.start(std::move(*fd), path, "admin socket", [this](std::shared_ptr<socket_type> socket) {
        {
            std::lock_guard lock(mu_);
            sockets_.insert(socket);
        }
        asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    });
}

void AdminSocketServer::shutdown() {
    if (stopping_.exchange(true))
        return;
    if (acceptor_.stop())
        ::unlink(acceptor_.path().c_str());
    std::lock_guard lock(mu_);
    for (const auto& s : sockets_)
        asio::post(s->get_executor(), [s] {
            boost::system::error_code ec;
            s->shutdown(socket_type::shutdown_both, ec);
            s->close(ec);
        });
}

asio::awaitable<void> AdminSocketServer::session(std::shared_ptr<socket_type> socket) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    bool allowed = ::getsockopt(socket->native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                   admin_peer_allowed(cred.uid, ::geteuid());
    if (!allowed)
        log_warn("admin socket: refused a non-root caller",
                 kv("uid", std::to_string(cred.uid)) + kv("pid", std::to_string(cred.pid)));
    co_await serve_admin_session(
        socket, [&](const AdminRequest& req) { return allowed ? route_(req) : forbidden(req); }, stopping_);
    std::lock_guard lock(mu_);
    sockets_.erase(socket);
}

}  // namespace podid
