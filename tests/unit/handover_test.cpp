// The hand-over protocol between two agents (admin/handover.h), both ends in this process: the old agent's
// HandoverServer on an I/O thread, the new agent's HandoverClient on the test thread. The listeners passed are
// real TCP sockets, checked to be the same sockets (a connection queued on one is accepted from the other).
#include "admin/handover.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "common/fd.h"
#include "common/unix_listener.h"
#include "temp_dir.h"

namespace podid {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

Fd tcp_listener(uint16_t& port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd.get(), 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

uint16_t port_of(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        return 0;
    return ntohs(a.sin_port);
}

// The old agent: a HandoverServer on its own I/O thread, offering one TCP listener and an exempt set.
struct OldAgent {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    Fd listener;
    uint16_t port = 0;
    std::atomic<int> offers{0}, drains{0};
    std::atomic<int> successor{0};
    std::promise<std::function<void()>> drain_done;  // the drain hook's `done`, for the test to call
    std::unique_ptr<HandoverServer> server;
    std::thread thread;

    explicit OldAgent(const std::string& path) {
        listener = tcp_listener(port);
        HandoverHooks hooks;
        hooks.offer = [this] {
            ++offers;
            HandoverContent c;
            c.listeners.emplace_back(kHandoverImds, listener.get());
            c.exempt = {7, 42};
            c.holding_since_ms = 1234;
            c.version = "old";
            return c;
        };
        hooks.drain = [this](int pid, std::function<void()> done) {
            ++drains;
            successor = pid;
            drain_done.set_value(std::move(done));
            return std::size_t{3};
        };
        server = std::make_unique<HandoverServer>(io, std::move(hooks));
        auto r = server->listen(path);
        EXPECT_TRUE(r) << r.error().message;
        thread = std::thread([this] { io.run(); });
    }
    // HandoverServer::shutdown on the agent's I/O thread, as the agent calls it; returns once it ran.
    void shutdown_server() {
        std::promise<void> stopped;
        asio::post(io, [&] {
            server->shutdown();
            stopped.set_value();
        });
        stopped.get_future().wait();
    }
    ~OldAgent() {
        asio::post(io, [this] { server->shutdown(); });
        work.reset();
        io.stop();
        thread.join();
    }
};

TEST(Handover, NoAgentMeansNoOffer) {
    test::TempDir dir;
    const std::string path = (dir.path / "handover.sock").string();
    auto none = HandoverClient::request(path, 1s);
    ASSERT_TRUE(none) << none.error().message;
    EXPECT_FALSE(none->has_value()) << "no socket file";
    // A killed agent's socket file: nobody accepts on it.
    { auto stale = bind_unix_listener(path, "test socket"); }
    ASSERT_TRUE(std::filesystem::exists(path));
    auto stale = HandoverClient::request(path, 1s);
    ASSERT_TRUE(stale) << stale.error().message;
    EXPECT_FALSE(stale->has_value()) << "a socket file nobody accepts on";
}

TEST(Handover, ListenersPassAsTheSameSocketsThenTheOldAgentDrains) {
    test::TempDir dir;
    const std::string path = (dir.path / "run" / "handover.sock").string();
    OldAgent old(path);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    EXPECT_FALSE(old.server->listeners_passed());
    auto asked = HandoverClient::request(path, 5s);
    ASSERT_TRUE(asked) << asked.error().message;
    ASSERT_TRUE(asked->has_value());
    HandoverClient& client = **asked;
    // From the offer on, the listeners are the new agent's too: a SIGTERM now must not close them for good.
    EXPECT_TRUE(old.server->listeners_passed());
    HandoverOffer& offer = client.offer();
    EXPECT_EQ(offer.pid, ::getpid());
    EXPECT_EQ(offer.version, "old");
    EXPECT_EQ(offer.holding_since_ms, 1234);
    EXPECT_EQ(offer.exempt, (std::vector<uint64_t>{7, 42}));
    ASSERT_EQ(offer.listeners.size(), 2u) << "the TCP listener and the hand-over socket itself";
    Fd imds = offer.take(kHandoverImds);
    ASSERT_TRUE(imds.valid());
    EXPECT_FALSE(offer.take(kHandoverImds).valid()) << "taken once";
    EXPECT_FALSE(offer.take(kHandoverMetrics).valid()) << "not offered";
    EXPECT_TRUE(offer.take(kHandoverSocket).valid());
    EXPECT_EQ(port_of(imds.get()), old.port);

    // One socket, one queue: a connection made to the old listener is accepted from the passed descriptor, also
    // after the old agent closed its own.
    old.listener.reset();
    Fd conn(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(old.port);
    ASSERT_EQ(::connect(conn.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    Fd accepted(::accept4(imds.get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(accepted.valid()) << std::strerror(errno);

    auto draining = client.drain(5s);
    ASSERT_TRUE(draining) << draining.error().message;
    EXPECT_EQ(*draining, 3u);
    EXPECT_EQ(old.successor.load(), ::getpid());
    EXPECT_TRUE(old.server->handed_over());
    EXPECT_TRUE(old.server->listeners_passed());

    asio::io_context mine;
    bool drained = false;
    client.on_drained(mine, [&] { drained = true; });
    auto done = old.drain_done.get_future();
    ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
    done.get()();  // the old agent's last connection closed
    mine.run_for(5s);
    EXPECT_TRUE(drained);

    // Handed over, the socket file names the new agent's socket (the same one): it stays.
    old.shutdown_server();
    EXPECT_TRUE(std::filesystem::exists(path));
    EXPECT_EQ(old.offers.load(), 1);
    EXPECT_EQ(old.drains.load(), 1);
}

// The new agent died (or gave up) before asking for the drain: the old agent keeps serving, and a later agent can
// still ask it.
TEST(Handover, AbandonedHandOverLeavesTheOldAgentServing) {
    test::TempDir dir;
    const std::string path = (dir.path / "handover.sock").string();
    OldAgent old(path);
    {
        auto asked = HandoverClient::request(path, 5s);
        ASSERT_TRUE(asked && asked->has_value());
        EXPECT_TRUE(old.server->listeners_passed());
    }  // closed without a drain
    std::this_thread::sleep_for(100ms);
    EXPECT_FALSE(old.server->handed_over());
    EXPECT_FALSE(old.server->listeners_passed()) << "abandoned: the listeners are this agent's alone again";
    EXPECT_EQ(old.drains.load(), 0);
    auto again = HandoverClient::request(path, 5s);
    ASSERT_TRUE(again && again->has_value());
    EXPECT_EQ(old.offers.load(), 2);
    // Not handed over: a shutdown removes the socket file.
    old.shutdown_server();
    EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(HandoverState, JsonAndMetrics) {
    HandoverState s;
    s.holding_since_ms = 1000;
    s.predecessor_pid = 17;
    s.received = 1;
    nlohmann::json j = s.to_json();
    EXPECT_EQ(j.value("holder_pid", 0), ::getpid());
    EXPECT_EQ(j.value("taken_over_from_pid", 0), 17);
    EXPECT_FALSE(j.contains("handed_over_to_pid"));
    s.successor_pid = 99;
    s.handed_over_ms = 2000;
    s.given = 1;
    s.drained_connections = 5;
    j = s.to_json();
    EXPECT_EQ(j.value("handed_over_to_pid", 0), 99);
    auto families = HandoverMetrics(s).Collect();
    ASSERT_EQ(families.size(), 2u);
    EXPECT_EQ(families[0].name, "podid_handovers_total");
    ASSERT_EQ(families[0].metric.size(), 2u);
    EXPECT_EQ(families[0].metric[0].counter.value, 1);  // received
    EXPECT_EQ(families[0].metric[1].counter.value, 1);  // given
    EXPECT_EQ(families[1].metric[0].counter.value, 5);
}

}  // namespace
}  // namespace podid
