#include "common/listen.h"

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

}  // namespace podid
