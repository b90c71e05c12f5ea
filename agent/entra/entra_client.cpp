#include "entra/entra_client.h"

#include <cerrno>
#include <charconv>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "entra/form.h"
#include "entra/scope.h"

namespace podid::entra {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;

struct EntraClient::Connection {
    Connection(const asio::any_io_executor& executor, ssl::context& context) : stream(executor, context) {}
    ssl::stream<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
};

struct EntraClient::Answer {
    int status = 0;
    std::string retry_after;
    std::string body;
};

struct EntraClient::Failure {
    std::string message;
    bool timed_out = false;
    bool tls = false;
};

namespace {

constexpr std::string_view kAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

bool is_ip_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

bool valid_tenant(std::string_view tenant) {
    if (tenant.empty())
        return false;
    for (char c : tenant)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    return true;
}

int64_t system_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

EntraResult not_sent(int status, std::string_view error, const std::string& message) {
    EntraResult out;
    out.upstream.status = status;
    out.upstream.body = imds_error_body(error, message);
    out.upstream.detail = message;
    out.reason = reason::entra_request_invalid;
    return out;
}

}  // namespace

Result<EntraEndpoint> entra_endpoint(std::string_view authority_host, std::string_view tenant) {
    constexpr std::string_view kScheme = "https://";
    std::string_view rest = authority_host;
    if (rest.substr(0, kScheme.size()) != kScheme)
        return make_error("the authority host " + std::string(authority_host) +
                          " is not an https:// URL (token requests carry credentials)");
    rest.remove_prefix(kScheme.size());
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
    if (path.find_first_of("?#") != std::string_view::npos || authority.find('@') != std::string_view::npos)
        return make_error("the authority host " + std::string(authority_host) +
                          " has a query, fragment or user name; it must be https://host[:port][/path]");

    EntraEndpoint out;
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos)
            return make_error("the authority host " + std::string(authority_host) + " has an unclosed '['");
        out.host = std::string(authority.substr(1, close - 1));
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty() && after.front() != ':')
            return make_error("the authority host " + std::string(authority_host) + " is malformed");
        port_text = after.empty() ? after : after.substr(1);
    } else {
        const auto colon = authority.find(':');
        out.host = std::string(authority.substr(0, colon));
        port_text = colon == std::string_view::npos ? std::string_view() : authority.substr(colon + 1);
    }
    if (out.host.empty())
        return make_error("the authority host " + std::string(authority_host) + " has no host name");
    if (!port_text.empty()) {
        unsigned value = 0;
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 || value > 65535)
            return make_error("the authority host " + std::string(authority_host) + " has an invalid port");
        out.port = static_cast<uint16_t>(value);
    }
    if (!valid_tenant(tenant))
        return make_error("the tenant ID '" + std::string(tenant) +
                          "' is not a tenant GUID or domain name (letters, digits, '-' and '.')");

    out.host_header = out.host.find(':') != std::string::npos ? "[" + out.host + "]" : out.host;
    if (out.port != 443)
        out.host_header += ":" + std::to_string(out.port);
    out.target = std::string(path) + "/" + std::string(tenant) + "/oauth2/v2.0/token";
    out.url = "https://" + out.host_header + out.target;
    return out;
}

Result<std::string> token_request_form(const EntraTokenRequest& request, std::string_view endpoint_url, int64_t now) {
    FormFields fields = {{"grant_type", "client_credentials"},
                         {"client_id", request.info.client_id},
                         {"scope", scope_for_resource(request.info.resource)}};
    if (const auto* secret = std::get_if<ClientSecret>(&request.credential)) {
        if (secret->value.empty())
            return make_error("the client secret is empty");
        fields.emplace_back("client_secret", secret->value);
    } else if (const auto* assertion = std::get_if<ClientAssertion>(&request.credential)) {
        if (assertion->jwt.empty())
            return make_error("the client assertion (federated token) is empty");
        fields.emplace_back("client_assertion_type", kAssertionType);
        fields.emplace_back("client_assertion", assertion->jwt);
    } else {
        const auto& certificate = std::get<CertificateCredential>(request.credential);
        if (!certificate)
            return make_error("no certificate given");
        AssertionClaims claims;
        claims.audience = std::string(endpoint_url);
        claims.client_id = request.info.client_id;
        claims.now = now;
        auto jwt = make_client_assertion(*certificate, claims);
        if (!jwt)
            return make_error("cannot sign the client assertion: " + jwt.error().message);
        fields.emplace_back("client_assertion_type", kAssertionType);
        fields.emplace_back("client_assertion", std::move(*jwt));
    }
    return form_encode(fields);
}

EntraClient::EntraClient(const asio::any_io_executor& executor, EntraClientOptions options)
    : strand_(asio::make_strand(executor)), options_(std::move(options)), ssl_(ssl::context::tls_client) {
    if (!options_.now)
        options_.now = system_now;
}

EntraClient::~EntraClient() = default;

Result<std::unique_ptr<EntraClient>> EntraClient::create(const asio::any_io_executor& executor,
                                                         EntraClientOptions options) {
    if (auto endpoint = entra_endpoint(options.authority_host, "organizations"); !endpoint)
        return make_error(endpoint.error().message, EINVAL);
    std::unique_ptr<EntraClient> client(new EntraClient(executor, std::move(options)));
    error_code ec;
    client->ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                                 ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                             ec);
    if (!ec)
        client->ssl_.set_verify_mode(ssl::verify_peer, ec);
    if (!ec)
        client->ssl_.set_default_verify_paths(ec);
    if (ec)
        return make_error("the system trust store does not load for Entra ID's TLS: " + ec.message(), EINVAL);
    return client;
}

std::size_t EntraClient::idle_connections() const {
    std::lock_guard lock(mu_);
    return idle_ ? 1 : 0;
}

std::unique_ptr<EntraClient::Connection> EntraClient::take_idle() {
    std::lock_guard lock(mu_);
    return std::move(idle_);
}

void EntraClient::give_back(std::unique_ptr<Connection> connection) {
    beast::get_lowest_layer(connection->stream).expires_never();
    std::lock_guard lock(mu_);
    if (!idle_)
        idle_ = std::move(connection);
}

namespace {

EntraClient::Failure failure(const error_code& ec, const char* stage, const EntraEndpoint& endpoint,
                             const EntraClientOptions& options, SSL* ssl = nullptr) {
    EntraClient::Failure out;
    const std::string where = "Entra ID at " + endpoint.host_header + ": ";
    if (ec == beast::error::timeout || ec == asio::error::timed_out) {
        out.timed_out = true;
        out.message =
            where + "no answer within " + std::to_string(options.request_timeout.count()) + " ms (" + stage + ")";
        return out;
    }
    if (ssl != nullptr) {
        out.tls = true;
        const long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            out.message = where + "the server's certificate is refused: " + X509_verify_cert_error_string(verify);
            return out;
        }
    }
    std::string detail = ec.message();
    if (ec.category() == asio::error::get_ssl_category()) {
        char text[256];
        ERR_error_string_n(static_cast<unsigned long>(ec.value()), text, sizeof text);
        detail = std::string("TLS: ") + text;
    }
    out.message = where + stage + " failed: " + detail;
    return out;
}

// A name resolution bounded by the deadline: the system resolver cannot be interrupted once it runs, so the wait
// ends at the deadline and a late answer is dropped.
struct Resolution {
    explicit Resolution(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    error_code ec;
    tcp::resolver::results_type results;
    bool done = false;
};

}  // namespace

asio::awaitable<std::optional<EntraClient::Failure>> EntraClient::open(Connection& connection,
                                                                       const EntraEndpoint& endpoint,
                                                                       std::chrono::steady_clock::time_point deadline) {
    ++opened_;
    auto& lowest = beast::get_lowest_layer(connection.stream);
    lowest.expires_at(deadline);
    error_code ec;
    if (is_ip_literal(endpoint.host)) {
        const tcp::endpoint peer(asio::ip::make_address(endpoint.host), endpoint.port);
        co_await lowest.async_connect(peer, asio::redirect_error(asio::use_awaitable, ec));
    } else {
        auto resolver = std::make_shared<tcp::resolver>(strand_);
        auto resolution = std::make_shared<Resolution>(strand_);
        resolution->timer.expires_at(deadline);
        resolver->async_resolve(endpoint.host, std::to_string(endpoint.port),
                                [resolver, resolution](const error_code& error, tcp::resolver::results_type results) {
                                    resolution->ec = error;
                                    resolution->results = std::move(results);
                                    resolution->done = true;
                                    resolution->timer.cancel();
                                });
        error_code ignored;
        if (!resolution->done)  // the answer can only arrive once this coroutine waits, but be sure
            co_await resolution->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (!resolution->done) {
            resolver->cancel();
            co_return failure(asio::error::timed_out, "resolving the name", endpoint, options_);
        }
        if (resolution->ec)
            co_return failure(resolution->ec, "resolving the name", endpoint, options_);
        co_await lowest.async_connect(resolution->results, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec)
        co_return failure(ec, "connecting", endpoint, options_);

    // OpenSSL checks the name (or address) itself, so a refusal names the reason ("hostname mismatch"); SNI
    // carries names only (RFC 6066 §3).
    SSL* ssl = connection.stream.native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    const bool named = !is_ip_literal(endpoint.host);
    const bool pinned = named ? SSL_set_tlsext_host_name(ssl, endpoint.host.c_str()) == 1 &&
                                    SSL_set1_host(ssl, endpoint.host.c_str()) == 1
                              : X509_VERIFY_PARAM_set1_ip_asc(param, endpoint.host.c_str()) == 1;
    if (!pinned) {
        ERR_clear_error();
        Failure out;
        out.tls = true;
        out.message = "Entra ID at " + endpoint.host_header + ": cannot set the TLS peer name";
        co_return out;
    }
    co_await connection.stream.async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failure(ec, "TLS handshake", endpoint, options_, ssl);
    co_return std::nullopt;
}

asio::awaitable<Result<EntraClient::Answer, EntraClient::Failure>> EntraClient::exchange(const EntraEndpoint& endpoint,
                                                                                         HttpRequest& request) {
    const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
    for (int round = 0;; ++round) {
        auto connection = options_.keep_alive ? take_idle() : nullptr;
        const bool reused = connection != nullptr;
        if (!connection) {
            connection = std::make_unique<Connection>(strand_, ssl_);
            if (auto failed = co_await open(*connection, endpoint, deadline))
                co_return std::move(*failed);
        }
        beast::get_lowest_layer(connection->stream).expires_at(deadline);

        // A kept-alive connection the server has closed since fails before any answer arrives: the request is sent
        // again on a fresh connection. Safe for a POST here: a client-credentials request changes nothing at Entra.
        error_code ec;
        co_await http::async_write(connection->stream, request, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (reused && round == 0 && ec != beast::error::timeout)
                continue;
            co_return failure(ec, "sending the request", endpoint, options_);
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(options_.max_body_bytes);
        co_await http::async_read(connection->stream, connection->buffer, parser,
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (reused && round == 0 && !parser.got_some() && ec != beast::error::timeout)
                continue;
            co_return failure(ec, "reading the response", endpoint, options_);
        }
        auto response = parser.release();
        Answer answer;
        answer.status = static_cast<int>(response.result_int());
        answer.retry_after = std::string(response[http::field::retry_after]);
        answer.body = std::move(response.body());
        if (options_.keep_alive && response.keep_alive())
            give_back(std::move(connection));
        co_return answer;
    }
}

asio::awaitable<EntraResult> EntraClient::fetch(const EntraTokenRequest& request) {
    const EntraRequestInfo& info = request.info;
    if (info.client_id.empty() || info.resource.empty())
        co_return not_sent(400, "invalid_request", "a token request to Entra ID needs a client ID and a resource");
    auto endpoint = entra_endpoint(options_.authority_host, info.tenant);
    if (!endpoint)
        co_return not_sent(400, "invalid_request", endpoint.error().message);
    const int64_t now = options_.now();
    auto form = token_request_form(request, endpoint->url, now);
    if (!form)
        co_return not_sent(500, "server_error", form.error().message);

    HttpRequest http_request{http::verb::post, endpoint->target, 11};
    http_request.set(http::field::host, endpoint->host_header);
    http_request.set(http::field::user_agent, options_.user_agent);
    http_request.set(http::field::accept, "application/json");
    http_request.set(http::field::content_type, "application/x-www-form-urlencoded");
    // Entra echoes it as correlation_id in error bodies.
    http_request.set("client-request-id", random_uuid_v4());
    http_request.keep_alive(options_.keep_alive);
    http_request.body() = std::move(*form);
    http_request.prepare_payload();

    // Result<T> is not default-constructible, which co_spawn in Boost 1.74 needs: box it. The closure captures only
    // pointers (GCC 12 mishandles non-trivial objects passed by value through use_awaitable's initiation).
    const EntraEndpoint* where = &*endpoint;
    auto boxed = co_await asio::co_spawn(
        strand_,
        [this, where, &http_request]() -> asio::awaitable<std::optional<Result<Answer, Failure>>> {
            co_return co_await exchange(*where, http_request);
        },
        asio::use_awaitable);
    auto& answer = *boxed;
    if (!answer) {
        EntraResult out;
        const Failure& failed = answer.error();
        out.upstream.timed_out = failed.timed_out;
        out.upstream.detail = failed.message;
        out.reason = failed.timed_out ? reason::entra_timeout
                                      : (failed.tls ? reason::entra_tls_failed : reason::entra_unreachable);
        co_return out;
    }
    co_return entra_result(answer->status, answer->retry_after, answer->body, info, now);
}

}  // namespace podid::entra
