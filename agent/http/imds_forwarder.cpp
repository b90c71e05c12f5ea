#include "http/imds_forwarder.h"

#include "common/log.h"
#include "http/imds_handler.h"

namespace podid {

boost::asio::awaitable<HttpResponse> ImdsForwarder::forward(const HttpRequest& req) {
    auto res = co_await client_.forward(req);
    if (res)
        co_return std::move(*res);
    log_warn("forwarding to IMDS failed", kv("path", std::string(req.target())) + kv("error", res.error().message));
    co_return imds_error(req, 502, "bad_gateway", "IMDS did not answer");
}

}  // namespace podid
