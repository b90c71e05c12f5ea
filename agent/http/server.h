// The HTTP server pods are redirected to: Boost.Beast sessions as coroutines, attribution of every
// connection through the kernel's origin record, limits and a graceful drain on SIGTERM. Request
// decisions live in imds_handler (pure); this file does I/O only.
//
// Threading: one io_context per I/O thread, each run by exactly one thread. Every context accepts on
// the same listening socket (a dup of it: one socket, so no other process can join the port as it
// could with SO_REUSEPORT) and a connection lives on the context that accepted it, so a request never
// crosses threads and sessions need no strand.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "caller/caller.h"
#include "caller/caller_resolver.h"
#include "common/fd.h"
#include "common/result.h"
#include "datapath/origin_source.h"
#include "http/caller_limits.h"
#include "http/forwarder.h"
#include "http/imds_handler.h"
#include "http/request_record.h"
#include "policy/binding.h"
#include "policy/host_token_authority.h"
#include "token/token.h"

namespace podid {

struct ServerLimits {
    size_t header_limit = 8 * 1024;
    size_t body_limit = 64 * 1024;
    std::chrono::milliseconds request_timeout{10'000};  // whole request must arrive within this
    std::chrono::milliseconds idle_timeout{90'000};     // keep-alive connection idle
    size_t max_connections = 10'000;
    std::chrono::milliseconds drain_timeout{10'000};  // SIGTERM: finish in-flight requests within this
    // Per caller (cgroup): see http/caller_limits.h. One pod's idle-connection flood stops at a tenth of
    // max_connections, and a pod may send up to 10x IMDS's own per-VM identity limit (20/s) on average
    // with a start-up burst of 1000; beyond that it gets IMDS's 429 shape. 0 turns a limit off.
    size_t max_connections_per_caller = 1'000;
    double caller_requests_per_second = 200;
    double caller_request_burst = 1'000;
};

struct ServerDeps {
    const OriginSource* origins = nullptr;
    CallerResolver* callers = nullptr;
    const BindingSource* bindings = nullptr;
    TokenProvider* tokens = nullptr;
    Forwarder* forwarder = nullptr;
    HostTokenAuthority* host_tokens = nullptr;  // optional
    std::vector<RequestSink*> sinks;
};

class Server {
public:
    // `contexts`: one per I/O thread (at least one), each run by a single thread; they outlive the server.
    Server(std::vector<boost::asio::io_context*> contexts, ServerDeps deps, HandlerOptions options,
           ServerLimits limits);
    ~Server();

    // Binds and listens; `loopback` marks the 127.0.0.1 listener (where /host/token lives).
    Result<boost::asio::ip::tcp::endpoint> listen(const boost::asio::ip::tcp::endpoint& endpoint, bool loopback);
    // Serves a listening socket another agent passed on (admin/handover.h); returns its address.
    Result<boost::asio::ip::tcp::endpoint> adopt(Fd listener, bool loopback);
    // The listening sockets (one per listen/adopt call) and whether each is the loopback one, to pass on.
    std::vector<std::pair<int, bool>> listeners() const;
    // What becomes of the listening sockets at shutdown: this process holds the last descriptors (they close for good,
    // after what is queued was taken), or another agent holds them too (a hand-over), whose queue is left alone.
    enum class Listeners { close_for_good, live_on };
    // Stops accepting, lets in-flight requests finish (up to drain_timeout) and closes idle connections: at once,
    // or after `idle_linger` during which a new request is still answered (with `Connection: close`).
    void shutdown(std::chrono::milliseconds idle_linger = {}, Listeners listeners = Listeners::close_for_good);
    size_t connections() const { return active_.load(); }
    // False once shutdown() has closed every listener (after taking what was queued): only then may the process
    // exit without the kernel resetting connections still in an accept queue.
    bool accepting() const { return open_acceptors_->load() > 0; }

private:
    class Session;
    Result<boost::asio::ip::tcp::endpoint> serve(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor,
                                                 bool loopback);
    void start_session(boost::asio::ip::tcp::socket socket, const boost::asio::ip::tcp::endpoint& peer,
                       const boost::asio::ip::tcp::endpoint& bound, bool loopback);
    boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor,
                                             boost::asio::ip::tcp::endpoint bound, bool loopback);
    // `caller` is the session's: empty before the connection's first resolution, which fills it.
    boost::asio::awaitable<HttpResponse> handle(const HttpRequest& req, const std::optional<Origin>& origin,
                                                bool loopback, AuditRecord& record, std::optional<Caller>& caller);

    std::vector<boost::asio::io_context*> contexts_;
    ServerDeps deps_;
    HandlerOptions options_;
    ServerLimits limits_;
    struct Listening {
        std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor;
        boost::asio::ip::tcp::endpoint bound;
        bool loopback = false;
    };
    std::vector<Listening> acceptors_;
    std::vector<std::pair<std::shared_ptr<boost::asio::ip::tcp::acceptor>, bool>> primary_;
    std::atomic<int64_t> drain_linger_ms_{0};  // set by shutdown(), read by accept loops on every thread
    std::mutex sessions_mu_;
    std::set<std::shared_ptr<Session>> sessions_;
    CallerLimits caller_limits_;
    std::atomic<size_t> active_{0};
    std::shared_ptr<std::atomic<size_t>> open_acceptors_ =
        std::make_shared<std::atomic<size_t>>(0);  // accept loops running
    std::atomic<bool> stopping_{false};
};

}  // namespace podid
