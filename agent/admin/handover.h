// Hand-over between two agents on one node, so that an upgrade fails no request.
//
// The agent that runs serves a unix socket (--handover-socket, root only). A new agent asks it first, before it
// binds anything, and gets the old agent's listening sockets themselves (SCM_RIGHTS): one socket, one accept queue,
// now shared by both processes. The old agent also says which cgroups it exempts (its own among them), so the new
// agent keeps them exempt while the old one still fetches tokens. The new agent takes the pins over (programs
// swapped atomically, maps reused), serves, and only then tells the old agent to drain: it closes its copies of the
// listeners (the sockets stay open in the new agent, so nothing queued is reset), answers the requests it has with
// `Connection: close`, closes connections left idle, and says when it is done.
//
//   new agent                          old agent
//   {"op":"offer","pid":N}      ->
//                               <-     {"pid":..,"listeners":[roles],"exempt":[ids],...} + the listening sockets
//   (takes the pins, serves)
//   {"op":"drain"}              ->
//                               <-     {"draining_connections":N}
//                               <-     {"drained":true}          (then it exits, or waits for SIGTERM)
//
// A new agent that finds no socket, or one nobody accepts on (a killed agent's), binds its own listeners.
// If it dies before asking for the drain, the old agent sees the connection close and keeps serving.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include "admin/unix_acceptor.h"
#include "common/fd.h"
#include "common/result.h"

namespace podid {

// Listener roles passed from agent to agent.
inline constexpr const char* kHandoverImds = "imds";                   // node IP:port, where pods are redirected
inline constexpr const char* kHandoverImdsLoopback = "imds-loopback";  // 127.0.0.1:port (/host/token)
inline constexpr const char* kHandoverMetrics = "metrics";             // --metrics-addr
inline constexpr const char* kHandoverSocket = "handover";             // this socket itself

// What the old agent offers, as the new agent received it.
struct HandoverOffer {
    int pid = 0;
    std::string version;
    int64_t holding_since_ms = 0;  // when the old agent took the pins (epoch ms)
    std::vector<uint64_t> exempt;  // the cgroups it keeps exempt, its own among them
    std::vector<std::pair<std::string, Fd>> listeners;

    // The listener with this role (moved out), or an invalid Fd.
    Fd take(const std::string& role);
};

// What the old agent gives: its listening sockets by role (it keeps its own descriptors) and its exempt set.
struct HandoverContent {
    std::vector<std::pair<std::string, int>> listeners;
    std::vector<uint64_t> exempt;
    int64_t holding_since_ms = 0;
    std::string version;
};

struct HandoverHooks {
    // A successor asks (on the I/O thread): what to give it. The moment to write the token cache file, so the
    // successor starts with it.
    std::function<HandoverContent()> offer;
    // The successor serves: stop accepting and drain; returns the connections being drained. `done` is to be
    // called (from any thread) once the last one closed.
    std::function<std::size_t(int successor_pid, std::function<void()> done)> drain;
};

class HandoverServer {
public:
    HandoverServer(boost::asio::io_context& io, HandoverHooks hooks);
    ~HandoverServer();

    // Binds `path` (0600, in a 0700 directory; a killed agent's socket file is replaced, a live one is not).
    Result<void> listen(const std::string& path);
    // Serves a listener the previous agent passed on.
    Result<void> adopt(Fd listener, const std::string& path);
    int listener_fd() const;  // to pass on; -1 before listen/adopt
    // Stops answering. The socket file is removed unless a successor took the socket over.
    void shutdown();
    bool handed_over() const { return handed_over_.load(); }
    // True from the moment the listeners were passed to a new agent (unless it abandoned the hand-over): they are
    // that agent's too, so this one must leave them as they are when it stops.
    bool listeners_passed() const { return passed_.load() || handed_over_.load(); }

private:
    using socket_type = UnixAcceptor::Socket;
    Result<void> start(Fd listener, const std::string& path);
    boost::asio::awaitable<void> session(std::shared_ptr<socket_type> socket);

    boost::asio::io_context& io_;
    HandoverHooks hooks_;
    UnixAcceptor acceptor_{io_};
    std::shared_ptr<socket_type> successor_;  // kept open until this process exits: the successor watches it
    std::atomic<bool> handed_over_{false};
    std::atomic<bool> passed_{false};
};

class HandoverClient {
public:
    // Asks the agent serving `path` for its listeners. Empty when no agent answers there.
    static Result<std::optional<HandoverClient>> request(const std::string& path, std::chrono::milliseconds timeout);

    HandoverOffer& offer() { return offer_; }
    // Tells the old agent to drain (call once this agent serves); returns how many connections it is draining.
    Result<std::size_t> drain(std::chrono::milliseconds timeout);
    // Calls `done` on `io` once the old agent has drained (or exited, or stopped answering).
    void on_drained(boost::asio::io_context& io, std::function<void()> done);

private:
    HandoverClient() = default;
    Fd socket_;
    HandoverOffer offer_;
};

}  // namespace podid

namespace podid {

// Who holds the pins, for `podidctl status` and the metrics. Written on the I/O thread, read anywhere.
struct HandoverState {
    std::atomic<int64_t> holding_since_ms{0};  // when this agent took the pins (attached or took them over)
    std::atomic<int> predecessor_pid{0};       // the agent it took them over from (0: none)
    std::atomic<int> successor_pid{0};         // the agent it handed them to (0: none yet)
    std::atomic<int64_t> handed_over_ms{0};
    std::atomic<uint64_t> received{0};             // hand-overs this agent took (0 or 1)
    std::atomic<uint64_t> given{0};                // hand-overs this agent gave (0 or 1)
    std::atomic<uint64_t> drained_connections{0};  // connections it drained when it handed over

    nlohmann::json to_json() const;
};

// podid_handovers_total{direction="received|given"}, podid_handover_drained_connections_total.
class HandoverMetrics : public prometheus::Collectable {
public:
    explicit HandoverMetrics(const HandoverState& state) : state_(state) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    const HandoverState& state_;
};

}  // namespace podid
