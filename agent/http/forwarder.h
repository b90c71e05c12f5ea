// Non-identity metadata paths go to the node's IMDS unchanged (NMI behaviour).
#pragma once

#include <boost/asio/awaitable.hpp>

#include "http/request_record.h"

namespace podid {

// Sends a request for a non-identity metadata path to the node's IMDS (NMI behaviour).
class Forwarder {
public:
    virtual ~Forwarder() = default;
    virtual boost::asio::awaitable<HttpResponse> forward(const HttpRequest& req) = 0;
};

}  // namespace podid
