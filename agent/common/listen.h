// Listening TCP acceptors for the IMDS server and the metrics server: opened here, or received from the agent
// this one takes over from (admin/handover.h).
#pragma once

#include <memory>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/fd.h"
#include "common/result.h"

namespace podid {

// open + SO_REUSEADDR + bind + listen; the error names the address and `purpose` ("" or e.g. "for metrics").
Result<std::shared_ptr<boost::asio::ip::tcp::acceptor>> open_acceptor(const boost::asio::any_io_executor& executor,
                                                                      const boost::asio::ip::tcp::endpoint& endpoint,
                                                                      std::string_view purpose = {});

// The address the TCP socket `fd` is bound to; an error when it is not a TCP socket.
Result<boost::asio::ip::tcp::endpoint> bound_endpoint(int fd);

// An acceptor serving a listening TCP socket this process received; takes `listener` on success. `purpose` as above.
Result<std::shared_ptr<boost::asio::ip::tcp::acceptor>> adopt_acceptor(const boost::asio::any_io_executor& executor,
                                                                       Fd listener, std::string_view purpose = {});

}  // namespace podid
