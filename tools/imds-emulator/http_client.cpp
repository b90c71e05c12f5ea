#include "http_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace podid::emulator {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

struct HttpConnection::Impl {
    asio::io_context ioc;
    beast::tcp_stream stream{ioc};
    beast::flat_buffer buffer;
    std::chrono::milliseconds timeout;
    std::string host;

    // tcp_stream deadlines only apply to asynchronous operations, so each step runs one async op to completion.
    template <class Start>
    boost::system::error_code run(Start start) {
        boost::system::error_code result = asio::error::would_block;
        stream.expires_after(timeout);
        start([&](boost::system::error_code ec, auto&&...) { result = ec; });
        ioc.restart();
        ioc.run();
        return result;
    }
};

HttpConnection::HttpConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpConnection::HttpConnection(HttpConnection&&) noexcept = default;
HttpConnection& HttpConnection::operator=(HttpConnection&&) noexcept = default;
HttpConnection::~HttpConnection() = default;

Result<HttpConnection> HttpConnection::open(const std::string& ip, uint16_t port, std::chrono::milliseconds timeout) {
    auto impl = std::make_unique<Impl>();
    impl->timeout = timeout;
    boost::system::error_code ec;
    auto address = asio::ip::make_address(ip, ec);
    if (ec) return make_error("bad address '" + ip + "'", ec.value());
    asio::ip::tcp::endpoint ep(address, port);
    impl->host = (address.is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
    ec = impl->run([&](auto handler) { impl->stream.async_connect(ep, handler); });
    if (ec) return make_error("cannot connect to " + impl->host + ": " + ec.message(), ec.value());
    return HttpConnection(std::move(impl));
}

Result<HttpResponse> HttpConnection::send(HttpRequest req) {
    if (req.find(http::field::host) == req.end()) req.set(http::field::host, impl_->host);
    req.prepare_payload();
    auto ec = impl_->run([&](auto handler) { http::async_write(impl_->stream, req, handler); });
    if (ec) return make_error("cannot send request: " + ec.message(), ec.value());
    HttpResponse res;
    ec = impl_->run([&](auto handler) { http::async_read(impl_->stream, impl_->buffer, res, handler); });
    if (ec) return make_error("no response: " + ec.message(), ec.value());
    return res;
}

Result<HttpResponse> HttpConnection::get(const std::string& target, const Headers& headers) {
    HttpRequest req{http::verb::get, target, 11};
    for (const auto& [name, value] : headers) req.set(name, value);
    return send(std::move(req));
}

Result<HttpResponse> HttpConnection::post(const std::string& target, const std::string& body, const Headers& headers) {
    HttpRequest req{http::verb::post, target, 11};
    req.set(http::field::content_type, "application/json");
    for (const auto& [name, value] : headers) req.set(name, value);
    req.body() = body;
    return send(std::move(req));
}

std::string HttpConnection::local_endpoint() const {
    boost::system::error_code ec;
    auto ep = impl_->stream.socket().local_endpoint(ec);
    if (ec) return "";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

Result<HttpResponse> http_get(const std::string& ip, uint16_t port, const std::string& target, const Headers& headers) {
    auto conn = HttpConnection::open(ip, port);
    if (!conn) return conn.error();
    return conn->get(target, headers);
}

namespace {

Result<nlohmann::json> json_of(Result<HttpResponse> res, const char* what) {
    if (!res) return res.error();
    if (res->result_int() != 200) {
        return make_error(std::string(what) + " answered " + std::to_string(res->result_int()) + ": " + res->body());
    }
    auto json = nlohmann::json::parse(res->body(), nullptr, false);
    if (json.is_discarded()) return make_error(std::string(what) + " did not answer JSON");
    return json;
}

}  // namespace

Result<nlohmann::json> fetch_stats(const std::string& ip, uint16_t port) {
    return json_of(http_get(ip, port, "/_emulator/stats"), "/_emulator/stats");
}

Result<nlohmann::json> fetch_jwks(const std::string& ip, uint16_t port) {
    return json_of(http_get(ip, port, "/_emulator/jwks"), "/_emulator/jwks");
}

Result<void> reset_stats(const std::string& ip, uint16_t port) {
    auto conn = HttpConnection::open(ip, port);
    if (!conn) return conn.error();
    auto res = json_of(conn->post("/_emulator/reset", ""), "/_emulator/reset");
    if (!res) return res.error();
    return {};
}

Result<void> set_fault(const std::string& ip, uint16_t port, const FaultSpec& spec) {
    auto conn = HttpConnection::open(ip, port);
    if (!conn) return conn.error();
    auto res = json_of(conn->post("/_emulator/faults", to_json(spec).dump()), "/_emulator/faults");
    if (!res) return res.error();
    return {};
}

}  // namespace podid::emulator
