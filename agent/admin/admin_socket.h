// The local admin endpoint `podidctl` talks to: HTTP/1.1 with JSON bodies over a unix socket
// (--admin-socket, default /run/podid/admin.sock).
//
// Root only, twice over: the socket file is created mode 0600 in a directory the agent makes 0700, and every
// accepted connection's SO_PEERCRED uid must be 0 or the agent's own uid (a socket file chmod-ed by someone else,
// or passed to another process, still does not let an unprivileged caller in). Answers never contain a token,
// only its fingerprint. The endpoint is not reachable from pods: it has no TCP listener at all.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "admin/admin_http.h"
#include "admin/unix_acceptor.h"
#include "common/result.h"

namespace podid {

using AdminRoute = std::function<AdminResponse(const AdminRequest&)>;

class AdminSocketServer {
public:
    AdminSocketServer(boost::asio::io_context& io, AdminRoute route);
    ~AdminSocketServer();

    // Creates the socket's directory (0700) when missing, replaces a stale socket file left by a killed agent
    // (but refuses to take over one another live process is answering on), binds, chmods 0600, accepts.
    Result<void> listen(const std::string& path);
    // Stops accepting, closes connections and removes the socket file.
    void shutdown();

private:
    using socket_type = UnixAcceptor::Socket;
    boost::asio::awaitable<void> session(std::shared_ptr<socket_type> socket);

    boost::asio::io_context& io_;
    AdminRoute route_;
    UnixAcceptor acceptor_{io_};
    std::mutex mu_;  // guards sockets_
    std::set<std::shared_ptr<socket_type>> sockets_;
    std::atomic<bool> stopping_{false};
};

// Whether a peer with this uid may use the admin socket of an agent running as `own_uid`.
bool admin_peer_allowed(uint32_t peer_uid, uint32_t own_uid);

}  // namespace podid
