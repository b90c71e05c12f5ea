#include "common/listen.h"

#include <linux/filter.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>

namespace podid {

Result<std::shared_ptr<boost::asio::ip::tcp::acceptor>> open_acceptor(const boost::asio::any_io_executor& executor,
                                                                      const boost::asio::ip::tcp::endpoint& endpoint,
                                                                      std::string_view purpose) {
    namespace asio = boost::asio;
    auto acceptor = std::make_shared<asio::ip::tcp::acceptor>(executor);
    boost::system::error_code ec;
    acceptor->open(endpoint.protocol(), ec);
    if (!ec)
        acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
        acceptor->bind(endpoint, ec);
    if (!ec)
        acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error(
            "cannot listen on " + endpoint.address().to_string() + ":" + std::to_string(endpoint.port()) +
                (purpose.empty() ? "" : " " + std::string(purpose)) + ": " + ec.message() +
                (ec == boost::system::errc::address_not_available ? " (is the address one of this host's?)" : ""),
            ec.value());
    return acceptor;
}

Result<void> refuse_new_handshakes(int fd) {
    // A socket filter on a TCP socket sees the segment from its TCP header: byte 13 holds the flags.
    constexpr uint32_t kSyn = 0x02, kAck = 0x10;
    static sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, kSyn | kAck),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kSyn, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0),           // a SYN alone: a new connection, dropped
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),  // anything else, whole
    };
    const sock_fprog program{static_cast<unsigned short>(std::size(code)), code};
    if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) != 0)
        return make_error(std::string("cannot stop new connections to the listener: ") + std::strerror(errno), errno);
    return {};
}

Result<boost::asio::ip::tcp::endpoint> bound_endpoint(int fd) {
    sockaddr_storage address{};
    socklen_t len = sizeof(address);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len) != 0)
        return make_error(std::string("not a socket: ") + std::strerror(errno), errno);
    boost::asio::ip::tcp::endpoint bound;
    if ((address.ss_family != AF_INET && address.ss_family != AF_INET6) || len > bound.capacity())
        return make_error("not a TCP socket (address family " + std::to_string(address.ss_family) + ")", EINVAL);
    std::memcpy(bound.data(), &address, len);
    bound.resize(len);
    return bound;
}

Result<std::shared_ptr<boost::asio::ip::tcp::acceptor>> adopt_acceptor(const boost::asio::any_io_executor& executor,
                                                                       Fd listener, std::string_view purpose) {
    const std::string what = "a passed listener" + (purpose.empty() ? "" : " " + std::string(purpose));
    auto bound = bound_endpoint(listener.get());
    if (!bound)
        return make_error(what + " is " + bound.error().message, bound.error().code);
    auto acceptor = std::make_shared<boost::asio::ip::tcp::acceptor>(executor);
    boost::system::error_code ec;
    acceptor->assign(bound->protocol(), listener.get(), ec);
    if (ec)
        return make_error("cannot serve " + what + ": " + ec.message(), ec.value());
    listener.release();
    return acceptor;
}

}  // namespace podid
