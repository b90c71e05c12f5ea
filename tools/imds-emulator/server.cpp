#include "server.h"

#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include "imds_rules.h"
#include "query.h"

namespace podid::emulator {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::ip::tcp;

struct EmulatorServer::Handled {
    HttpResponse response;
    bool reset = false;    // close the connection abruptly instead of answering
    bool hang = false;     // never answer; wait for the client to give up
    int slow_body_ms = 0;  // > 0: send the head at once and spread the body over this long
};

namespace {

std::string random_token_id() {
    std::string bytes(16, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size())) != 1) {
        // Uniqueness, not secrecy, is what tokens need here; fall back to a counter mixed with the clock.
        static std::atomic<uint64_t> counter{0};
        uint64_t parts[2] = {counter.fetch_add(1),
                             static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
        std::memcpy(bytes.data(), parts, sizeof parts);
    }
    return bytes;
}

int64_t epoch_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string endpoint_text(const tcp::endpoint& ep) {
    std::string ip = ep.address().to_string();
    if (ep.address().is_v6())
        ip = "[" + ip + "]";
    return ip + ":" + std::to_string(ep.port());
}

// Decrements the in-flight count however the coroutine leaves (including destruction at stop()).
struct InFlight {
    Stats& stats;
    ~InFlight() { stats.token_finished(); }
};

// The response's head at once, then its body in ten pieces spread over `spread`: a client that times out
// a whole exchange (not only the wait for the head) must give up on it.
asio::awaitable<bool> write_slowly(beast::tcp_stream& stream, HttpResponse& res, std::chrono::milliseconds spread) {
    boost::system::error_code ec;
    stream.expires_after(spread + std::chrono::seconds(30));
    http::response_serializer<http::string_body> head(res);
    co_await http::async_write_header(stream, head, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return false;
    const std::string& body = res.body();
    constexpr size_t kPieces = 10;
    const size_t piece = std::max<size_t>(1, (body.size() + kPieces - 1) / kPieces);
    asio::steady_timer timer(stream.get_executor());
    for (size_t off = 0; off < body.size(); off += piece) {
        timer.expires_after(spread / kPieces);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        co_await asio::async_write(stream, asio::buffer(body.data() + off, std::min(piece, body.size() - off)),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return false;
    }
    co_return true;
}

}  // namespace

EmulatorServer::EmulatorServer(EmulatorConfig config, TokenSigner signer)
    : config_(std::move(config)), signer_(std::move(signer)), limiter_(config_.limits) {
    faults_.set(config_.fault);
}

EmulatorServer::~EmulatorServer() { stop(); }

std::string EmulatorServer::endpoint() const {
    tcp::endpoint ep(asio::ip::make_address(config_.listen_ip), port_);
    return endpoint_text(ep);
}

Result<uint16_t> EmulatorServer::start() {
    if (ioc_)
        return make_error("emulator already started");
    boost::system::error_code ec;
    auto address = asio::ip::make_address(config_.listen_ip, ec);
    if (ec)
        return make_error("bad listen address '" + config_.listen_ip + "': " + ec.message(), ec.value());

    auto ioc = std::make_unique<asio::io_context>(1);
    tcp::acceptor acceptor(*ioc);
    tcp::endpoint ep(address, config_.listen_port);
    acceptor.open(ep.protocol(), ec);
    if (!ec)
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
        acceptor.bind(ep, ec);
    if (!ec)
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error("cannot listen on " + endpoint_text(ep) + ": " + ec.message(), ec.value());
    port_ = acceptor.local_endpoint().port();

    ioc_ = std::move(ioc);
    asio::co_spawn(*ioc_, accept_loop(std::move(acceptor)), asio::detached);
    thread_ = std::thread([this] { ioc_->run(); });
    return port_;
}

void EmulatorServer::stop() {
    if (!ioc_)
        return;
    ioc_->stop();
    if (thread_.joinable())
        thread_.join();
    ioc_.reset();  // destroys the acceptor and every suspended session with their sockets
}

asio::awaitable<void> EmulatorServer::accept_loop(tcp::acceptor acceptor) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted)
            co_return;
        if (ec)
            continue;  // e.g. EMFILE, or the peer gave up before accept: keep serving others
        stats_.connection_opened();
        asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
    }
}

asio::awaitable<void> EmulatorServer::session(tcp::socket socket) {
    boost::system::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    std::string peer = ec ? std::string("unknown") : endpoint_text(remote);
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;

    for (;;) {
        stream.expires_after(config_.idle_timeout);
        HttpRequest req;
        co_await http::async_read(stream, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            break;  // peer closed, idle timeout or a malformed request: nothing sensible to answer

        Handled handled = co_await handle(req, peer);
        if (handled.hang) {
            // The socket stays open and silent until the client closes it (its timeout) or the server stops.
            stream.expires_never();
            char sink[512];
            for (;;) {
                co_await stream.socket().async_read_some(asio::buffer(sink),
                                                         asio::redirect_error(asio::use_awaitable, ec));
                if (ec)
                    break;
            }
            stream.socket().close(ec);
            co_return;
        }
        if (handled.slow_body_ms > 0) {
            if (!co_await write_slowly(stream, handled.response, std::chrono::milliseconds(handled.slow_body_ms))) {
                break;
            }
            if (!handled.response.keep_alive())
                break;
            continue;
        }
        if (handled.reset) {
            // SO_LINGER 0 makes close() send RST: the client sees "connection reset", as when IMDS drops it.
            stream.socket().set_option(asio::socket_base::linger(true, 0), ec);
            stream.socket().close(ec);
            co_return;
        }
        stream.expires_after(std::chrono::seconds(30));
        co_await http::async_write(stream, handled.response, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !handled.response.keep_alive())
            break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<EmulatorServer::Handled> EmulatorServer::handle(const HttpRequest& req, const std::string& peer) {
    Route route = route_of(req.target());
    if (route == Route::admin) {
        AdminState admin{stats_, faults_, signer_};
        co_return Handled{answer_admin(req, admin)};
    }
    if (route == Route::token)
        co_return co_await handle_token(req, peer);

    ImdsContext ctx{config_.identities, signer_, config_.tenant_id, config_.token_lifetime, epoch_now(), ""};
    ImdsOutcome out = answer_imds(req, ctx);
    Target target = split_target(req.target());
    stats_.record({target.path, target.raw_query, peer, out.response.result_int(), "", ""}, false);
    co_return Handled{std::move(out.response)};
}

asio::awaitable<EmulatorServer::Handled> EmulatorServer::handle_token(const HttpRequest& req, const std::string& peer) {
    Target target = split_target(req.target());
    RequestRecord rec{target.path,
                      target.raw_query,
                      peer,
                      0,
                      param(target, "client_id").value_or(""),
                      param(target, "resource").value_or("")};
    int before = stats_.token_started();
    InFlight in_flight{stats_};

    if (config_.enforce_limits && !limiter_.admit(RateLimiter::Clock::now(), before)) {
        HttpResponse res = imds_error(req, 429, "too_many_requests",
                                      "Too many requests: IMDS allows 20 identity requests per second and 5 at once");
        rec.status = res.result_int();
        stats_.record(std::move(rec), true);
        co_return Handled{std::move(res)};
    }

    FaultAction fault = faults_.take();
    if (fault.latency_ms > 0 && fault.mode != FaultMode::slow_body) {
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(fault.latency_ms));
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (fault.mode == FaultMode::reset) {
        stats_.record(std::move(rec), true);
        co_return Handled{HttpResponse{}, true};
    }
    if (fault.mode == FaultMode::hang) {
        stats_.record(std::move(rec), true);
        Handled hang;
        hang.hang = true;
        co_return hang;
    }
    if (fault.mode == FaultMode::status || fault.mode == FaultMode::html) {
        HttpResponse res = fault.mode == FaultMode::html ? html_fault_response(req, fault.status, fault.retry_after)
                                                         : fault_response(req, fault.status, fault.retry_after);
        rec.status = res.result_int();
        stats_.record(std::move(rec), true);
        co_return Handled{std::move(res)};
    }

    ImdsContext ctx{config_.identities,     signer_,     config_.tenant_id,
                    config_.token_lifetime, epoch_now(), random_token_id()};
    ImdsOutcome out = answer_imds(req, ctx);
    rec.status = out.response.result_int();
    if (!out.client_id.empty())
        rec.client_id = out.client_id;
    rec.resource = out.resource;
    stats_.record(std::move(rec), true);
    Handled handled{std::move(out.response)};
    if (fault.mode == FaultMode::slow_body)
        handled.slow_body_ms = fault.latency_ms;
    co_return handled;
}

}  // namespace podid::emulator
