// common/listen: opening and adopting TCP listeners, and closing one for good without resetting a connection.
#include "common/listen.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>

#include <boost/asio/io_context.hpp>

namespace podid {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
}

// A non-blocking connect to 127.0.0.1:port; the handshake goes on without the caller.
Fd start_connect(uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const sockaddr_in a = loopback(port);
    const int r = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof(a));
    EXPECT_TRUE(r == 0 || errno == EINPROGRESS) << std::strerror(errno);
    return fd;
}

// Whether the connect finished within `ms`, and how (0: connected, else its errno).
std::optional<int> connect_result(int fd, int ms) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, ms) != 1)
        return std::nullopt;
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return err;
}

TEST(Listen, OpenAdoptAndBoundEndpoint) {
    asio::io_context io;
    auto opened = open_acceptor(io.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), "for tests");
    ASSERT_TRUE(opened) << opened.error().message;
    const auto bound = bound_endpoint((*opened)->native_handle());
    ASSERT_TRUE(bound) << bound.error().message;
    EXPECT_EQ(bound->address().to_string(), "127.0.0.1");
    EXPECT_EQ(bound->port(), (*opened)->local_endpoint().port());

    auto adopted = adopt_acceptor(io.get_executor(), Fd(::dup((*opened)->native_handle())), "for tests");
    ASSERT_TRUE(adopted) << adopted.error().message;
    EXPECT_EQ((*adopted)->local_endpoint(), *bound);

    // Not a TCP socket: named as such, and the descriptor is left to the caller.
    Fd udp(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_FALSE(bound_endpoint(udp.get()));
    auto refused = adopt_acceptor(io.get_executor(), Fd(::dup(udp.get())), "for metrics");
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("a passed listener for metrics is not a TCP socket"), std::string::npos)
        << refused.error().message;
    auto taken = open_acceptor(io.get_executor(), *bound, "for tests");
    ASSERT_FALSE(taken);
    EXPECT_NE(taken.error().message.find("cannot listen on 127.0.0.1:" + std::to_string(bound->port()) + " for tests"),
              std::string::npos)
        << taken.error().message;
}

// Once new handshakes are refused, a connection already queued is still accepted, and a new attempt never
// reaches the queue: when the listener then closes, the late client is refused (after its SYN retry), not reset.
TEST(Listen, RefusingNewHandshakesKeepsTheQueueAndLetsNothingIn) {
    asio::io_context io;
    auto opened = open_acceptor(io.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    ASSERT_TRUE(opened) << opened.error().message;
    const int listener = (*opened)->native_handle();
    (*opened)->native_non_blocking(true);  // accept below must not wait
    const uint16_t port = (*opened)->local_endpoint().port();

    Fd queued = start_connect(port);
    ASSERT_EQ(connect_result(queued.get(), 1000), std::optional<int>(0)) << "the first connection completes";
    ASSERT_TRUE(refuse_new_handshakes(listener));
    Fd late = start_connect(port);
    EXPECT_EQ(connect_result(late.get(), 300), std::nullopt) << "a new handshake must not complete";

    // The queue holds exactly the first connection; data still flows on it.
    Fd accepted(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    ASSERT_TRUE(accepted.valid()) << std::strerror(errno);
    EXPECT_EQ(::send(queued.get(), "x", 1, MSG_NOSIGNAL), 1);
    char c = 0;
    pollfd p{accepted.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    EXPECT_EQ(::recv(accepted.get(), &c, 1, 0), 1);
    EXPECT_EQ(c, 'x');
    Fd none(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    EXPECT_FALSE(none.valid()) << "nothing else was queued";

    // Closed: the late client's retransmitted SYN meets no listener and is refused.
    (*opened)->close();
    EXPECT_EQ(connect_result(late.get(), 4000), std::optional<int>(ECONNREFUSED));
}

}  // namespace
}  // namespace podid
