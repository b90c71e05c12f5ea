// EntraClient against an HTTPS server on 127.0.0.1 inside the test, with a CA made here and trusted through
// SSL_CERT_FILE (the client trusts only the system store, whose location OpenSSL takes from that variable): the exact
// request sent, each kind of answer, timeouts, refused certificates, keep-alive reuse.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "entra/entra_client.h"
#include "entra/form.h"
#include "support/tls_certs.h"

namespace podid::entra {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using nlohmann::json;
using namespace std::chrono_literals;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr int64_t kNow = 1700000000;
constexpr const char* kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
constexpr const char* kClient = "11111111-2222-3333-4444-555555555555";
const std::string kJwt = "eyJ0eXAiOiJKV1QifQ.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl";

struct Reply {
    enum Kind { respond, respond_then_close, hang } kind = respond;
    unsigned status = 200;
    std::string body =
        R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":")" + kJwt + R"("})";
    std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json; charset=utf-8"}};
};

Reply reply(unsigned status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
    Reply out;
    out.status = status;
    out.body = std::move(body);
    out.headers = std::move(headers);
    return out;
}

struct Seen {
    Request request;
    int connection = 0;
    std::string server_name;  // SNI
};

// Entra ID's token endpoint, as far as this test needs it: one listening socket on 127.0.0.1, every request recorded
// and answered by `script`.
class HttpsServer {
public:
    HttpsServer(asio::io_context& ioc, const test::TlsCert& certificate)
        : acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), tls_(ssl::context::tls_server) {
        tls_.use_certificate_chain(asio::buffer(certificate.cert_pem));
        tls_.use_private_key(asio::buffer(certificate.key_pem), ssl::context::pem);
        asio::co_spawn(ioc, accept_loop(), asio::detached);
    }

    uint16_t port() const { return acceptor_.local_endpoint().port(); }

    std::function<Reply(const Request&)> script;
    bool handshake = true;  // false: accept, then never answer the TLS handshake
    std::vector<Seen> seen;
    int accepted = 0;
    int handshakes_failed = 0;

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            boost::system::error_code ec;
            tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec)
                co_return;
            asio::co_spawn(acceptor_.get_executor(), session(std::move(socket), accepted++), asio::detached);
        }
    }

    static asio::awaitable<void> hold(const asio::any_io_executor& executor) {
        asio::steady_timer timer(executor, 30s);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }

    asio::awaitable<void> session(tcp::socket socket, int connection) {
        boost::system::error_code ec;
        const auto executor = socket.get_executor();
        if (!handshake) {
            co_await hold(executor);
            co_return;
        }
        ssl::stream<tcp::socket> stream(std::move(socket), tls_);
        co_await stream.async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            ++handshakes_failed;
            co_return;
        }
        const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
        boost::beast::flat_buffer buffer;
        for (;;) {
            Request request;
            co_await http::async_read(stream, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
            if (ec)
                co_return;
            seen.push_back({request, connection, sni ? sni : ""});
            const Reply action = script ? script(request) : Reply{};
            if (action.kind == Reply::hang) {
                co_await hold(executor);
                co_return;
            }
            Response response{static_cast<http::status>(action.status), 11};
            for (const auto& [name, value] : action.headers)
                response.set(name, value);
            response.body() = action.body;
            response.keep_alive(action.kind != Reply::respond_then_close);
            response.prepare_payload();
            co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
            if (ec || action.kind == Reply::respond_then_close) {
                boost::system::error_code ignored;
                stream.next_layer().close(ignored);
                co_return;
            }
        }
    }

    tcp::acceptor acceptor_;
    ssl::context tls_;
};

// Runs one coroutine on `ioc` to completion and returns its result.
template <class T>
T run(asio::io_context& ioc, std::function<asio::awaitable<T>()> make) {
    std::optional<T> out;
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { out.emplace(co_await make()); }, asio::detached);
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!out && std::chrono::steady_clock::now() < give_up) {
        ioc.run_for(5ms);
        if (ioc.stopped())
            ioc.restart();
    }
    EXPECT_TRUE(out) << "timed out";
    return out ? std::move(*out) : T{};
}

EntraResult fetch(asio::io_context& ioc, EntraClient& client, const EntraTokenRequest& request) {
    return run<EntraResult>(ioc, [&] { return client.fetch(request); });
}

std::string base64url_decode(std::string text) {
    for (auto& c : text)
        c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (text.size() % 4 != 0)
        text += '=';
    std::string out(text.size(), '\0');
    const int size =
        EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    out.resize(static_cast<std::size_t>(std::max(size, 0)) - std::count(text.end() - 2, text.end(), '='));
    return out;
}

json jwt_claims(const std::string& jwt) {
    const auto first = jwt.find('.'), second = jwt.find('.', first + 1);
    return json::parse(base64url_decode(jwt.substr(first + 1, second - first - 1)), nullptr, false);
}

// A self-signed RSA certificate and its key in one PEM bundle (the test PKI's keys are EC; assertions need RSA).
std::string rsa_identity_pem() {
    EVP_PKEY* key = EVP_RSA_gen(2048);
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("podid-test-sp"), -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    X509_set_pubkey(cert, key);
    X509_sign(cert, key, EVP_sha256());
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert);
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<std::size_t>(size));
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(key);
    return pem;
}

EntraTokenRequest token_request(EntraCredential credential, std::string resource = "https://vault.azure.net") {
    return {{kTenant, kClient, std::move(resource), "AzureIdentity shop/cart-sp (secret shop/cart-sp-secret)"},
            std::move(credential)};
}

// The PKI (a CA and a server certificate for 127.0.0.1 and localhost), another for a host name that is not the
// server's, and a third CA that signed nothing here; each CA in its own file for SSL_CERT_FILE.
struct Pkis {
    test::TestPki good, wrong_name, stranger;
    std::string dir;
    std::string ca_file(const char* name) const { return dir + "/" + name + ".crt"; }
};

const Pkis& pkis() {
    static const Pkis instance = [] {
        Pkis out;
        out.good = *test::make_test_pki({.server_ips = {"127.0.0.1"}, .server_dns = {"localhost"}});
        out.wrong_name = *test::make_test_pki({.server_ips = {"10.9.9.9"}, .server_dns = {"not-entra.example"}});
        out.stranger = *test::make_test_pki();
        char path[] = "/tmp/podid-entra-client-XXXXXX";
        out.dir = ::mkdtemp(path);
        for (const auto& [name, pki] : {std::pair{"good", &out.good}, std::pair{"wrong_name", &out.wrong_name},
                                        std::pair{"stranger", &out.stranger}})
            std::ofstream(out.dir + "/" + name + ".crt") << pki->ca.cert_pem;
        return out;
    }();
    return instance;
}

class EntraClientTest : public ::testing::Test {
protected:
    static void TearDownTestSuite() { std::filesystem::remove_all(pkis().dir); }

    // The client reads SSL_CERT_FILE when it is created.
    std::unique_ptr<EntraClient> client(const std::string& authority, const char* trusted = "good",
                                        std::chrono::milliseconds timeout = 2s, bool keep_alive = true) {
        ::setenv("SSL_CERT_FILE", pkis().ca_file(trusted).c_str(), 1);
        EntraClientOptions options;
        options.authority_host = authority;
        options.request_timeout = timeout;
        options.keep_alive = keep_alive;
        options.now = [] { return kNow; };
        auto made = EntraClient::create(ioc.get_executor(), options);
        EXPECT_TRUE(made) << made.error().message;
        return made ? std::move(*made) : nullptr;
    }

    static std::string at(uint16_t port, const char* host = "127.0.0.1") {
        return "https://" + std::string(host) + ":" + std::to_string(port) + "/";
    }

    asio::io_context ioc;
};

TEST(EntraEndpoint, OneSlashBetweenAuthorityAndTenant) {
    struct Row {
        std::string authority, tenant;
        std::string host, host_header, target;
        uint16_t port;
    };
    const Row rows[] = {
        {"https://login.microsoftonline.com/", "t1", "login.microsoftonline.com", "login.microsoftonline.com",
         "/t1/oauth2/v2.0/token", 443},
        {"https://login.microsoftonline.com", "t1", "login.microsoftonline.com", "login.microsoftonline.com",
         "/t1/oauth2/v2.0/token", 443},
        {"https://login.microsoftonline.com///", "contoso.onmicrosoft.com", "login.microsoftonline.com",
         "login.microsoftonline.com", "/contoso.onmicrosoft.com/oauth2/v2.0/token", 443},
        {"https://login.microsoftonline.us:443/", kTenant, "login.microsoftonline.us", "login.microsoftonline.us",
         std::string("/") + kTenant + "/oauth2/v2.0/token", 443},
        {"https://sts.example:8443/base/path/", "t", "sts.example", "sts.example:8443",
         "/base/path/t/oauth2/v2.0/token", 8443},
        {"https://127.0.0.1:9443", "t", "127.0.0.1", "127.0.0.1:9443", "/t/oauth2/v2.0/token", 9443},
        {"https://[::1]:9443/", "t", "::1", "[::1]:9443", "/t/oauth2/v2.0/token", 9443},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.authority);
        auto endpoint = entra_endpoint(row.authority, row.tenant);
        ASSERT_TRUE(endpoint) << endpoint.error().message;
        EXPECT_EQ(endpoint->host, row.host);
        EXPECT_EQ(endpoint->port, row.port);
        EXPECT_EQ(endpoint->host_header, row.host_header);
        EXPECT_EQ(endpoint->target, row.target);
        EXPECT_EQ(endpoint->url, "https://" + row.host_header + row.target);
    }
    const std::pair<std::string, std::string> bad[] = {
        {"http://login.microsoftonline.com/", "t"},  // never without TLS
        {"login.microsoftonline.com", "t"},
        {"https:///", "t"},
        {"https://login.example:0/", "t"},
        {"https://login.example:65536/", "t"},
        {"https://login.example:x/", "t"},
        {"https://[::1/", "t"},
        {"https://user@login.example/", "t"},
        {"https://login.example/?q", "t"},
        {"https://login.example/", ""},
        {"https://login.example/", "a/b"},
        {"https://login.example/", "../x"},
        {"https://login.example/", "t?x"},
        {"https://login.example/", "t%2F"},
    };
    for (const auto& [authority, tenant] : bad)
        EXPECT_FALSE(entra_endpoint(authority, tenant)) << authority << " " << tenant;
}

TEST_F(EntraClientTest, CreateRefusesAnAuthorityWithoutTls) {
    EntraClientOptions options;
    options.authority_host = "http://127.0.0.1:1/";
    EXPECT_FALSE(EntraClient::create(ioc.get_executor(), options));
}

TEST_F(EntraClientTest, SendsExactlyTheTokenRequest) {
    HttpsServer server(ioc, pkis().good.server);
    auto entra = client(at(server.port()));
    ASSERT_TRUE(entra);
    const std::string endpoint_url = at(server.port()) + kTenant + "/oauth2/v2.0/token";

    // The test PKI's keys are EC; the assertion needs RSA.
    auto certificate = ClientCertificate::from_pem(rsa_identity_pem());
    ASSERT_TRUE(certificate) << certificate.error().message;

    const FormFields head = {{"grant_type", "client_credentials"},
                             {"client_id", kClient},
                             {"scope", "https://management.azure.com//.default"}};
    struct Row {
        const char* name;
        EntraCredential credential;
        FormFields tail;  // for the certificate: client_assertion checked apart
    };
    const Row rows[] = {
        {"client secret", ClientSecret{"s3cr3t+&= value"}, {{"client_secret", "s3cr3t+&= value"}}},
        {"federated token",
         ClientAssertion{kJwt},
         {{"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
          {"client_assertion", kJwt}}},
        {"certificate",
         std::make_shared<const ClientCertificate>(std::move(*certificate)),
         {{"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        server.seen.clear();
        auto result = fetch(ioc, *entra, token_request(row.credential, "https://management.azure.com/"));
        ASSERT_EQ(result.upstream.status, 200) << result.upstream.detail;
        ASSERT_EQ(server.seen.size(), 1u);
        const Request& request = server.seen[0].request;
        EXPECT_EQ(request.method(), http::verb::post);
        EXPECT_EQ(request.target(), std::string("/") + kTenant + "/oauth2/v2.0/token");
        EXPECT_EQ(request[http::field::host], "127.0.0.1:" + std::to_string(server.port()));
        EXPECT_EQ(request[http::field::content_type], "application/x-www-form-urlencoded");
        EXPECT_EQ(request[http::field::accept], "application/json");
        EXPECT_EQ(request["client-request-id"].size(), 36u);
        EXPECT_EQ(server.seen[0].server_name, "") << "no SNI for an address";

        FormFields fields = form_decode(request.body());
        FormFields expected = head;
        expected.insert(expected.end(), row.tail.begin(), row.tail.end());
        if (std::holds_alternative<CertificateCredential>(row.credential)) {
            ASSERT_EQ(fields.size(), 5u);
            ASSERT_EQ(fields.back().first, "client_assertion");
            const json claims = jwt_claims(fields.back().second);
            EXPECT_EQ(claims["aud"], endpoint_url);
            EXPECT_EQ(claims["iss"], kClient);
            EXPECT_EQ(claims["sub"], kClient);
            EXPECT_EQ(claims["nbf"], kNow);
            EXPECT_EQ(claims["exp"], kNow + 600);
            fields.pop_back();
        }
        EXPECT_EQ(fields, expected);
    }
}

TEST_F(EntraClientTest, SuccessIsATokenInImdsTerms) {
    HttpsServer server(ioc, pkis().good.server);
    auto entra = client(at(server.port()));
    ASSERT_TRUE(entra);
    struct Row {
        const char* name;
        std::string body;
    };
    const Row rows[] = {
        {"expires_in a number",
         R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":")" + kJwt + R"("})"},
        {"expires_in a string",
         R"({"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","access_token":")" + kJwt + R"("})"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        server.script = [&](const Request&) { return reply(200, row.body); };
        auto result = fetch(ioc, *entra, token_request(ClientSecret{"s"}));
        EXPECT_EQ(result.upstream.status, 200);
        EXPECT_TRUE(result.reason.empty());
        ASSERT_TRUE(result.upstream.token) << result.upstream.detail;
        EXPECT_EQ(result.upstream.token->access_token, kJwt);
        EXPECT_EQ(result.upstream.token->expires_on, kNow + 3599);
        EXPECT_EQ(result.upstream.token->not_before, kNow);
        EXPECT_EQ(result.upstream.token->resource, "https://vault.azure.net");
        EXPECT_EQ(result.upstream.token->client_id, kClient);
    }
}

TEST_F(EntraClientTest, EntraErrorsAreMappedAndNeverCarryTheSecret) {
    HttpsServer server(ioc, pkis().good.server);
    auto entra = client(at(server.port()));
    ASSERT_TRUE(entra);
    auto error_body = [](const char* error, int code, const std::string& text) {
        return json{{"error", error},
                    {"error_description", "AADSTS" + std::to_string(code) + ": " + text + "\r\nTrace ID: tr-1"},
                    {"error_codes", {code}},
                    {"trace_id", "tr-1"},
                    {"correlation_id", "co-1"}}
            .dump();
    };
    struct Row {
        unsigned status;
        std::string body;
        std::vector<std::pair<std::string, std::string>> headers;
        int pod_status;
        std::string_view reason;
        std::optional<std::chrono::seconds> retry_after;
    };
    const Row rows[] = {
        {400,
         error_body(
             "invalid_request", 70021,
             "No matching federated identity record found for presented assertion. Assertion Issuer: 'https://i'. "
             "Assertion Subject: 'system:serviceaccount:a:b'. Assertion Audience: 'api://AzureADTokenExchange'."),
         {},
         400,
         reason::federation_not_trusted,
         std::nullopt},
        {401,
         error_body("invalid_client", 7000215, "Invalid client secret provided."),
         {},
         401,
         reason::sp_secret_invalid,
         std::nullopt},
        {400,
         error_body("unauthorized_client", 700016, "Application with identifier 'x' was not found."),
         {},
         400,
         reason::entra_app_not_found,
         std::nullopt},
        {400,
         error_body("invalid_request", 90002, "Tenant 'x' not found."),
         {},
         400,
         reason::entra_tenant_not_found,
         std::nullopt},
        {401,
         error_body("invalid_client", 700024, "Client assertion is not within its valid time range."),
         {},
         401,
         reason::entra_assertion_invalid,
         std::nullopt},
        {429,
         error_body("temporarily_unavailable", 50196, "Slow down."),
         {{"Retry-After", "7"}},
         429,
         reason::entra_throttled,
         7s},
        {500,
         error_body("server_error", 50000, "There was an error issuing a token."),
         {},
         503,
         reason::entra_unavailable,
         std::nullopt},
        {503, "Service Unavailable", {{"Retry-After", "3"}}, 503, reason::entra_unavailable, 3s},
    };
    const std::string secret = "the-Secret-value-42";
    for (const auto& row : rows) {
        SCOPED_TRACE(std::string(row.reason) + " " + std::to_string(row.status));
        server.script = [&](const Request&) { return reply(row.status, row.body, row.headers); };
        auto result = fetch(ioc, *entra, token_request(ClientSecret{secret}));
        EXPECT_EQ(result.upstream.status, row.pod_status);
        EXPECT_EQ(result.reason, row.reason);
        EXPECT_FALSE(result.upstream.token);
        EXPECT_FALSE(result.upstream.timed_out);
        EXPECT_EQ(result.upstream.retry_after, row.retry_after);
        const json body = json::parse(result.upstream.body, nullptr, false);
        ASSERT_TRUE(body.is_object()) << result.upstream.body;
        EXPECT_TRUE(body["error"].is_string());
        EXPECT_TRUE(body["error_description"].is_string());
        EXPECT_EQ(result.upstream.body.find(secret), std::string::npos);
        EXPECT_EQ(result.upstream.detail.find(secret), std::string::npos);
        EXPECT_NE(result.upstream.detail.find("HTTP " + std::to_string(row.status)), std::string::npos)
            << result.upstream.detail;
    }
}

TEST_F(EntraClientTest, AServerThatNeverAnswersTimesOut) {
    struct Row {
        const char* name;
        bool handshake;
    };
    for (const Row row : {Row{"no TLS handshake", false}, Row{"no HTTP answer", true}}) {
        SCOPED_TRACE(row.name);
        HttpsServer server(ioc, pkis().good.server);
        server.handshake = row.handshake;
        server.script = [](const Request&) {
            Reply out;
            out.kind = Reply::hang;
            return out;
        };
        auto entra = client(at(server.port()), "good", 300ms);
        ASSERT_TRUE(entra);
        const auto started = std::chrono::steady_clock::now();
        auto result = fetch(ioc, *entra, token_request(ClientSecret{"s"}));
        const auto took = std::chrono::steady_clock::now() - started;
        EXPECT_EQ(result.upstream.status, 0);
        EXPECT_TRUE(result.upstream.timed_out);
        EXPECT_EQ(result.reason, reason::entra_timeout);
        EXPECT_NE(result.upstream.detail.find("300 ms"), std::string::npos) << result.upstream.detail;
        EXPECT_GE(took, 300ms);
        EXPECT_LT(took, 3s);
        EXPECT_EQ(entra->idle_connections(), 0u);
    }
}

TEST_F(EntraClientTest, RefusesACertificateForAnotherName) {
    struct Row {
        const char* host;
        std::string says;
    };
    for (const Row& row : {Row{"127.0.0.1", "IP address mismatch"}, Row{"localhost", "hostname mismatch"}}) {
        SCOPED_TRACE(row.host);
        HttpsServer server(ioc, pkis().wrong_name.server);
        auto entra = client(at(server.port(), row.host), "wrong_name");
        ASSERT_TRUE(entra);
        auto result = fetch(ioc, *entra, token_request(ClientSecret{"never-sent"}));
        EXPECT_EQ(result.upstream.status, 0);
        EXPECT_FALSE(result.upstream.timed_out);
        EXPECT_EQ(result.reason, reason::entra_tls_failed);
        EXPECT_NE(result.upstream.detail.find(row.says), std::string::npos) << result.upstream.detail;
        EXPECT_TRUE(server.seen.empty());
    }
}

TEST_F(EntraClientTest, RefusesACertificateFromAnUntrustedCa) {
    HttpsServer server(ioc, pkis().good.server);
    auto entra = client(at(server.port()), "stranger");
    ASSERT_TRUE(entra);
    auto result = fetch(ioc, *entra, token_request(ClientSecret{"never-sent"}));
    EXPECT_EQ(result.upstream.status, 0);
    EXPECT_EQ(result.reason, reason::entra_tls_failed);
    EXPECT_NE(result.upstream.detail.find("certificate is refused"), std::string::npos) << result.upstream.detail;
    EXPECT_TRUE(server.seen.empty());
}

TEST_F(EntraClientTest, SendsTheHostNameAsSni) {
    HttpsServer server(ioc, pkis().good.server);
    auto entra = client(at(server.port(), "localhost"));
    ASSERT_TRUE(entra);
    auto result = fetch(ioc, *entra, token_request(ClientSecret{"s"}));
    ASSERT_EQ(result.upstream.status, 200) << result.upstream.detail;
    ASSERT_EQ(server.seen.size(), 1u);
    EXPECT_EQ(server.seen[0].server_name, "localhost");
    EXPECT_EQ(server.seen[0].request[http::field::host], "localhost:" + std::to_string(server.port()));
}

TEST_F(EntraClientTest, ReusesOneKeptAliveConnection) {
    HttpsServer server(ioc, pkis().good.server);
    auto entra = client(at(server.port()));
    ASSERT_TRUE(entra);
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(fetch(ioc, *entra, token_request(ClientSecret{"s"})).upstream.status, 200);
    EXPECT_EQ(server.accepted, 1);
    EXPECT_EQ(entra->connections_opened(), 1u);
    EXPECT_EQ(entra->idle_connections(), 1u);
}

TEST_F(EntraClientTest, SendsAgainOnAFreshConnectionWhenTheKeptOneWasClosed) {
    HttpsServer server(ioc, pkis().good.server);
    server.script = [](const Request&) {
        Reply out;
        out.kind = Reply::respond_then_close;
        return out;
    };
    auto entra = client(at(server.port()));
    ASSERT_TRUE(entra);
    ASSERT_EQ(fetch(ioc, *entra, token_request(ClientSecret{"s"})).upstream.status, 200);
    ioc.run_for(20ms);  // let the server's close arrive
    auto second = fetch(ioc, *entra, token_request(ClientSecret{"s"}));
    EXPECT_EQ(second.upstream.status, 200) << second.upstream.detail;
    EXPECT_EQ(server.accepted, 2);
    EXPECT_EQ(server.seen.size(), 2u);
}

TEST_F(EntraClientTest, WithoutKeepAliveEveryRequestHasItsConnection) {
    HttpsServer server(ioc, pkis().good.server);
    auto entra = client(at(server.port()), "good", 2s, /*keep_alive=*/false);
    ASSERT_TRUE(entra);
    for (int i = 0; i < 2; ++i)
        ASSERT_EQ(fetch(ioc, *entra, token_request(ClientSecret{"s"})).upstream.status, 200);
    EXPECT_EQ(server.accepted, 2);
    EXPECT_EQ(server.seen[0].request[http::field::connection], "close");
    EXPECT_EQ(entra->idle_connections(), 0u);
}

TEST_F(EntraClientTest, NothingListeningIsUnreachable) {
    uint16_t port = 0;
    {
        tcp::acceptor probe(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = probe.local_endpoint().port();
    }
    auto entra = client(at(port));
    ASSERT_TRUE(entra);
    auto result = fetch(ioc, *entra, token_request(ClientSecret{"s"}));
    EXPECT_EQ(result.upstream.status, 0);
    EXPECT_FALSE(result.upstream.timed_out);
    EXPECT_EQ(result.reason, reason::entra_unreachable);
    EXPECT_NE(result.upstream.detail.find("connecting"), std::string::npos) << result.upstream.detail;
}

TEST_F(EntraClientTest, RequestsThatCannotBeMadeAreNotSent) {
    HttpsServer server(ioc, pkis().good.server);
    auto entra = client(at(server.port()));
    ASSERT_TRUE(entra);
    struct Row {
        const char* name;
        EntraTokenRequest request;
        int status;
    };
    EntraTokenRequest bad_tenant = token_request(ClientSecret{"s"});
    bad_tenant.info.tenant = "../other";
    EntraTokenRequest no_client = token_request(ClientSecret{"s"});
    no_client.info.client_id.clear();
    const Row rows[] = {
        {"tenant with a slash", bad_tenant, 400},
        {"no client id", no_client, 400},
        {"no resource", token_request(ClientSecret{"s"}, ""), 400},
        {"empty secret", token_request(ClientSecret{""}), 500},
        {"empty federated token", token_request(ClientAssertion{""}), 500},
        {"no certificate", token_request(CertificateCredential{}), 500},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        auto result = fetch(ioc, *entra, row.request);
        EXPECT_EQ(result.upstream.status, row.status);
        EXPECT_EQ(result.reason, reason::entra_request_invalid);
        EXPECT_TRUE(json::parse(result.upstream.body, nullptr, false).is_object());
    }
    EXPECT_EQ(entra->connections_opened(), 0u);
    EXPECT_EQ(server.accepted, 0);
}

}  // namespace
}  // namespace podid::entra
