// HTTP/1.1 client to the node's IMDS: podid's only way out to the real metadata service.
// Keeps a few keep-alive connections; every request has a deadline; failures are values.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/result.h"
#include "common/url.h"
#include "token/imds_url.h"
#include "token/token.h"

namespace podid {

// Same types as agent/http/imds_handler.h declares (a repeated alias of the same type is allowed).
using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

struct ImdsClientOptions {
    ImdsUrl url;
    std::chrono::milliseconds request_timeout{5000};  // connect + send + receive, per attempt
    std::size_t max_idle_connections = 5;             // IMDS allows 5 concurrent identity requests
    std::size_t max_body_bytes = 1 << 20;
};

// The parts of an IMDS answer the token path needs.
struct ImdsResponse {
    unsigned status = 0;
    std::string retry_after;
    std::string content_type;
    std::string body;
};

// `/metadata/identity/oauth2/token?api-version=2018-02-01&resource=...[&client_id=...|&msi_res_id=...|&object_id=...]`
std::string token_request_target(const TokenKey& key);
// Connection-scoped headers that a forwarder must not pass on (RFC 9110 §7.6.1), plus any listed in Connection.
void strip_hop_by_hop(boost::beast::http::fields& fields);

class ImdsClient {
public:
    // All socket work runs on a strand of `executor`; callers may co_await from any executor.
    // The client must outlive every call.
    ImdsClient(boost::asio::any_io_executor executor, ImdsClientOptions options);

    // One GET for a token with `Metadata: true`. Transport failures are errors whose code is an errno
    // (ETIMEDOUT for the request timeout, ECONNREFUSED, ECONNRESET, EPROTO for a malformed answer).
    boost::asio::awaitable<Result<ImdsResponse>> get_token(const TokenKey& key);

    // A client's request for another metadata path: method, target and headers unchanged except
    // hop-by-hop headers; the response likewise, with Content-Length recomputed.
    boost::asio::awaitable<Result<HttpResponse>> forward(const HttpRequest& request);

    std::size_t idle_connections() const;
    std::size_t connections_opened() const { return opened_.load(); }
    const ImdsClientOptions& options() const { return options_; }

private:
    using Stream = boost::beast::tcp_stream;

    boost::asio::awaitable<Result<HttpResponse>> exchange_on_strand(HttpRequest& request);
    boost::asio::awaitable<Result<HttpResponse>> exchange(HttpRequest& request);  // request owned by the caller
    boost::asio::awaitable<Result<HttpResponse>> attempt(Stream& stream, bool reused, HttpRequest& request,
                                                         bool& retry_on_fresh);
    std::unique_ptr<Stream> take_idle();
    void give_back(std::unique_ptr<Stream> stream);

    boost::asio::strand<boost::asio::any_io_executor> strand_;
    ImdsClientOptions options_;
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<Stream>> idle_;
    std::atomic<std::size_t> opened_{0};
};

}  // namespace podid
