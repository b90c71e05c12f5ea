// HTTPS client to Entra ID's v2 token endpoint: one POST per fetch (client credentials with a secret, a certificate
// assertion podid signs, or a federated token), answered as the token cache takes upstream answers (one attempt,
// no retries: the cache owns retries and limits, as it does for IMDS).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/result.h"
#include "entra/client_assertion.h"
#include "entra/token_response.h"

namespace podid::entra {

struct EntraClientOptions {
    // AZURE_AUTHORITY_HOST's form: https only (a token request carries a credential), optional port and path.
    std::string authority_host = "https://login.microsoftonline.com/";
    // Per attempt: name resolution, connect, TLS handshake, request and the whole response.
    std::chrono::milliseconds request_timeout{10'000};
    std::size_t max_body_bytes = 1 << 20;
    std::string user_agent = "podid-agent";
    bool keep_alive = true;        // keep one idle connection for the next request
    std::function<int64_t()> now;  // epoch seconds (assertion times, expires_on); the system clock when empty
};

struct ClientSecret {
    std::string value;  // AzureIdentity type 1: the Secret's client secret value
};
struct ClientAssertion {
    std::string jwt;  // signed elsewhere: the pod's service-account token for api://AzureADTokenExchange
};
// AzureIdentity type 2: podid signs an assertion with it for every request.
using CertificateCredential = std::shared_ptr<const ClientCertificate>;
using EntraCredential = std::variant<ClientSecret, ClientAssertion, CertificateCredential>;

struct EntraTokenRequest {
    EntraRequestInfo info;  // tenant, client id, the IMDS resource the pod asked for, the Kubernetes objects to name
    EntraCredential credential;
};

// The endpoint an authority host and tenant give, split for the connection.
struct EntraEndpoint {
    std::string host;  // name or address, without brackets
    uint16_t port = 443;
    std::string host_header;  // host[:port], IPv6 in brackets
    std::string target;       // /{path/}{tenant}/oauth2/v2.0/token
    std::string url;          // https://{host_header}{target}: the assertion's aud
};

// Exactly one slash between the authority host (its trailing slashes dropped) and the tenant. The tenant must be a
// GUID or a domain name (letters, digits, '-', '.'), as the Azure SDKs require; anything else would change the path.
Result<EntraEndpoint> entra_endpoint(std::string_view authority_host, std::string_view tenant);

// The form body: grant_type=client_credentials, client_id, scope (scope_for_resource), then client_secret or
// client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer and client_assertion (for a
// certificate, signed now for `endpoint_url`).
Result<std::string> token_request_form(const EntraTokenRequest& request, std::string_view endpoint_url, int64_t now);

class EntraClient {
public:
    // Trust is the system store (OpenSSL's default paths, which SSL_CERT_FILE and SSL_CERT_DIR override); the peer's
    // certificate is always verified against the authority host's name (SNI sent for names). Fails on a malformed
    // authority host or a trust store that does not load. Socket work runs on a strand of `executor`; callers may
    // co_await from any executor. The client must outlive every call.
    static Result<std::unique_ptr<EntraClient>> create(const boost::asio::any_io_executor& executor,
                                                       EntraClientOptions options);
    ~EntraClient();
    EntraClient(const EntraClient&) = delete;
    EntraClient& operator=(const EntraClient&) = delete;

    // One attempt; never throws. No HTTP answer: upstream.status 0 (timed_out when the request timeout fired),
    // reason entra_unreachable / entra_timeout / entra_tls_failed. A request that cannot be made (bad tenant, empty
    // client id or resource, a certificate that cannot sign): status 400 or 500, reason entra_request_invalid.
    boost::asio::awaitable<EntraResult> fetch(const EntraTokenRequest& request);

    std::size_t connections_opened() const { return opened_.load(); }
    std::size_t idle_connections() const;
    const EntraClientOptions& options() const { return options_; }

    struct Connection;  // a TLS stream and its read buffer (entra_client.cpp)
    struct Answer;      // status, Retry-After, body
    struct Failure;     // why there was no answer

private:
    EntraClient(const boost::asio::any_io_executor& executor, EntraClientOptions options);
    using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

    boost::asio::awaitable<Result<Answer, Failure>> exchange(const EntraEndpoint& endpoint, HttpRequest& request);
    // Resolve, connect and handshake; nullopt when the connection is ready.
    boost::asio::awaitable<std::optional<Failure>> open(Connection& connection, const EntraEndpoint& endpoint,
                                                        std::chrono::steady_clock::time_point deadline);
    std::unique_ptr<Connection> take_idle();
    void give_back(std::unique_ptr<Connection> connection);

    boost::asio::strand<boost::asio::any_io_executor> strand_;
    EntraClientOptions options_;
    boost::asio::ssl::context ssl_;
    mutable std::mutex mu_;
    std::unique_ptr<Connection> idle_;  // one: every request goes to the same authority host
    std::atomic<std::size_t> opened_{0};
};

}  // namespace podid::entra
