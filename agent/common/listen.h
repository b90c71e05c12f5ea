// Opens a listening TCP acceptor (both the IMDS server and the metrics server use it).
#pragma once

#include <memory>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/result.h"

namespace podid {

// open + SO_REUSEADDR + bind + listen; the error names the address and `purpose` ("" or e.g. "for metrics").
Result<std::shared_ptr<boost::asio::ip::tcp::acceptor>> open_acceptor(const boost::asio::any_io_executor& executor,
                                                                      const boost::asio::ip::tcp::endpoint& endpoint,
                                                                      std::string_view purpose = {});

}  // namespace podid
