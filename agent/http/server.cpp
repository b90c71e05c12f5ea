#include "http/server.h"

#include "common/listen.h"
#include "common/log.h"
#include "http/request_target.h"
#include "token/token_body.h"
#include "token/token_fingerprint.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <variant>

namespace podid {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// How long a listener closing for good waits, after it stopped taking new connections, for the handshakes already
// under way (a round trip on the node: microseconds, more on a loaded one) to reach its accept queue.
constexpr std::chrono::milliseconds kHandshakeGrace{50};

int64_t epoch_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int64_t epoch_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string describe(const Identity& id) {
    if (!id.client_id.empty())
        return "client_id=" + id.client_id;
    if (!id.resource_id.empty())
        return "msi_res_id=" + id.resource_id;
    if (!id.object_id.empty())
        return "object_id=" + id.object_id;
    return "";
}

}  // namespace

class Server::Session : public std::enable_shared_from_this<Session> {
public:
    Session(Server& server, tcp::socket socket, bool loopback, std::optional<Origin> origin)
        : server_(server), stream_(std::move(socket)), loopback_(loopback), origin_(std::move(origin)) {}

    asio::awaitable<void> run();

    // Called on the session's executor when the server drains. A request being served is answered with
    // `Connection: close`. An idle connection is closed at once, or, with a linger (a hand-over: the listeners live
    // on in the next agent), kept for that long so that a client sending its next request gets the answer with
    // `Connection: close` and reconnects, rather than a close racing its request.
    void drain(std::chrono::milliseconds linger) {
        draining_ = true;
        if (busy_)
            return;
        // A connection that has not sent its first request yet was accepted to be answered: it gets its chance.
        if (served_ == 0)
            linger = std::max(linger, std::chrono::milliseconds(1000));
        if (linger.count() <= 0) {
            close_idle();
            return;
        }
        linger_timer_.expires_after(linger);
        linger_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (!ec && !self->finished_ && !self->busy_)
                self->close_idle();
        });
    }

    asio::any_io_executor executor() { return stream_.get_executor(); }

private:
    // Between requests: our FIN, then the wait for the next request ends. A request crossing the FIN is read and
    // dropped (the client sees the close and retries on a new connection), never answered with a reset.
    void close_idle() {
        beast::error_code ec;
        if (!sent_fin_)
            stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        sent_fin_ = true;
        stream_.socket().cancel(ec);
    }
    asio::awaitable<void> discard_until_close();
    asio::awaitable<bool> wait_readable(const beast::flat_buffer& buffer);
    void arm_idle_watch(std::chrono::steady_clock::time_point at);
    asio::awaitable<beast::error_code> read_request(beast::flat_buffer& buffer,
                                                    http::request_parser<http::string_body>& parser);
    asio::awaitable<beast::error_code> write_response(HttpResponse& res);
    asio::awaitable<void> send_error(unsigned status, const char* error, const char* description);
    HttpResponse throttled(const HttpRequest& req, AuditRecord& record) const;

    Server& server_;
    beast::tcp_stream stream_;
    bool loopback_;
    const std::optional<Origin> origin_;  // the kernel's record of who connected, looked up at accept
    std::optional<Caller> caller_;        // resolved at the first request that needed it, refreshed after
    bool busy_ = false;
    bool draining_ = false;
    uint64_t served_ = 0;  // requests answered on this connection
    bool sent_fin_ = false;
    asio::steady_timer idle_timer_{stream_.get_executor()};
    asio::steady_timer linger_timer_{stream_.get_executor()};
    std::chrono::steady_clock::time_point idle_since_;  // when the current wait for a request began
    bool waiting_ = false;                              // between requests (what the idle timeout limits)
    bool idle_watch_armed_ = false;
    bool finished_ = false;
};

// Waits for the next request's first byte up to the idle timeout. The whole request then has
// request_timeout to arrive, so a slow sender cannot hold a connection on the idle budget.
asio::awaitable<bool> Server::Session::wait_readable(const beast::flat_buffer& buffer) {
    if (buffer.size() > 0)
        co_return true;
    idle_since_ = std::chrono::steady_clock::now();
    waiting_ = true;
    if (!idle_watch_armed_)
        arm_idle_watch(idle_since_ + server_.limits_.idle_timeout);
    beast::error_code ec;
    co_await stream_.socket().async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    waiting_ = false;
    // While draining, a request that arrives is still answered (with `Connection: close`); after our FIN it is not.
    co_return !ec && !sent_fin_;
}

// One timer per connection, re-armed only when it fires: a request costs a clock read, not a timer operation.
// When it fires it closes the wait of a connection idle for idle_timeout, or sleeps until the current idle
// spell (or, while a request is being served, the next one) could reach it.
void Server::Session::arm_idle_watch(std::chrono::steady_clock::time_point at) {
    idle_watch_armed_ = true;
    idle_timer_.expires_at(at);
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        self->idle_watch_armed_ = false;
        if (ec || self->finished_)
            return;
        const auto now = std::chrono::steady_clock::now();
        const auto limit = self->server_.limits_.idle_timeout;
        if (self->waiting_ && now - self->idle_since_ >= limit) {
            beast::error_code ignored;
            self->stream_.socket().cancel(ignored);
            return;
        }
        self->arm_idle_watch(self->waiting_ ? self->idle_since_ + limit : now + limit);
    });
}

// The request is read straight from the socket while it has data (a whole request is usually there by the time
// it is readable); only a request that arrives in pieces waits, asynchronously and under request_timeout.
// Each request thus costs one wake-up, not one per read and write completion.
asio::awaitable<beast::error_code> Server::Session::read_request(beast::flat_buffer& buffer,
                                                                 http::request_parser<http::string_body>& parser) {
    beast::error_code ec;
    http::read(stream_.socket(), buffer, parser, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        stream_.expires_after(server_.limits_.request_timeout);
        co_await http::async_read(stream_, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return ec;
}

// Writes the answer straight into the socket; only what the socket buffer cannot take (a large forwarded
// metadata document, a slow reader) is left to an asynchronous write. A last answer (Connection: close) is
// corked and followed by the FIN at once, so both leave in one segment: the client sees the close with the
// answer and closes second. Otherwise a client that closes first keeps the TIME_WAIT, and a pod making a new
// connection per request runs out of ephemeral ports toward the agent within seconds (its connect() then
// crawls the port range: 20-50 ms per connection was measured before this change).
asio::awaitable<beast::error_code> Server::Session::write_response(HttpResponse& res) {
    beast::error_code ec;
    auto& socket = stream_.socket();
    const bool last = !res.keep_alive();
    if (last) {
        int on = 1;
        ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    }
    http::serializer<false, http::string_body> sr{res};
    http::write(socket, sr, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        stream_.expires_after(server_.limits_.request_timeout);
        co_await http::async_write(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (last) {
        beast::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_send, ignored);  // flushes the corked answer with the FIN
        sent_fin_ = true;
    }
    co_return ec;
}

asio::awaitable<void> Server::Session::send_error(unsigned status, const char* error, const char* description) {
    HttpRequest dummy;
    dummy.version(11);
    HttpResponse res = imds_error(dummy, status, error, description);
    res.keep_alive(false);
    co_await write_response(res);
}

// Over the caller's request rate: IMDS's own throttling answer, so SDKs back off as they would from IMDS.
// Nothing is resolved or fetched for it: a throttled request costs the agent a parse and a write.
HttpResponse Server::Session::throttled(const HttpRequest& req, AuditRecord& record) const {
    const Classified what = classify(req);
    record.method = std::string(req.method_string());
    record.path = what.path;
    record.kind = what.kind;
    record.resource = what.resource;
    record.requested_identity = what.requested_identity;
    record.caller.origin = origin_;
    record.reason = Reason::deny_rate_limited;
    HttpResponse res = imds_error(req, 429, "too_many_requests", "Too many requests from this caller; retry later");
    res.set(http::field::retry_after, "1");
    return res;
}

asio::awaitable<void> Server::Session::run() {
    auto self = shared_from_this();
    // However the loop ends (an exception included), the idle watch lets go of the session.
    struct Finish {
        Session& s;
        ~Finish() {
            s.finished_ = true;
            s.idle_timer_.cancel();
            s.linger_timer_.cancel();
        }
    } finish{*this};
    const std::optional<Origin>& origin = origin_;
    const uint64_t caller_key = origin ? origin->cgroup_id : 0;
    beast::flat_buffer buffer;
    for (;;) {
        if (!co_await wait_readable(buffer))
            break;
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(server_.limits_.header_limit));
        parser.body_limit(server_.limits_.body_limit);
        beast::error_code ec = co_await read_request(buffer, parser);
        if (ec == http::error::header_limit) {
            co_await send_error(431, "invalid_request", "Request header fields too large");
            break;
        }
        if (ec == http::error::body_limit) {
            co_await send_error(413, "invalid_request", "Request body too large");
            break;
        }
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset || ec == asio::error::eof)
            break;
        // RFC 9112 §6.3: a request whose Transfer-Encoding does not end in chunked has no length a server can
        // trust; Beast reads it as bodiless, so its "body" would become the next request. Refuse and close.
        if (!ec && parser.get().count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
            co_await send_error(400, "invalid_request", "Unsupported Transfer-Encoding");
            break;
        }
        if (ec) {
            co_await send_error(400, "invalid_request", "Malformed HTTP request");
            break;
        }
        busy_ = true;
        for (RequestSink* sink : server_.deps_.sinks)
            sink->on_request_begin();
        const HttpRequest& req = parser.get();
        AuditRecord record;
        record.listener = loopback_ ? "loopback" : "node";
        auto started = std::chrono::steady_clock::now();
        // Not `cond ? co_await ... : ...`: GCC 12 miscompiles co_await inside a conditional expression (the
        // response's header list was left dangling and the write crashed).
        HttpResponse res;
        if (server_.caller_limits_.try_request(caller_key, std::chrono::steady_clock::now()))
            res = co_await server_.handle(req, origin, loopback_, record, caller_);
        else
            res = throttled(req, record);
        res.keep_alive(req.keep_alive() && !draining_ && !server_.stopping_.load());
        // Audited before the client can see the answer: a client that acts on its response (say, rotates
        // the audit log and sends SIGHUP) never races its own request's line. Latency is to the response
        // being ready, not sent.
        record.latency_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
        record.time_ms = epoch_ms();
        record.status = res.result_int();
        for (RequestSink* sink : server_.deps_.sinks)
            sink->on_request(record);
        ec = co_await write_response(res);
        busy_ = false;
        ++served_;
        if (ec || !res.keep_alive())
            break;
    }
    beast::error_code ignored;
    if (!sent_fin_)
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    // While draining, read until the client closes too: closing with a request of its unread in our buffer would
    // send a reset, which a client reports as a failure instead of retrying.
    if (draining_ || server_.stopping_.load())
        co_await discard_until_close();
    stream_.socket().close(ignored);
}

asio::awaitable<void> Server::Session::discard_until_close() {
    char sink[4096];
    beast::error_code ec;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (;;) {
        stream_.socket().read_some(asio::buffer(sink), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            if (std::chrono::steady_clock::now() >= until)
                co_return;
            stream_.expires_at(until);
            ec = {};
            co_await stream_.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        }
        if (ec)
            co_return;  // the client's FIN (eof), a reset or the deadline
    }
}

Server::Server(std::vector<asio::io_context*> contexts, ServerDeps deps, HandlerOptions options, ServerLimits limits)
    : contexts_(std::move(contexts)),
      deps_(std::move(deps)),
      options_(options),
      limits_(limits),
      caller_limits_(CallerLimitsConfig{limits.max_connections_per_caller, limits.caller_requests_per_second,
                                        limits.caller_request_burst}) {}

Server::~Server() = default;

Result<tcp::endpoint> Server::listen(const tcp::endpoint& endpoint, bool loopback) {
    auto opened = open_acceptor(contexts_.front()->get_executor(), endpoint);
    if (!opened)
        return opened.error();
    return serve(*opened, loopback);
}

Result<tcp::endpoint> Server::adopt(Fd listener, bool loopback) {
    auto acceptor = adopt_acceptor(contexts_.front()->get_executor(), std::move(listener));
    if (!acceptor)
        return acceptor.error();
    return serve(*acceptor, loopback);
}

std::vector<std::pair<int, bool>> Server::listeners() const {
    std::vector<std::pair<int, bool>> out;
    for (const auto& [acceptor, loopback] : primary_)
        out.emplace_back(acceptor->native_handle(), loopback);
    return out;
}

Result<tcp::endpoint> Server::serve(std::shared_ptr<tcp::acceptor> opened, bool loopback) {
    primary_.emplace_back(opened, loopback);
    beast::error_code nodelay_ec;  // accepted sockets inherit TCP_NODELAY from the listener: one call, not one each
    opened->set_option(tcp::no_delay(true), nodelay_ec);
    std::vector<std::shared_ptr<tcp::acceptor>> per_thread = {opened};
    for (size_t i = 1; i < contexts_.size(); ++i) {
        const int fd = ::dup(per_thread.front()->native_handle());
        if (fd < 0)
            return make_error(
                std::string("cannot share the listening socket between I/O threads: ") + std::strerror(errno), errno);
        beast::error_code ec;
        auto acceptor = std::make_shared<tcp::acceptor>(*contexts_[i]);
        acceptor->assign(opened->local_endpoint().protocol(), fd, ec);
        if (ec) {
            ::close(fd);
            return make_error("cannot share the listening socket between I/O threads: " + ec.message(), ec.value());
        }
        per_thread.push_back(std::move(acceptor));
    }
    const tcp::endpoint bound = per_thread.front()->local_endpoint();
    for (auto& acceptor : per_thread) {
        acceptors_.push_back({acceptor, bound, loopback});
        ++*open_acceptors_;
        asio::co_spawn(acceptor->get_executor(), accept_loop(acceptor, bound, loopback), asio::detached);
    }
    return bound;
}

// The local end of a connection to a listener bound to one address is that address; only a wildcard listener
// needs to ask the socket.
namespace {
sockaddr_storage local_end(const tcp::socket& socket, const tcp::endpoint& bound) {
    sockaddr_storage out{};
    beast::error_code ec;
    const tcp::endpoint local = bound.address().is_unspecified() ? socket.local_endpoint(ec) : bound;
    if (!ec)
        std::memcpy(&out, local.data(), local.size());
    return out;
}
}  // namespace

asio::awaitable<void> Server::accept_loop(std::shared_ptr<tcp::acceptor> acceptor, tcp::endpoint bound, bool loopback) {
    // The server accepts until the last loop has ended, not merely until its acceptor closed: a connection the
    // reactor accepted just before the close resumes this loop later, and is served then. Stopping the I/O
    // threads before that would destroy it unanswered (a reset for a client that already sent its request).
    // The count is shared: a loop the I/O threads never resumed ends when its io_context is destroyed, which may
    // be after this server.
    struct Ended {
        std::shared_ptr<std::atomic<size_t>> open;
        ~Ended() { --*open; }
    } ended{open_acceptors_};
    for (;;) {
        beast::error_code ec;
        tcp::endpoint peer;
        tcp::socket socket = co_await acceptor->async_accept(peer, asio::redirect_error(asio::use_awaitable, ec));
        // A connection accepted as the drain began is still served (its answer says `Connection: close`): closing
        // it unanswered would fail a request.
        if (ec == asio::error::operation_aborted || (ec && stopping_.load()))
            co_return;
        if (ec) {
            // EMFILE and friends: back off briefly instead of spinning.
            std::fprintf(stderr, "podid: accept failed: %s\n", ec.message().c_str());
            asio::steady_timer pause(acceptor->get_executor(), std::chrono::milliseconds(50));
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        start_session(std::move(socket), peer, bound, loopback);
    }
}

void Server::start_session(tcp::socket socket, const tcp::endpoint& peer, const tcp::endpoint& bound, bool loopback) {
    beast::error_code ec;
    if (active_.load() >= limits_.max_connections) {
        socket.close(ec);  // over the limit: refuse rather than queue without bound
        return;
    }
    // Attribution happens once per connection, from the kernel's record of who connected; the per-caller
    // connection cap is counted by the same key.
    sockaddr_storage peer_end{};
    std::memcpy(&peer_end, peer.data(), peer.size());
    std::optional<Origin> origin = deps_.origins->origin_of(peer_end, local_end(socket, bound));
    const auto accepted_at = std::chrono::steady_clock::now();
    if (origin && origin->connect_ns != 0) {
        // libstdc++'s steady_clock reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns().
        const auto now_ns = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(accepted_at.time_since_epoch()).count());
        const double waited = now_ns > origin->connect_ns ? static_cast<double>(now_ns - origin->connect_ns) / 1e9 : 0;
        for (RequestSink* sink : deps_.sinks)
            sink->on_accept_wait(waited);
    }
    const uint64_t caller_key = origin ? origin->cgroup_id : 0;
    if (!caller_limits_.try_open(caller_key, accepted_at)) {
        socket.close(ec);  // this caller already holds its share of connections
        return;
    }
    socket.non_blocking(true, ec);  // sessions try the socket first and wait only when it has no data/room
    auto session = std::make_shared<Session>(*this, std::move(socket), loopback, std::move(origin));
    {
        std::lock_guard lock(sessions_mu_);
        sessions_.insert(session);
    }
    if (stopping_.load())
        session->drain(std::chrono::milliseconds(drain_linger_ms_.load()));
    ++active_;
    for (RequestSink* sink : deps_.sinks)
        sink->on_connection(+1);
    asio::co_spawn(session->executor(), session->run(), [this, session, caller_key](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                std::fprintf(stderr, "podid: session ended with an error: %s\n", ex.what());
            }
        }
        {
            std::lock_guard lock(sessions_mu_);
            sessions_.erase(session);
        }
        caller_limits_.close(caller_key, std::chrono::steady_clock::now());
        --active_;
        for (RequestSink* sink : deps_.sinks)
            sink->on_connection(-1);
    });
}

void Server::shutdown(std::chrono::milliseconds idle_linger, Listeners listeners) {
    drain_linger_ms_.store(idle_linger.count());
    stopping_.store(true);
    // Handed over, the listening sockets live on in the next agent: closing our descriptors loses nothing, and their
    // accept queue and socket filter are the next agent's. Stopping for good, the connections already in the accept
    // queue are taken and answered first: the kernel resets those still queued when the last descriptor closes. So new
    // connection attempts are dropped first (their SYNs; the clients retry and meet the next agent or a refusal), the
    // handshakes under way get a moment to complete into the queue, and only then is the queue taken and the listener
    // closed: nothing can enter it between the last look and the close.
    const bool take_queue = listeners == Listeners::close_for_good;
    if (take_queue)
        for (const auto& [acceptor, loopback] : primary_)
            if (auto r = refuse_new_handshakes(acceptor->native_handle()); !r)
                log_warn("drain: new connections may still be queued and reset at exit",
                         kv("reason", r.error().message));
    const auto handshakes_under_way = take_queue ? kHandshakeGrace : std::chrono::milliseconds(0);
    for (auto& [acceptor, bound, loopback] : acceptors_) {
        auto timer = std::make_shared<asio::steady_timer>(acceptor->get_executor(), handshakes_under_way);
        timer->async_wait([this, timer, acceptor, bound, loopback, take_queue](beast::error_code) {
            beast::error_code ec;
            if (take_queue) {
                acceptor->non_blocking(true, ec);
                for (;;) {
                    tcp::endpoint peer;
                    tcp::socket socket = acceptor->accept(peer, ec);
                    if (ec)
                        break;
                    start_session(std::move(socket), peer, bound, loopback);
                }
            }
            acceptor->close(ec);  // the pending accept ends with operation_aborted, and its loop with it
        });
    }
    std::lock_guard lock(sessions_mu_);
    for (const auto& session : sessions_)
        asio::post(session->executor(), [session, idle_linger] { session->drain(idle_linger); });
}

asio::awaitable<HttpResponse> Server::handle(const HttpRequest& req, const std::optional<Origin>& origin, bool loopback,
                                             AuditRecord& record, std::optional<Caller>& session_caller) {
    const Classified what = classify(req);
    record.method = std::string(req.method_string());
    record.path = what.path;
    record.kind = what.kind;
    record.resource = what.resource;
    record.requested_identity = what.requested_identity;

    // Look up what the decision needs: the caller, once per connection (resolving reads cgroupfs, a stat() to
    // validate the cached path, which a keep-alive client would otherwise pay on every request), and a binding.
    const Lookups needs = lookups_for(req, what, loopback);
    // The self-check needs only the kernel's record; it leaves the connection's caller unresolved, so a later
    // request on the same connection resolves it in full.
    Caller origin_only;
    if (!needs.resolve_caller)
        origin_only.origin = origin;
    else if (session_caller)
        session_caller = co_await deps_.callers->refresh(std::move(*session_caller), needs.may_wait);
    else
        session_caller = co_await deps_.callers->resolve(origin, needs.may_wait);
    const Caller& caller = needs.resolve_caller ? *session_caller : origin_only;
    record.caller = caller;

    HandlerOptions options{options_.block_instance_metadata, loopback, HostTokenAccess::not_served};
    Binding binding;
    if (needs.binding == BindingNeeded::caller && caller.origin) {
        binding = deps_.bindings->bindings_for(caller);
    } else if (needs.binding == BindingNeeded::named_pod && deps_.host_tokens) {
        std::string ns(req["podns"]), name(req["podname"]);
        record.target_pod = ns + "/" + name;
        options.host_token_access = caller.origin && deps_.host_tokens->authorised(caller) ? HostTokenAccess::allowed
                                                                                           : HostTokenAccess::refused;
        if (options.host_token_access == HostTokenAccess::allowed && !ns.empty() && !name.empty()) {
            if (auto b = co_await deps_.host_tokens->binding_of(ns, name))
                binding = *b;
        }
    }
    // The audit line names the binding the decision saw: none for a /host/token caller refused before any lookup.
    const bool refused_early =
        needs.binding == BindingNeeded::named_pod && options.host_token_access != HostTokenAccess::allowed;
    if (what.kind != RequestKind::selfcheck && !refused_early) {
        record.binding =
            std::string(to_string(binding.kind)) + (binding.explanation.empty() ? "" : ": " + binding.explanation);
        record.binding_name = binding.name;
    }

    Plan plan = plan_request(req, what, caller, binding, options);
    if (auto* reply = std::get_if<Reply>(&plan)) {
        record.reason = reply->reason;
        if (reply->reason == Reason::deny_unsupported_identity && binding.identities.empty())
            log_warn("pod is bound only to identities podid cannot serve",
                     kv("pod", caller.pod ? caller.pod->ns + "/" + caller.pod->name : caller.cgroup_path) +
                         kv("binding", binding.explanation));
        co_return std::move(reply->response);
    }
    if (auto* fwd = std::get_if<Forward>(&plan)) {
        record.reason = fwd->reason;
        co_return co_await deps_.forwarder->forward(req);
    }
    auto& fetch = std::get<FetchToken>(plan);
    record.reason = fetch.reason;
    record.granted_identity = fetch.reason == Reason::ok_node_identity ? "node" : describe(fetch.identity);
    TokenOutcome outcome = co_await deps_.tokens->get(fetch.key, fetch.bypass_cache);
    record.cache = outcome.cache_hit ? "hit" : (outcome.shared ? "shared" : "miss");
    if (outcome.token) {
        record.token_sha256 = outcome.token->rendering ? outcome.token->rendering->fingerprint
                                                       : token_fingerprint(outcome.token->access_token);
        record.token_expires_on = outcome.token->expires_on;
    } else {
        record.granted_identity.clear();
        record.reason = outcome.reason                                   ? *outcome.reason
                        : outcome.status == 503 || outcome.status == 504 ? Reason::error_unavailable
                                                                         : Reason::error_upstream;
    }
    co_return render_token(req, fetch, outcome, epoch_s());
}

}  // namespace podid
