#include "https_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace podid::entra_emulator {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;

Result<HttpsUrl> parse_https_url(std::string_view url) {
    constexpr std::string_view kScheme = "https://";
    if (url.substr(0, kScheme.size()) != kScheme)
        return make_error("'" + std::string(url) + "' is not an https URL");
    std::string_view rest = url.substr(kScheme.size());
    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    HttpsUrl out;
    out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    out.port = "443";
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos)
            return make_error("bad IPv6 host in '" + std::string(url) + "'");
        out.host = std::string(authority.substr(1, close - 1));
        if (close + 1 < authority.size() && authority[close + 1] == ':')
            out.port = std::string(authority.substr(close + 2));
    } else {
        size_t colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos)
            out.port = std::string(authority.substr(colon + 1));
    }
    if (out.host.empty() || out.port.empty() || authority.find('@') != std::string_view::npos)
        return make_error("bad host in '" + std::string(url) + "'");
    return out;
}

Result<std::unique_ptr<ssl::context>> make_client_tls(const std::vector<std::string>& extra_ca_pems,
                                                      bool system_roots) {
    auto tls = std::make_unique<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    tls->set_verify_mode(ssl::verify_peer, ec);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    if (!ec && system_roots)
        tls->set_default_verify_paths(ec);
    if (ec)
        return make_error("cannot load the system CA certificates: " + ec.message());
    for (const auto& pem : extra_ca_pems) {
        tls->add_certificate_authority(asio::buffer(pem), ec);
        if (ec)
            return make_error("cannot trust a CA certificate: " + ec.message());
    }
    return tls;
}

asio::awaitable<Result<HttpResponse>> https_get(std::string url, ssl::context& tls, std::chrono::milliseconds timeout) {
    auto parsed = parse_https_url(url);
    if (!parsed)
        co_return parsed.error();
    auto executor = co_await asio::this_coro::executor;
    boost::system::error_code ec;
    auto failed = [&](const char* step) { return make_error(std::string(step) + " " + url + ": " + ec.message()); };

    asio::ip::tcp::resolver resolver(executor);
    auto endpoints =
        co_await resolver.async_resolve(parsed->host, parsed->port, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failed("cannot resolve");

    beast::ssl_stream<beast::tcp_stream> stream(executor, tls);
    SSL* ssl = stream.native_handle();
    boost::system::error_code not_ip;
    asio::ip::make_address(parsed->host, not_ip);
    if (not_ip) {
        SSL_set_tlsext_host_name(ssl, parsed->host.c_str());  // SNI is for names only (RFC 6066 §3)
        SSL_set1_host(ssl, parsed->host.c_str());
    } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), parsed->host.c_str());
    }

    beast::get_lowest_layer(stream).expires_after(timeout);
    co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failed("cannot connect to");
    co_await stream.async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failed("TLS handshake failed with");

    http::request<http::empty_body> req{http::verb::get, parsed->target, 11};
    bool v6 = parsed->host.find(':') != std::string::npos;
    std::string host = v6 ? "[" + parsed->host + "]" : parsed->host;
    req.set(http::field::host, parsed->port == "443" ? host : host + ":" + parsed->port);
    req.set(http::field::user_agent, "podid-entra-emulator");
    req.set(http::field::accept, "application/json");
    req.keep_alive(false);
    co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failed("cannot send to");

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failed("no answer from");
    // No TLS close_notify exchange: the answer is complete, and a peer that never answers one would hold this
    // request until the timeout. Closing the socket is enough.
    beast::get_lowest_layer(stream).socket().close(ec);
    co_return parser.release();
}

}  // namespace podid::entra_emulator
