// enable_tcp_keepalive (common/tcp_keepalive.h): the options land on a real TCP socket, and a bad socket gets an
// error that names the option.
#include "common/tcp_keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace podid {
namespace {

int option(int fd, int level, int name) {
    int value = -1;
    socklen_t len = sizeof value;
    EXPECT_EQ(::getsockopt(fd, level, name, &value, &len), 0);
    return value;
}

TEST(TcpKeepalive, SetsEveryOption) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(enable_tcp_keepalive(fd, TcpKeepalive{std::chrono::seconds(7), std::chrono::seconds(3), 4}).ok());
    EXPECT_EQ(option(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPIDLE), 7);
    EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPINTVL), 3);
    EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
    ::close(fd);
}

TEST(TcpKeepalive, DefaultsDetectADeadPeerWithinAMinute) {
    const TcpKeepalive d;
    EXPECT_LE(d.idle + d.interval * d.count, std::chrono::seconds(60));
}

TEST(TcpKeepalive, ErrorNamesTheOption) {
    auto r = enable_tcp_keepalive(-1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, EBADF);
    EXPECT_NE(r.error().message.find("SO_KEEPALIVE"), std::string::npos) << r.error().message;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    auto bad = enable_tcp_keepalive(fd, TcpKeepalive{std::chrono::seconds(0), std::chrono::seconds(1), 1});
    ASSERT_FALSE(bad.ok());  // TCP_KEEPIDLE must be at least 1 s
    EXPECT_NE(bad.error().message.find("TCP_KEEPIDLE"), std::string::npos) << bad.error().message;
    ::close(fd);
}

}  // namespace
}  // namespace podid
