#include "common/listen.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
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
