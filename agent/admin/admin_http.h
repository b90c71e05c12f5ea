// The admin HTTP endpoint on --metrics-addr (default 0.0.0.0:9090): /metrics (Prometheus text format),
// /healthz (liveness) and /readyz (readiness) on one port, so the DaemonSet probes and the scrape share it.
//
// It is a separate listener from the IMDS server: pods never reach it through the redirect, and nothing here
// needs the caller's identity. Answers are computed by admin_response() (pure); AdminServer does sockets only.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/fd.h"
#include "common/result.h"
#include "observe/health.h"

namespace podid {

struct AdminHandlers {
    std::function<std::string()> metrics;  // Metrics::scrape
    std::function<Readiness()> readiness;  // Health::readiness
};

using AdminRequest = boost::beast::http::request<boost::beast::http::string_body>;
using AdminResponse = boost::beast::http::response<boost::beast::http::string_body>;

// GET|HEAD /metrics -> 200 text/plain; version=0.0.4
// GET|HEAD /healthz -> 200 "ok"
// GET|HEAD /readyz  -> 200 "ok" | 503 "not ready: <reason>"
// other paths 404, other methods 405. A query string is ignored (probes sometimes add one).
AdminResponse admin_response(const AdminRequest& req, const AdminHandlers& handlers);

// "0.0.0.0:9090", "127.0.0.1:0", "[::]:9090" -> endpoint.
Result<boost::asio::ip::tcp::endpoint> parse_listen_address(const std::string& text);

class AdminServer {
public:
    AdminServer(boost::asio::io_context& io, AdminHandlers handlers);
    ~AdminServer();

    // Binds and starts accepting; returns the bound endpoint (port 0 picks one).
    Result<boost::asio::ip::tcp::endpoint> listen(const boost::asio::ip::tcp::endpoint& endpoint);
    // Serves a listening socket the previous agent passed on (admin/handover.h).
    Result<boost::asio::ip::tcp::endpoint> adopt(Fd listener);
    int listener_fd() const;  // to pass on; -1 before listen/adopt
    // Stops accepting and closes open connections.
    void shutdown();

private:
    Result<boost::asio::ip::tcp::endpoint> serve(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor);
    boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor);
    boost::asio::awaitable<void> session(std::shared_ptr<boost::asio::ip::tcp::socket> socket);

    boost::asio::io_context& io_;
    AdminHandlers handlers_;
    mutable std::mutex mu_;
    std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
    std::set<std::shared_ptr<boost::asio::ip::tcp::socket>> sockets_;
    std::atomic<bool> stopping_{false};
};

}  // namespace podid
