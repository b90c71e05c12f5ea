#include "token/imds_client.h"

#include <cerrno>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace podid {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

namespace {

constexpr std::string_view kTokenPath = "/metadata/identity/oauth2/token";

Error transport_error(const error_code& ec, const char* stage, const ImdsClientOptions& options) {
    if (ec == beast::error::timeout)
        return make_error("IMDS at " + options.url.host_header + " did not answer within " +
                              std::to_string(options.request_timeout.count()) + " ms",
                          ETIMEDOUT);
    int code = EPROTO;
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset)
        code = ECONNRESET;
    else if (ec.category() == boost::system::system_category())
        code = ec.value();
    return make_error("IMDS at " + options.url.host_header + ": " + stage + " failed: " + ec.message(), code);
}

bool is_idempotent(http::verb method) {
    return method == http::verb::get || method == http::verb::head || method == http::verb::options;
}

}  // namespace

std::string token_request_target(const TokenKey& key) {
    std::string target(kTokenPath);
    target += "?api-version=2018-02-01&resource=" + percent_encode(key.resource);
    // TokenKey carries at most one selector; should several be set, the first wins rather than
    // sending IMDS a request it rejects.
    if (!key.client_id.empty())
        target += "&client_id=" + percent_encode(key.client_id);
    else if (!key.msi_res_id.empty())
        target += "&msi_res_id=" + percent_encode(key.msi_res_id);
    else if (!key.object_id.empty())
        target += "&object_id=" + percent_encode(key.object_id);
    return target;
}

void strip_hop_by_hop(http::fields& fields) {
    std::vector<std::string> listed;
    for (auto it = fields.find(http::field::connection); it != fields.end() && it->name() == http::field::connection;
         ++it) {
        std::string_view value = it->value();
        while (!value.empty()) {
            auto comma = value.find(',');
            auto item = value.substr(0, comma);
            while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
                item.remove_prefix(1);
            while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
                item.remove_suffix(1);
            if (!item.empty())
                listed.emplace_back(item);
            value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
        }
    }
    for (const auto& name : listed)
        fields.erase(name);
    for (auto field : {http::field::connection, http::field::keep_alive, http::field::proxy_connection, http::field::te,
                       http::field::trailer, http::field::transfer_encoding, http::field::upgrade,
                       http::field::proxy_authorization, http::field::proxy_authenticate})
        fields.erase(field);
}

ImdsClient::ImdsClient(asio::any_io_executor executor, ImdsClientOptions options)
    : strand_(asio::make_strand(executor)), options_(std::move(options)) {}

std::size_t ImdsClient::idle_connections() const {
    std::lock_guard lock(mu_);
    return idle_.size();
}

std::unique_ptr<ImdsClient::Stream> ImdsClient::take_idle() {
    std::lock_guard lock(mu_);
    if (idle_.empty())
        return nullptr;
    auto stream = std::move(idle_.back());
    idle_.pop_back();
    return stream;
}

void ImdsClient::give_back(std::unique_ptr<Stream> stream) {
    stream->expires_never();
    std::lock_guard lock(mu_);
    if (idle_.size() < options_.max_idle_connections)
        idle_.push_back(std::move(stream));
}

asio::awaitable<Result<HttpResponse>> ImdsClient::attempt(Stream& stream, bool reused, HttpRequest& request,
                                                          bool& retry_on_fresh) {
    retry_on_fresh = false;
    error_code ec;
    stream.expires_after(options_.request_timeout);
    if (!reused) {
        ++opened_;
        const auto address = asio::ip::make_address(options_.url.host, ec);
        if (!ec) {
            co_await stream.async_connect(asio::ip::tcp::endpoint(address, options_.url.port),
                                          asio::redirect_error(asio::use_awaitable, ec));
        } else {
            asio::ip::tcp::resolver resolver(strand_);
            auto endpoints = co_await resolver.async_resolve(options_.url.host, std::to_string(options_.url.port),
                                                             asio::redirect_error(asio::use_awaitable, ec));
            if (!ec)
                co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
        }
        if (ec)
            co_return transport_error(ec, "connecting", options_);
    }

    co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        // A kept-alive connection the server has since closed: the request never reached it.
        retry_on_fresh = reused && ec != beast::error::timeout;
        co_return transport_error(ec, "sending the request", options_);
    }

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_body_bytes);
    if (request.method() == http::verb::head)
        parser.skip(true);
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        retry_on_fresh = reused && !parser.got_some() && ec != beast::error::timeout;
        co_return transport_error(ec, "reading the response", options_);
    }
    co_return parser.release();
}

asio::awaitable<Result<HttpResponse>> ImdsClient::exchange(HttpRequest& request) {
    request.version(11);
    request.keep_alive(true);
    if (request[http::field::host].empty())
        request.set(http::field::host, options_.url.host_header);
    request.prepare_payload();

    for (int round = 0;; ++round) {
        auto stream = take_idle();
        const bool reused = stream != nullptr;
        if (!stream)
            stream = std::make_unique<Stream>(strand_);
        bool retry_on_fresh = false;
        auto result = co_await attempt(*stream, reused, request, retry_on_fresh);
        if (result) {
            if (result->keep_alive())
                give_back(std::move(stream));
            co_return result;
        }
        if (!retry_on_fresh || round > 0 || !is_idempotent(request.method()))
            co_return result;
    }
}

asio::awaitable<Result<HttpResponse>> ImdsClient::exchange_on_strand(HttpRequest& request) {
    // Result<T> is not default-constructible, which co_spawn in Boost 1.74 needs: box it. The
    // closure captures only pointers: GCC 12 mishandles non-trivial objects passed through
    // use_awaitable's by-value initiation arguments (a request captured by value was freed twice).
    auto boxed = co_await asio::co_spawn(
        strand_,
        [this, &request]() -> asio::awaitable<std::optional<Result<HttpResponse>>> {
            co_return co_await exchange(request);
        },
        asio::use_awaitable);
    co_return std::move(*boxed);
}

asio::awaitable<Result<ImdsResponse>> ImdsClient::get_token(const TokenKey& key) {
    HttpRequest request{http::verb::get, token_request_target(key), 11};
    request.set(http::field::host, options_.url.host_header);
    request.set("Metadata", "true");
    auto result = co_await exchange_on_strand(request);
    if (!result)
        co_return result.error();
    ImdsResponse out;
    out.status = result->result_int();
    out.retry_after = std::string((*result)[http::field::retry_after]);
    out.content_type = std::string((*result)[http::field::content_type]);
    out.body = std::move(result->body());
    co_return out;
}

asio::awaitable<Result<HttpResponse>> ImdsClient::forward(const HttpRequest& request) {
    HttpRequest copy = request;
    strip_hop_by_hop(copy.base());
    auto result = co_await exchange_on_strand(copy);
    if (!result)
        co_return result;
    strip_hop_by_hop(result->base());
    // The session decides its own connection handling with the pod.
    if (request.method() != http::verb::head)
        result->prepare_payload();
    co_return result;
}

}  // namespace podid
