#include "admin/handover.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "admin/admin_socket.h"
#include "common/fd_passing.h"
#include "common/log.h"
#include "common/unix_listener.h"
#include "observe/metric_family.h"

namespace podid {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using nlohmann::json;

Fd HandoverOffer::take(const std::string& role) {
    for (auto& [r, fd] : listeners)
        if (r == role && fd.valid())
            return std::move(fd);
    return Fd();
}

HandoverServer::HandoverServer(asio::io_context& io, HandoverHooks hooks) : io_(io), hooks_(std::move(hooks)) {}

HandoverServer::~HandoverServer() { shutdown(); }

Result<void> HandoverServer::listen(const std::string& path) {
    auto fd = bind_unix_listener(path, "hand-over socket");
    if (!fd)
        return fd.error();
    return start(std::move(*fd), path);
}

Result<void> HandoverServer::adopt(Fd listener, const std::string& path) { return start(std::move(listener), path); }

Result<void> HandoverServer::start(Fd listener, const std::string& path) {
    return acceptor_.start(std::move(listener), path, "hand-over socket", [this](std::shared_ptr<socket_type> socket) {
        asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    });
}

int HandoverServer::listener_fd() const { return acceptor_.native_handle(); }

void HandoverServer::shutdown() {
    // The file now names the successor's socket (the same socket): it stays.
    if (acceptor_.stop() && !handed_over_.load())
        ::unlink(acceptor_.path().c_str());
}

namespace {

// One JSON line from the socket; a discarded json on EOF or garbage.
asio::awaitable<json> read_json_line(local::socket& socket, asio::streambuf& buf) {
    boost::system::error_code ec;
    const std::size_t n =
        co_await asio::async_read_until(socket, buf, '\n', asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return json(json::value_t::discarded);
    std::string line(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + static_cast<std::ptrdiff_t>(n));
    buf.consume(n);
    co_return json::parse(line, nullptr, false);
}

asio::awaitable<void> write_line(local::socket& socket, json message) {
    std::string line = message.dump() + "\n";
    boost::system::error_code ec;
    co_await asio::async_write(socket, asio::buffer(line), asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace

asio::awaitable<void> HandoverServer::session(std::shared_ptr<socket_type> socket) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(socket->native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        !admin_peer_allowed(cred.uid, ::geteuid())) {
        log_warn("hand-over socket: refused a non-root caller",
                 kv("uid", std::to_string(cred.uid)) + kv("pid", std::to_string(cred.pid)));
        co_return;
    }
    asio::streambuf buf(64 * 1024);
    json ask = co_await read_json_line(*socket, buf);
    if (ask.is_discarded() || ask.value("op", "") != "offer" || acceptor_.stopped() || handed_over_) {
        log_warn("hand-over socket: unexpected request", kv("pid", std::to_string(cred.pid)));
        co_return;
    }
    const int successor = static_cast<int>(cred.pid);
    log_info("hand-over: a new agent asks for the listeners", kv("successor_pid", std::to_string(successor)));
    HandoverContent content = hooks_.offer();
    content.listeners.emplace_back(kHandoverSocket, acceptor_.native_handle());
    json offer = {{"pid", ::getpid()},
                  {"version", content.version},
                  {"holding_since_ms", content.holding_since_ms},
                  {"exempt", content.exempt},
                  {"listeners", json::array()}};
    std::vector<int> fds;
    for (const auto& [role, fd] : content.listeners) {
        offer["listeners"].push_back(role);
        fds.push_back(fd);
    }
    // Shared from the moment they are sent (the new agent may hold them before this send returns).
    passed_ = true;
    if (auto sent = send_line_with_fds(socket->native_handle(), offer.dump(), fds); !sent) {
        passed_ = false;
        log_error("hand-over: cannot pass the listeners", kv("reason", sent.error().message));
        co_return;
    }
    log_info("hand-over: listeners passed; serving until the new agent is ready",
             kv("listeners", std::to_string(fds.size())) + kv("successor_pid", std::to_string(successor)));
    json next = co_await read_json_line(*socket, buf);
    if (next.is_discarded() || next.value("op", "") != "drain") {
        // The successor died (or gave up) before serving: keep serving as before. Its copies of the listeners
        // closed with it; ours never did.
        log_warn("hand-over abandoned by the new agent; still serving", kv("successor_pid", std::to_string(successor)));
        passed_ = false;
        co_return;
    }
    handed_over_ = true;
    successor_ = socket;  // open until this process exits: the successor reads "drained" or the close
    // `done` may be called from any thread, once the last connection closed.
    auto done = [this, socket] {
        asio::co_spawn(
            io_,
            [socket]() -> asio::awaitable<void> {
                json drained = {{"drained", true}};
                co_await write_line(*socket, std::move(drained));
            },
            asio::detached);
    };
    const std::size_t in_flight = hooks_.drain(successor, std::move(done));
    json ack = {{"draining", true}, {"connections", in_flight}};
    co_await write_line(*socket, std::move(ack));
}

Result<std::optional<HandoverClient>> HandoverClient::request(const std::string& path,
                                                              std::chrono::milliseconds timeout) {
    auto connected = connect_unix(path);
    if (!connected) {
        if (connected.error().code == ENOENT || connected.error().code == ECONNREFUSED)
            return std::optional<HandoverClient>();  // no agent, or a killed agent's socket file
        return make_error("hand-over: " + connected.error().message, connected.error().code);
    }
    HandoverClient client;
    client.socket_ = std::move(*connected);
    if (auto sent = send_line_with_fds(client.socket_.get(), json{{"op", "offer"}, {"pid", ::getpid()}}.dump(), {});
        !sent)
        return make_error("hand-over: " + sent.error().message, sent.error().code);
    auto got = receive_line_with_fds(client.socket_.get(), timeout);
    if (!got)
        return make_error("hand-over: the running agent did not pass its listeners: " + got.error().message,
                          got.error().code);
    json offer = json::parse(got->line, nullptr, false);
    if (offer.is_discarded() || !offer.contains("listeners") || !offer["listeners"].is_array() ||
        offer["listeners"].size() != got->fds.size())
        return make_error("hand-over: the running agent's answer is not understood: " + got->line, EPROTO);
    HandoverOffer& o = client.offer_;
    o.pid = offer.value("pid", 0);
    o.version = offer.value("version", "");
    o.holding_since_ms = offer.value("holding_since_ms", int64_t{0});
    if (offer.contains("exempt") && offer["exempt"].is_array())
        for (const auto& id : offer["exempt"])
            if (id.is_number_unsigned())
                o.exempt.push_back(id.get<uint64_t>());
    for (std::size_t i = 0; i < got->fds.size(); ++i)
        o.listeners.emplace_back(offer["listeners"][i].is_string() ? offer["listeners"][i].get<std::string>() : "",
                                 std::move(got->fds[i]));
    return std::optional<HandoverClient>(std::move(client));
}

Result<std::size_t> HandoverClient::drain(std::chrono::milliseconds timeout) {
    if (auto sent = send_line_with_fds(socket_.get(), json{{"op", "drain"}}.dump(), {}); !sent)
        return sent.error();
    auto got = receive_line_with_fds(socket_.get(), timeout);
    if (!got)
        return got.error();
    json ack = json::parse(got->line, nullptr, false);
    if (ack.is_discarded() || !ack.value("draining", false))
        return make_error("hand-over: the old agent did not acknowledge the drain: " + got->line, EPROTO);
    return ack.value("connections", std::size_t{0});
}

void HandoverClient::on_drained(asio::io_context& io, std::function<void()> done) {
    auto socket = std::make_shared<local::socket>(io);
    boost::system::error_code ec;
    socket->assign(local(), socket_.release(), ec);
    if (ec) {
        asio::post(io, std::move(done));
        return;
    }
    asio::co_spawn(
        io,
        [socket, done = std::move(done)]() -> asio::awaitable<void> {
            asio::streambuf buf(4096);
            // The "drained" line, or the connection closing (the old agent exited): either way it is done.
            co_await read_json_line(*socket, buf);
            done();
        },
        asio::detached);
}

}  // namespace podid

namespace podid {

nlohmann::json HandoverState::to_json() const {
    nlohmann::json j = {{"holder_pid", ::getpid()},
                        {"holding_since_ms", holding_since_ms.load()},
                        {"taken_over_from_pid", predecessor_pid.load()}};
    if (successor_pid.load() != 0) {
        j["handed_over_to_pid"] = successor_pid.load();
        j["handed_over_ms"] = handed_over_ms.load();
    }
    return j;
}

std::vector<prometheus::MetricFamily> HandoverMetrics::Collect() const {
    auto handovers = metric_family("podid_handovers_total",
                                   "Hand-overs of the listeners and pins between two agents on this node "
                                   "(docs/upgrades.md), by whether this agent received them from the previous agent "
                                   "or gave them to the next.",
                                   prometheus::MetricType::Counter);
    add_sample(handovers, {{"direction", "received"}}, static_cast<double>(state_.received.load()));
    add_sample(handovers, {{"direction", "given"}}, static_cast<double>(state_.given.load()));
    auto drained = metric_family("podid_handover_drained_connections_total",
                                 "Connections this agent finished (answered with Connection: close, or closed idle) "
                                 "after handing its listeners to the next agent.",
                                 prometheus::MetricType::Counter);
    add_sample(drained, {}, static_cast<double>(state_.drained_connections.load()));
    return {std::move(handovers), std::move(drained)};
}

}  // namespace podid
