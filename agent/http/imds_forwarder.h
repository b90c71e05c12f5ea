// The agent's Forwarder: non-identity metadata paths go to the node's IMDS through the same client as token
// fetches; when IMDS does not answer, the pod gets IMDS's own 502 shape.
#pragma once

#include "http/forwarder.h"
#include "token/imds_client.h"

namespace podid {

class ImdsForwarder : public Forwarder {
public:
    explicit ImdsForwarder(ImdsClient& client) : client_(client) {}
    boost::asio::awaitable<HttpResponse> forward(const HttpRequest& req) override;

private:
    ImdsClient& client_;
};

}  // namespace podid
