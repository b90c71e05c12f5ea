// The Entra ID token-endpoint emulator over real loopback HTTPS, in-process: one row per success and error path
// of POST /{tenant}/oauth2/v2.0/token (client secret, certificate assertion RS256/PS256 with x5t#S256 or x5t,
// federated tokens from a hosted issuer on a second emulator with its own CA), the discovery endpoints, the
// JWKS cache, faults, counters and the admin API. Client assertions are signed here with OpenSSL EVP directly,
// not with the emulator's own signer, so a mistake shared by both sides cannot hide.
#include <gtest/gtest.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "entra-emulator/options.h"
#include "entra-emulator/pki.h"
#include "entra-emulator/server.h"
#include "imds-emulator/base64url.h"
#include "imds-emulator/http_client.h"
#include "imds-emulator/jwt.h"

namespace podid::entra_emulator {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using namespace std::chrono_literals;
using emulator::base64url_decode;
using emulator::base64url_encode;

constexpr const char* kTenant = "4d2f7c3a-1b6e-4f0a-9c8d-7e5b3a2f1c0d";
constexpr const char* kTenantName = "contoso.onmicrosoft.com";
constexpr const char* kSecretApp = "a0000000-0000-4000-8000-000000000001";
constexpr const char* kCertApp = "a0000000-0000-4000-8000-000000000002";
constexpr const char* kThumbApp = "a0000000-0000-4000-8000-000000000003";
constexpr const char* kFedApp = "a0000000-0000-4000-8000-000000000004";
constexpr const char* kV2App = "a0000000-0000-4000-8000-000000000005";
constexpr const char* kSecret = "Zx8Q~s3cr3t.value_with~tilde";
constexpr const char* kResource = "https://vault.azure.net";
constexpr const char* kSubject = "system:serviceaccount:ns1:sa1";
constexpr const char* kExchange = "api://AzureADTokenExchange";
constexpr const char* kJwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

template <class T>
T must(Result<T> r, const char* what) {
    if (!r)
        throw std::runtime_error(std::string(what) + ": " + r.error().message);
    return std::move(*r);
}

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// ---- A TLS client (Boost.Beast over OpenSSL) that trusts only the emulator's CA and checks the name. ----

struct Reply {
    unsigned status = 0;
    std::string body;
    nlohmann::json json;             // null when the body is not JSON
    nlohmann::ordered_json ordered;  // the same, keys in the order sent
    std::map<std::string, std::string> headers;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

Reply https_call(uint16_t port, const std::string& ca_pem, http::verb method, const std::string& target,
                 const std::string& body = "", const HeaderList& headers = {},
                 const std::string& server_name = "127.0.0.1") {
    asio::io_context ioc;
    ssl::context tls(ssl::context::tls_client);
    tls.add_certificate_authority(asio::buffer(ca_pem));
    tls.set_verify_mode(ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
    boost::system::error_code not_ip;
    asio::ip::make_address(server_name, not_ip);
    if (not_ip) {
        SSL_set_tlsext_host_name(stream.native_handle(), server_name.c_str());
        SSL_set1_host(stream.native_handle(), server_name.c_str());
    } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream.native_handle()), server_name.c_str());
    }
    beast::get_lowest_layer(stream).connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    stream.handshake(ssl::stream_base::client);

    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, server_name + ":" + std::to_string(port));
    for (const auto& [name, value] : headers)
        req.set(name, value);
    if (method == http::verb::post) {
        req.set(http::field::content_type, "application/x-www-form-urlencoded");
        req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);

    Reply reply;
    reply.status = res.result_int();
    reply.body = res.body();
    reply.json = nlohmann::json::parse(reply.body, nullptr, false);
    if (reply.json.is_discarded())
        reply.json = nullptr;
    else
        reply.ordered = nlohmann::ordered_json::parse(reply.body);
    for (const auto& field : res)
        reply.headers[std::string(field.name_string())] = std::string(field.value());
    return reply;
}

std::string url_encode(const std::string& text) {
    static const char* kHex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xf]);
        }
    }
    return out;
}

std::string base64_std(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string form(const HeaderList& fields) {
    std::string out;
    for (const auto& [name, value] : fields)
        out += (out.empty() ? "" : "&") + url_encode(name) + "=" + url_encode(value);
    return out;
}

// ---- Client assertions, signed independently of the emulator. ----

struct Thumbprints {
    std::string sha1;    // raw
    std::string sha256;  // raw
};

Thumbprints thumbprints_of(const std::string& cert_pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())),
                                                  BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                                     X509_free);
    if (!cert)
        throw std::runtime_error("test certificate does not parse");
    unsigned char s1[EVP_MAX_MD_SIZE], s256[EVP_MAX_MD_SIZE];
    unsigned int n1 = 0, n256 = 0;
    X509_digest(cert.get(), EVP_sha1(), s1, &n1);
    X509_digest(cert.get(), EVP_sha256(), s256, &n256);
    return {std::string(reinterpret_cast<char*>(s1), n1), std::string(reinterpret_cast<char*>(s256), n256)};
}

std::string der_base64_of(const std::string& cert_pem) {
    // The PEM body is the standard base64 of the DER: what an x5c entry holds.
    std::string out;
    bool inside = false;
    size_t pos = 0;
    while (pos < cert_pem.size()) {
        size_t end = cert_pem.find('\n', pos);
        std::string line = cert_pem.substr(pos, end - pos);
        pos = end == std::string::npos ? cert_pem.size() : end + 1;
        if (line.rfind("-----BEGIN", 0) == 0)
            inside = true;
        else if (line.rfind("-----END", 0) == 0)
            break;
        else if (inside)
            out += line;
    }
    return out;
}

std::string evp_sign(const std::string& key_pem, const nlohmann::json& header, const nlohmann::json& claims) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())),
                                                  BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;
    if (!key || EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key.get()) != 1)
        throw std::runtime_error("cannot start signing");
    if (header.value("alg", "") == "PS256") {
        // RFC 7518 §3.5: MGF1 with SHA-256 and a salt as long as the hash (32 bytes).
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256());
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
    }
    size_t len = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size());
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data, input.size()) != 1)
        throw std::runtime_error("signing failed");
    sig.resize(len);
    return input + "." + base64url_encode(sig);
}

enum class Thumb { s256, sha1, sha1_padded, none };

struct AssertionSpec {
    std::string alg = "RS256";
    Thumb thumb = Thumb::s256;
    std::string iss = kCertApp;
    std::string sub = kCertApp;
    std::string aud;  // empty: the emulator's v2.0 token endpoint for kTenant
    int64_t nbf_offset = -10;
    int64_t exp_offset = 600;
    bool with_nbf = true;
    bool with_jti = true;
    bool float_times = false;  // as MSAL Python sends them
    bool with_x5c = false;
};

// ---- The world: the emulator under test, and two issuer hosts (one trusted, one not). ----

struct World {
    std::unique_ptr<EntraEmulator> issuer_host;  // hosts "cluster1"; its CA is trusted by emu
    std::unique_ptr<EntraEmulator> rogue_host;   // hosts "rogue"; its CA is not trusted
    std::unique_ptr<EntraEmulator> emu;
    PemPair cert, other_cert, thumb_cert;
    std::string issuer_url, rogue_url;
};

// Made on first use and kept for the whole run (three RSA keys and two PKIs take a moment); destroyed at exit,
// which stops the servers.
World& world() {
    static std::unique_ptr<World> w = [] {
        auto w = std::make_unique<World>();
        EmulatorOptions host_options;
        host_options.trust_system_cas = false;
        w->issuer_host = std::make_unique<EntraEmulator>(host_options);
        w->rogue_host = std::make_unique<EntraEmulator>(host_options);
        for (auto* host : {w->issuer_host.get(), w->rogue_host.get()}) {
            auto started = host->start();
            if (!started)
                throw std::runtime_error("issuer host: " + started.error().message);
        }
        w->issuer_url = must(w->issuer_host->add_issuer("cluster1"), "issuer");
        w->rogue_url = must(w->rogue_host->add_issuer("rogue"), "rogue issuer");

        EmulatorOptions options;
        options.admin_port = 0;
        options.trust_system_cas = false;
        options.trust_own_ca = false;
        options.trust_ca_pems = {w->issuer_host->ca_pem()};
        w->emu = std::make_unique<EntraEmulator>(options);
        auto started = w->emu->start();
        if (!started)
            throw std::runtime_error("emulator: " + started.error().message);

        w->cert = must(make_client_certificate("podid-test-app"), "client cert");
        w->other_cert = must(make_client_certificate("podid-test-other"), "other cert");
        w->thumb_cert = must(make_client_certificate("podid-test-thumb"), "thumb cert");
        Directory& dir = w->emu->directory();
        dir.add_tenant({kTenant, {kTenantName}});
        auto add = [&](const nlohmann::json& app) {
            auto parsed = must(parse_app(app), "app");
            auto r = dir.add_app(parsed);
            if (!r)
                throw std::runtime_error(r.error().message);
        };
        add({{"tenant", kTenant}, {"client_id", kSecretApp}, {"secrets", {"an-older-secret", kSecret}}});
        add({{"tenant", kTenant}, {"client_id", kCertApp}, {"certificates", {w->cert.cert_pem}}});
        add({{"tenant", kTenant},
             {"client_id", kThumbApp},
             {"certificate_thumbprints", {base64url_encode(thumbprints_of(w->thumb_cert.cert_pem).sha256)}}});
        add({{"tenant", kTenant},
             {"client_id", kFedApp},
             {"federated_credentials",
              {{{"name", "cluster1"}, {"issuer", w->issuer_url}, {"subject", kSubject}, {"audiences", {kExchange}}},
               {{"name", "rogue"}, {"issuer", w->rogue_url}, {"subject", kSubject}, {"audiences", {kExchange}}}}}});
        add({{"tenant", kTenantName}, {"client_id", kV2App}, {"secrets", {kSecret}}, {"access_token_version", 2}});
        return w;
    }();
    return *w;
}

std::string token_path(const std::string& tenant = kTenant) { return "/" + tenant + "/oauth2/v2.0/token"; }

Reply post_token(const std::string& body, const std::string& tenant = kTenant, const HeaderList& headers = {}) {
    World& w = world();
    return https_call(w.emu->port(), w.emu->ca_pem(), http::verb::post, token_path(tenant), body, headers);
}

Reply get_path(const std::string& target, const std::string& server_name = "127.0.0.1") {
    World& w = world();
    return https_call(w.emu->port(), w.emu->ca_pem(), http::verb::get, target, "", {}, server_name);
}

std::string certificate_assertion(const AssertionSpec& spec, const PemPair& signer, const PemPair& named) {
    World& w = world();
    Thumbprints tp = thumbprints_of(named.cert_pem);
    nlohmann::json header = {{"alg", spec.alg}, {"typ", "JWT"}};
    if (spec.thumb == Thumb::s256)
        header["x5t#S256"] = base64url_encode(tp.sha256);
    if (spec.thumb == Thumb::sha1)
        header["x5t"] = base64url_encode(tp.sha1);
    if (spec.thumb == Thumb::sha1_padded)
        header["x5t"] = base64url_encode(tp.sha1) + "=";  // Python's urlsafe_b64encode keeps the padding
    if (spec.with_x5c)
        header["x5c"] = {der_base64_of(named.cert_pem)};
    int64_t now = unix_now();
    nlohmann::json claims = {
        {"iss", spec.iss}, {"sub", spec.sub}, {"aud", spec.aud.empty() ? w.emu->token_endpoint(kTenant) : spec.aud}};
    if (spec.float_times) {
        claims["exp"] = static_cast<double>(now + spec.exp_offset) + 0.25;
        claims["iat"] = static_cast<double>(now) + 0.25;
    } else {
        claims["exp"] = now + spec.exp_offset;
        claims["iat"] = now;
    }
    if (spec.with_nbf)
        claims["nbf"] = now + spec.nbf_offset;
    if (spec.with_jti)
        claims["jti"] = "jti-" + std::to_string(now) + "-" + spec.alg;
    return evp_sign(signer.key_pem, header, claims);
}

HeaderList base_fields(const std::string& client_id, const std::string& scope = std::string(kResource) + "/.default") {
    return {{"grant_type", "client_credentials"}, {"client_id", client_id}, {"scope", scope}};
}

std::string with_secret(const std::string& client_id, const std::string& secret) {
    HeaderList f = base_fields(client_id);
    f.emplace_back("client_secret", secret);
    return form(f);
}

std::string with_assertion(const std::string& client_id, const std::string& assertion,
                           const std::string& type = kJwtBearer) {
    HeaderList f = base_fields(client_id);
    f.emplace_back("client_assertion_type", type);
    f.emplace_back("client_assertion", assertion);
    return form(f);
}

std::string cert_body(const AssertionSpec& spec) {
    World& w = world();
    return with_assertion(kCertApp, certificate_assertion(spec, w.cert, w.cert));
}

std::string federated_token(const IssuerTokenSpec& spec = {}) {
    IssuerTokenSpec s = spec;
    if (s.subject == IssuerTokenSpec{}.subject)
        s.subject = kSubject;
    return must(world().issuer_host->mint_issuer_token("cluster1", s), "mint");
}

// The error body Entra sends, field by field.
void expect_entra_error(const Reply& reply, unsigned status, const std::string& error, int code,
                        const std::string& description_part) {
    ASSERT_TRUE(reply.json.is_object()) << reply.body;
    EXPECT_EQ(reply.status, status) << reply.body;
    EXPECT_EQ(reply.json.value("error", ""), error) << reply.body;
    ASSERT_TRUE(reply.json.contains("error_codes")) << reply.body;
    EXPECT_EQ(reply.json["error_codes"], nlohmann::json::array({code}));
    std::string description = reply.json.value("error_description", "");
    EXPECT_EQ(description.rfind("AADSTS" + std::to_string(code) + ": ", 0), 0u) << description;
    EXPECT_NE(description.find(description_part), std::string::npos) << description;
    std::string trace = reply.json.value("trace_id", "");
    std::string correlation = reply.json.value("correlation_id", "");
    std::string timestamp = reply.json.value("timestamp", "");
    EXPECT_EQ(trace.size(), 36u);
    EXPECT_EQ(correlation.size(), 36u);
    EXPECT_NE(description.find(" Trace ID: " + trace + " Correlation ID: " + correlation + " Timestamp: " + timestamp),
              std::string::npos)
        << description;
    EXPECT_EQ(timestamp.size(), 20u) << timestamp;  // "2024-01-14 20:29:53Z"
    EXPECT_EQ(reply.json.value("error_uri", ""),
              "https://login.microsoftonline.com/error?code=" + std::to_string(code));
    std::vector<std::string> keys;
    for (auto it = reply.ordered.begin(); it != reply.ordered.end(); ++it)
        keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"error", "error_description", "error_codes", "timestamp", "trace_id",
                                              "correlation_id", "error_uri"}));
}

// The success body and the access token's claims, checked against the keys endpoint's JWKS.
void expect_token(const Reply& reply, const std::string& client_id, int version, const std::string& acr) {
    ASSERT_EQ(reply.status, 200u) << reply.body;
    ASSERT_TRUE(reply.json.is_object()) << reply.body;
    EXPECT_EQ(reply.json["token_type"], "Bearer");
    EXPECT_TRUE(reply.json["expires_in"].is_number_integer());
    EXPECT_EQ(reply.json["expires_in"], 3599);
    EXPECT_EQ(reply.json["ext_expires_in"], 3599);
    std::vector<std::string> keys;
    for (auto it = reply.ordered.begin(); it != reply.ordered.end(); ++it)
        keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"token_type", "expires_in", "ext_expires_in", "access_token"}));

    Reply jwks = get_path("/" + std::string(kTenant) + "/discovery/v2.0/keys");
    ASSERT_EQ(jwks.status, 200u);
    auto verified = emulator::verify_jwt(reply.json["access_token"].get<std::string>(), jwks.json);
    ASSERT_TRUE(verified) << verified.error().message;
    const nlohmann::json& c = verified->claims;
    EXPECT_EQ(c["aud"], kResource);
    EXPECT_EQ(c["tid"], kTenant);
    EXPECT_EQ(c["exp"].get<int64_t>() - c["iat"].get<int64_t>(), 3599);
    EXPECT_EQ(c["nbf"], c["iat"]);
    EXPECT_EQ(c["oid"].get<std::string>().size(), 36u);
    EXPECT_EQ(c["sub"], c["oid"]);
    EXPECT_EQ(c["idtyp"], "app");
    if (version == 2) {
        EXPECT_EQ(c["azp"], client_id);
        EXPECT_EQ(c["azpacr"], acr);
        EXPECT_EQ(c["ver"], "2.0");
        EXPECT_EQ(c["iss"], "https://login.microsoftonline.com/" + std::string(kTenant) + "/v2.0");
    } else {
        EXPECT_EQ(c["appid"], client_id);
        EXPECT_EQ(c["appidacr"], acr);
        EXPECT_EQ(c["ver"], "1.0");
        EXPECT_EQ(c["iss"], "https://sts.windows.net/" + std::string(kTenant) + "/");
    }
}

// ---- The token endpoint, one row per path. ----

struct TokenRow {
    const char* name;
    std::function<std::string()> body;
    unsigned status;
    int code;            // 0: success
    std::string error;   // OAuth error, or on success the client id
    std::string expect;  // a part of the error description, or on success the acr ("1" secret, "2" otherwise)
    std::string credential;
    std::string tenant = kTenant;
    HeaderList headers = {};
    int version = 1;
};

std::string swap_signature(const std::string& token, const std::string& donor) {
    return token.substr(0, token.rfind('.')) + donor.substr(donor.rfind('.'));
}

std::vector<TokenRow> token_rows() {
    auto cert = [](AssertionSpec spec) { return [spec] { return cert_body(spec); }; };
    AssertionSpec s;
    std::vector<TokenRow> rows = {
        // Client secrets.
        {"secret", [] { return with_secret(kSecretApp, kSecret); }, 200, 0, kSecretApp, "1", "secret"},
        {"secret, tenant by domain name", [] { return with_secret(kSecretApp, kSecret); }, 200, 0, kSecretApp, "1",
         "secret", kTenantName},
        {"secret, tenant id in upper case", [] { return with_secret(kSecretApp, kSecret); }, 200, 0, kSecretApp, "1",
         "secret", "4D2F7C3A-1B6E-4F0A-9C8D-7E5B3A2F1C0D"},
        {"secret, HTTP Basic",
         [] { return form(base_fields(kSecretApp)); },
         200,
         0,
         kSecretApp,
         "1",
         "secret",
         kTenant,
         {{"Authorization", "Basic " + base64_std(std::string(kSecretApp) + ":" + kSecret)}}},
        {"secret, v2 access token",
         [] { return with_secret(kV2App, kSecret); },
         200,
         0,
         kV2App,
         "1",
         "secret",
         kTenant,
         {},
         2},
        {"wrong secret", [] { return with_secret(kSecretApp, "not-the-secret"); }, 401, 7000215, "invalid_client",
         "Invalid client secret provided", "secret"},
        {"secret of another length", [] { return with_secret(kSecretApp, "x"); }, 401, 7000215, "invalid_client",
         "for a secret added to app '" + std::string(kSecretApp) + "'", "secret"},
        {"no credential", [] { return form(base_fields(kSecretApp)); }, 401, 7000218, "invalid_client",
         "'client_assertion' or 'client_secret'", "none"},
        {"unknown client id", [] { return with_secret("b0000000-0000-4000-8000-0000000000ff", kSecret); }, 400, 700016,
         "unauthorized_client",
         "Application with identifier 'b0000000-0000-4000-8000-0000000000ff' was not "
         "found in the directory '4d2f7c3a-1b6e-4f0a-9c8d-7e5b3a2f1c0d'",
         "none"},
        {"unknown tenant", [] { return with_secret(kSecretApp, kSecret); }, 400, 90002, "invalid_request",
         "Tenant 'fabrikam.onmicrosoft.com' not found", "none", "fabrikam.onmicrosoft.com"},
        // Request shape.
        {"scope without /.default",
         [] { return form(base_fields(kSecretApp, "https://vault.azure.net/secrets.read")) + "&client_secret=x"; }, 400,
         1002012, "invalid_scope", "Client credential flows must have a scope value with /.default", "none"},
        {"two resources in scope",
         [] { return form(base_fields(kSecretApp, "https://a.example/.default https://b.example/.default")); }, 400,
         70011, "invalid_scope", "'scope' is not valid", "none"},
        {"no scope",
         [] {
             return form({{"grant_type", "client_credentials"}, {"client_id", kSecretApp}});
         },
         400, 900144, "invalid_request", "must contain the following parameter: 'scope'", "none"},
        {"no grant_type",
         [] {
             return form({{"client_id", kSecretApp}, {"client_secret", kSecret}});
         },
         400, 900144, "invalid_request", "'grant_type'", "none"},
        {"password grant",
         [] {
             return form({{"grant_type", "password"}, {"client_id", kSecretApp}});
         },
         400, 70003, "unsupported_grant_type", "unsupported grant type 'password'", "none"},
        {"assertion type wrong",
         [] { return with_assertion(kCertApp, "a.b.c", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"); },
         400, 90014, "invalid_request", "client_assertion_type", "none"},
        {"assertion not a JWT", [] { return with_assertion(kCertApp, "not-a-jwt"); }, 401, 50027, "invalid_client",
         "JWT token is invalid or malformed", "none"},
        // Certificate credentials.
        {"certificate RS256 x5t#S256", cert(s), 200, 0, kCertApp, "2", "certificate"},
        {"certificate PS256", cert([&] {
             auto a = s;
             a.alg = "PS256";
             return a;
         }()),
         200, 0, kCertApp, "2", "certificate"},
        {"certificate legacy x5t (SHA-1)", cert([&] {
             auto a = s;
             a.thumb = Thumb::sha1;
             return a;
         }()),
         200, 0, kCertApp, "2", "certificate"},
        {"certificate x5t padded, float times, no nbf (MSAL Python)", cert([&] {
             auto a = s;
             a.thumb = Thumb::sha1_padded;
             a.float_times = true;
             a.with_nbf = false;
             return a;
         }()),
         200, 0, kCertApp, "2", "certificate"},
        {"certificate aud = v1 token endpoint", cert([&] {
             auto a = s;
             a.aud = world().emu->origin() + "/" + kTenant + "/oauth2/token";
             return a;
         }()),
         200, 0, kCertApp, "2", "certificate"},
        {"certificate signed by another key",
         [] {
             AssertionSpec a;
             return with_assertion(kCertApp, certificate_assertion(a, world().other_cert, world().cert));
         },
         401, 700027, "invalid_client", "The provided signature value did not match the expected signature value",
         "certificate"},
        {"certificate not registered",
         [] {
             AssertionSpec a;
             return with_assertion(kCertApp, certificate_assertion(a, world().other_cert, world().other_cert));
         },
         401, 700027, "invalid_client", "[Reason - The key was not found., Thumbprint of key used by client: '",
         "certificate"},
        {"certificate without thumbprint", cert([&] {
             auto a = s;
             a.thumb = Thumb::none;
             return a;
         }()),
         401, 50027, "invalid_client", "No certificate thumbprint specified in token header", "certificate"},
        {"certificate HS256", cert([&] {
             auto a = s;
             a.alg = "HS256";
             return a;
         }()),
         401, 5002738, "invalid_client", "'HS256' is not a supported signature algorithm", "certificate"},
        {"certificate wrong aud", cert([&] {
             auto a = s;
             a.aud = "https://login.microsoftonline.com/common/oauth2/v2.0/token";
             return a;
         }()),
         401, 700023, "invalid_client", "audience claim does not match Realm issuer", "certificate"},
        {"certificate sub is another app", cert([&] {
             auto a = s;
             a.sub = kSecretApp;
             return a;
         }()),
         401, 700021, "invalid_client", "doesn't match 'client_id' parameter", "certificate"},
        {"certificate expired", cert([&] {
             auto a = s;
             a.exp_offset = -600;
             a.nbf_offset = -1200;
             return a;
         }()),
         401, 700024, "invalid_client",
         "Client assertion is not within its valid time range. Current time: ", "certificate"},
        {"certificate not yet valid", cert([&] {
             auto a = s;
             a.nbf_offset = 900;
             a.exp_offset = 1500;
             return a;
         }()),
         401, 700024, "invalid_client", "assertion valid from ", "certificate"},
        {"certificate without jti", cert([&] {
             auto a = s;
             a.with_jti = false;
             return a;
         }()),
         401, 50027, "invalid_client", "'jti'", "certificate"},
        {"thumbprint-only credential, certificate in x5c",
         [] {
             AssertionSpec a;
             a.iss = a.sub = kThumbApp;
             a.with_x5c = true;
             return with_assertion(kThumbApp, certificate_assertion(a, world().thumb_cert, world().thumb_cert));
         },
         200, 0, kThumbApp, "2", "certificate"},
        {"thumbprint-only credential, no x5c",
         [] {
             AssertionSpec a;
             a.iss = a.sub = kThumbApp;
             return with_assertion(kThumbApp, certificate_assertion(a, world().thumb_cert, world().thumb_cert));
         },
         401, 700027, "invalid_client", "The key was not found", "certificate"},
        // Federated credentials.
        {"federated", [] { return with_assertion(kFedApp, federated_token()); }, 200, 0, kFedApp, "2", "federated"},
        {"federated, other subject",
         [] {
             IssuerTokenSpec t;
             t.subject = "system:serviceaccount:ns1:other";
             return with_assertion(kFedApp, federated_token(t));
         },
         400, 70021, "invalid_request", "", "federated"},
        {"federated, other audience",
         [] {
             IssuerTokenSpec t;
             t.audiences = {"api://SomethingElse"};
             return with_assertion(kFedApp, federated_token(t));
         },
         400, 70021, "invalid_request", "Assertion Audience: 'api://SomethingElse'.", "federated"},
        {"federated, expired",
         [] {
             IssuerTokenSpec t;
             t.issued_offset = -7200;
             return with_assertion(kFedApp, federated_token(t));
         },
         401, 700024, "invalid_client", "not within its valid time range", "federated"},
        {"federated, lifetime over a day and an hour",
         [] {
             IssuerTokenSpec t;
             t.lifetime = 26 * 3600;
             return with_assertion(kFedApp, federated_token(t));
         },
         400, 70023, "invalid_request", "lifetime of less than or equal to 1.01:00:00", "federated"},
        {"federated, no iat",
         [] {
             IssuerTokenSpec t;
             t.with_iat = false;
             return with_assertion(kFedApp, federated_token(t));
         },
         400, 70023, "invalid_request", "Token issued at 0.", "federated"},
        {"federated, signed by a key the issuer does not publish",
         [] {
             IssuerTokenSpec t;
             t.subject = kSubject;
             t.extra_claims = {{"iss", world().issuer_url}};
             return with_assertion(kFedApp, must(world().rogue_host->mint_issuer_token("rogue", t), "mint"));
         },
         401, 7000272, "invalid_client", "could not be found in the metadata of identity provider", "federated"},
        {"federated, signature tampered",
         [] {
             IssuerTokenSpec other;
             other.lifetime = 1800;
             return with_assertion(kFedApp, swap_signature(federated_token(), federated_token(other)));
         },
         401, 50013, "invalid_client", "Assertion failed signature validation", "federated"},
        {"federated, issuer CA not trusted",
         [] {
             IssuerTokenSpec t;
             t.subject = kSubject;
             return with_assertion(kFedApp, must(world().rogue_host->mint_issuer_token("rogue", t), "mint"));
         },
         400, 50166, "invalid_request", "Request to External OIDC endpoint failed.", "federated"},
    };
    return rows;
}

TEST(EntraTokenEndpoint, EveryPathAnswersLikeEntra) {
    for (const auto& row : token_rows()) {
        SCOPED_TRACE(row.name);
        std::string body = row.body();
        world().emu->reset_stats();
        Reply reply = post_token(body, row.tenant, row.headers);
        if (row.code == 0)
            expect_token(reply, row.error, row.version, row.expect);
        else
            expect_entra_error(reply, row.status, row.error, row.code, row.expect);
        StatsSnapshot stats = world().emu->stats();
        EXPECT_EQ(stats.token_calls, 1u);
        EXPECT_EQ(stats.by_credential[row.credential], 1u);
        EXPECT_EQ(stats.outcome(row.code == 0 ? "success" : "AADSTS" + std::to_string(row.code)), 1u);
    }
}

TEST(EntraTokenEndpoint, NoMatchingFederatedRecordNamesIssuerSubjectAudience) {
    IssuerTokenSpec t;
    t.subject = "system:serviceaccount:ns2:sa2";
    Reply reply = post_token(with_assertion(kFedApp, federated_token(t)));
    expect_entra_error(reply, 400, "invalid_request", 70021,
                       "No matching federated identity record found for presented assertion. Assertion Issuer: '" +
                           world().issuer_url +
                           "'. Assertion Subject: 'system:serviceaccount:ns2:sa2'. Assertion Audience: "
                           "'api://AzureADTokenExchange'.");
}

TEST(EntraTokenEndpoint, GetIsRefusedAndCorrelationIdIsEchoed) {
    World& w = world();
    Reply get = https_call(w.emu->port(), w.emu->ca_pem(), http::verb::get, token_path());
    expect_entra_error(get, 400, "invalid_request", 900561, "Received a GET request.");

    const std::string crid = "0f0e0d0c-0b0a-4908-8706-050403020100";
    Reply reply = post_token(with_secret(kSecretApp, "wrong"), kTenant, {{"client-request-id", crid}});
    EXPECT_EQ(reply.json.value("correlation_id", ""), crid);
    EXPECT_EQ(reply.headers["client-request-id"], crid);
    EXPECT_EQ(reply.headers["x-ms-request-id"], reply.json.value("trace_id", ""));
}

// ---- Discovery. ----

TEST(EntraDiscovery, OpenIdConfigurationAsMsalReadsIt) {
    World& w = world();
    std::string origin = w.emu->origin();
    for (const std::string& segment : {std::string(kTenant), std::string(kTenantName)}) {
        SCOPED_TRACE(segment);
        Reply r = get_path("/" + segment + "/v2.0/.well-known/openid-configuration");
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.json["token_endpoint"], origin + "/" + kTenant + "/oauth2/v2.0/token");
        EXPECT_EQ(r.json["authorization_endpoint"], origin + "/" + kTenant + "/oauth2/v2.0/authorize");
        EXPECT_EQ(r.json["jwks_uri"], origin + "/" + kTenant + "/discovery/v2.0/keys");
        EXPECT_EQ(r.json["issuer"], origin + "/" + kTenant + "/v2.0");
        EXPECT_EQ(r.json["token_endpoint_auth_methods_supported"],
                  nlohmann::json({"client_secret_post", "private_key_jwt", "client_secret_basic"}));
    }
    Reply common = get_path("/common/v2.0/.well-known/openid-configuration");
    ASSERT_EQ(common.status, 200u);
    EXPECT_EQ(common.json["issuer"], origin + "/{tenantid}/v2.0");

    Reply unknown = get_path("/fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration");
    expect_entra_error(unknown, 400, "invalid_tenant", 90002, "Tenant 'fabrikam.onmicrosoft.com' not found");
}

TEST(EntraDiscovery, AnswersNameTheHostTheClientUsed) {
    // Over "localhost" (SNI and a DNS name check), the endpoints name localhost too.
    Reply r = get_path("/" + std::string(kTenant) + "/v2.0/.well-known/openid-configuration", "localhost");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.json["token_endpoint"],
              "https://localhost:" + std::to_string(world().emu->port()) + "/" + kTenant + "/oauth2/v2.0/token");
}

TEST(EntraDiscovery, InstanceDiscoveryLikeMsalPython) {
    World& w = world();
    // MSAL Python sends the authority's host without its port.
    Reply r = get_path("/common/discovery/instance?api-version=1.0&authorization_endpoint=" +
                       url_encode("https://127.0.0.1/" + std::string(kTenant) + "/oauth2/v2.0/authorize"));
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json["tenant_discovery_endpoint"],
              w.emu->origin() + "/" + kTenant + "/v2.0/.well-known/openid-configuration");
    EXPECT_EQ(r.json["api-version"], "1.0");
    ASSERT_TRUE(r.json["metadata"].is_array());
    EXPECT_EQ(r.json["metadata"][0]["preferred_network"], "127.0.0.1:" + std::to_string(w.emu->port()));

    Reply other = get_path("/common/discovery/instance?api-version=1.1&authorization_endpoint=" +
                           url_encode("https://login.example.org/x/oauth2/v2.0/authorize"));
    expect_entra_error(other, 400, "invalid_instance", 50049, "Unknown or invalid instance.");
}

TEST(EntraDiscovery, KeysAreTheSigningKeys) {
    Reply r = get_path("/" + std::string(kTenant) + "/discovery/v2.0/keys");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.json, world().emu->signer().jwks());
    Reply unknown = get_path("/nobody/discovery/v2.0/keys");
    EXPECT_EQ(unknown.status, 400u);
}

// ---- Issuer keys cache, faults, counters. ----

TEST(EntraFederation, IssuerKeysAreFetchedOnceThenCached) {
    World& w = world();
    w.emu->clear_issuer_cache();
    w.emu->reset_stats();
    expect_token(post_token(with_assertion(kFedApp, federated_token())), kFedApp, 1, "2");
    EXPECT_EQ(w.emu->stats().issuer_fetches, 2u);  // discovery document + JWKS
    expect_token(post_token(with_assertion(kFedApp, federated_token())), kFedApp, 1, "2");
    EXPECT_EQ(w.emu->stats().issuer_fetches, 2u);
    w.emu->clear_issuer_cache();
    expect_token(post_token(with_assertion(kFedApp, federated_token())), kFedApp, 1, "2");
    EXPECT_EQ(w.emu->stats().issuer_fetches, 4u);
}

TEST(EntraFaults, ThrottleForCountThenRecover) {
    World& w = world();
    FaultSpec f;
    f.mode = FaultMode::status;
    f.status = 429;
    f.retry_after = 7;
    f.count = 2;
    w.emu->set_fault(f);
    for (int i = 0; i < 2; ++i) {
        Reply r = post_token(with_secret(kSecretApp, kSecret));
        expect_entra_error(r, 429, "temporarily_unavailable", 90055, "TenantThrottlingError");
        EXPECT_EQ(r.headers["Retry-After"], "7");
    }
    expect_token(post_token(with_secret(kSecretApp, kSecret)), kSecretApp, 1, "1");
}

TEST(EntraFaults, ServerErrorForADurationAndLatency) {
    World& w = world();
    FaultSpec f;
    f.mode = FaultMode::status;
    f.status = 503;
    f.duration_ms = 1500;  // long enough for two calls on a loaded machine
    w.emu->set_fault(f);
    expect_entra_error(post_token(with_secret(kSecretApp, kSecret)), 503, "temporarily_unavailable", 90033,
                       "transient error");
    expect_entra_error(post_token(with_secret(kSecretApp, kSecret)), 503, "temporarily_unavailable", 90033,
                       "transient error");
    std::this_thread::sleep_for(1600ms);
    expect_token(post_token(with_secret(kSecretApp, kSecret)), kSecretApp, 1, "1");

    FaultSpec slow;
    slow.mode = FaultMode::latency;
    slow.latency_ms = 300;
    slow.count = 1;
    w.emu->set_fault(slow);
    auto start = std::chrono::steady_clock::now();
    expect_token(post_token(with_secret(kSecretApp, kSecret)), kSecretApp, 1, "1");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
    EXPECT_EQ(w.emu->fault().mode, FaultMode::none);
}

TEST(EntraStats, CountsCallsPerClientOutcomeAndCredential) {
    World& w = world();
    w.emu->reset_stats();
    post_token(with_secret(kSecretApp, kSecret));
    post_token(with_secret(kSecretApp, kSecret));
    post_token(with_secret(kSecretApp, "wrong"));
    post_token(cert_body(AssertionSpec{}));
    StatsSnapshot s = w.emu->stats();
    EXPECT_EQ(s.token_calls, 4u);
    EXPECT_EQ(s.client(kSecretApp), 3u);
    EXPECT_EQ(s.client(kCertApp), 1u);
    EXPECT_EQ(s.outcome("success"), 3u);
    EXPECT_EQ(s.outcome("AADSTS7000215"), 1u);
    EXPECT_EQ(s.by_credential["secret"], 3u);
    EXPECT_EQ(s.by_credential["certificate"], 1u);
}

// ---- Admin API (plain HTTP on loopback). ----

TEST(EntraAdminApi, AddsAppsIssuersAndFaultsAtRunTime) {
    World& w = world();
    auto conn = emulator::HttpConnection::open("127.0.0.1", w.emu->admin_port());
    ASSERT_TRUE(conn) << conn.error().message;
    const std::string runtime_app = "c0000000-0000-4000-8000-0000000000c1";

    // A hosted issuer and an app with a secret, added while the emulator runs.
    auto issuer = conn->post("/issuers", R"({"name":"selfhosted"})");
    ASSERT_TRUE(issuer);
    EXPECT_EQ(issuer->result_int(), 201u) << issuer->body();
    nlohmann::json app = {{"tenant", kTenantName}, {"client_id", runtime_app}, {"secrets", {"runtime-secret"}}};
    auto added = conn->post("/apps", app.dump());
    ASSERT_TRUE(added);
    EXPECT_EQ(added->result_int(), 201u) << added->body();
    EXPECT_EQ(nlohmann::json::parse(added->body())["tenant"], kTenant);  // the name resolved to the id
    EXPECT_EQ(nlohmann::json::parse(added->body())["secrets"], 1);       // counted, never shown
    expect_token(post_token(with_secret(runtime_app, "runtime-secret")), runtime_app, 1, "1");

    auto token = conn->post("/issuers/selfhosted/token", R"({"sub":"system:serviceaccount:a:b"})");
    ASSERT_TRUE(token);
    ASSERT_EQ(token->result_int(), 200u) << token->body();
    auto claims = emulator::decode_jwt(nlohmann::json::parse(token->body())["token"].get<std::string>());
    ASSERT_TRUE(claims);
    EXPECT_EQ(claims->claims["kubernetes.io"]["namespace"], "a");
    EXPECT_EQ(claims->claims["aud"], nlohmann::json::array({kExchange}));

    auto fault = conn->post("/faults", R"({"mode":"status","status":429,"retry_after":1,"count":1})");
    ASSERT_TRUE(fault);
    EXPECT_EQ(fault->result_int(), 200u);
    EXPECT_EQ(post_token(with_secret(runtime_app, "runtime-secret")).status, 429u);
    auto stats = conn->get("/stats");
    ASSERT_TRUE(stats);
    auto s = nlohmann::json::parse(stats->body());
    EXPECT_GE(s["by_outcome"]["fault_429"].get<int>(), 1);

    auto ca = conn->get("/ca.pem");
    ASSERT_TRUE(ca);
    EXPECT_EQ(ca->body(), w.emu->ca_pem());
    auto keys = conn->get("/keys");
    ASSERT_TRUE(keys);
    EXPECT_EQ(nlohmann::json::parse(keys->body()), w.emu->signer().jwks());

    emulator::HttpRequest del{http::verb::delete_, "/apps/" + std::string(kTenant) + "/" + runtime_app, 11};
    auto removed = conn->send(del);
    ASSERT_TRUE(removed);
    EXPECT_EQ(removed->result_int(), 200u) << removed->body();
    expect_entra_error(post_token(with_secret(runtime_app, "runtime-secret")), 400, "unauthorized_client", 700016,
                       runtime_app);

    auto bad = conn->post("/apps", R"({"tenant":"t","client_id":"x","certificate_thumbprints":["zz"]})");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->result_int(), 400u);
}

TEST(EntraAdminApi, ListensOnLoopbackOnly) {
    EmulatorOptions options;
    options.admin_port = 0;
    options.admin_ip = "0.0.0.0";
    EntraEmulator emu(options);
    auto r = emu.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("loopback"), std::string::npos);
}

// ---- Pure pieces. ----

TEST(EntraDirectory, ThumbprintForms) {
    PemPair cert = world().cert;
    Thumbprints tp = thumbprints_of(cert.cert_pem);
    struct Row {
        std::string text;
        bool sha1;
    } rows[] = {{base64url_encode(tp.sha256), false},
                {base64url_encode(tp.sha1), true},
                {base64url_encode(tp.sha1) + "=", true},
                {[&] {
                     std::string hex;
                     for (unsigned char c : tp.sha1) {
                         char b[3];
                         std::snprintf(b, sizeof b, "%02X", c);
                         hex += b;
                     }
                     return hex;
                 }(),
                 true}};
    for (const auto& row : rows) {
        SCOPED_TRACE(row.text);
        auto cred = certificate_from_thumbprint(row.text);
        ASSERT_TRUE(cred) << cred.error().message;
        EXPECT_EQ(cred->sha1, row.sha1 ? tp.sha1 : "");
        EXPECT_EQ(cred->sha256, row.sha1 ? "" : tp.sha256);
    }
    EXPECT_FALSE(certificate_from_thumbprint("abc"));
}

TEST(EntraOptions, CommandLine) {
    struct Row {
        std::vector<std::string> args;
        bool ok;
        const char* error_part;
    } rows[] = {
        {{"--listen", "127.0.0.1:0", "--admin=127.0.0.1:9000", "--issuer", "c1", "--ca-out", "/tmp/x"}, true, ""},
        {{"--listen", "localhost:1"}, false, "not an IP address"},
        {{"--cert", "a.pem"}, false, "--cert and --key go together"},
        {{"--cert", "a", "--key", "b", "--ca-out", "c"}, false, "with --cert there is none"},
        {{"--token-lifetime", "0"}, false, "positive number"},
        {{"--fault", R"({"mode":"status","status":404})"}, false, "429 or a 5xx"},
        {{"--frobnicate"}, false, "unknown flag"},
        {{"--config"}, false, "needs a value"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.args[0]);
        auto cmd = parse_command_line(row.args);
        EXPECT_EQ(cmd.ok(), row.ok);
        if (!cmd.ok()) {
            EXPECT_NE(cmd.error().message.find(row.error_part), std::string::npos) << cmd.error().message;
        }
    }
    auto cmd = parse_command_line({"--admin", "127.0.0.1:9000", "--dns-name", "entra.test"});
    ASSERT_TRUE(cmd);
    ASSERT_TRUE(cmd->admin);
    EXPECT_EQ(cmd->admin->second, 9000);
    auto options = to_options(*cmd);
    ASSERT_TRUE(options);
    EXPECT_EQ(options->dns_names, (std::vector<std::string>{"localhost", "entra.test"}));
}

TEST(EntraFaultSpec, ParseRules) {
    EXPECT_TRUE(parse_fault(std::string_view(R"({"mode":"latency","latency_ms":5})")));
    EXPECT_FALSE(parse_fault(std::string_view(R"({"mode":"latency"})")));
    EXPECT_FALSE(parse_fault(std::string_view(R"({"mode":"reset"})")));
    auto zero = parse_fault(std::string_view(R"({"mode":"status","status":500,"count":0})"));
    ASSERT_TRUE(zero);
    EXPECT_EQ(zero->mode, FaultMode::none);
}

}  // namespace
}  // namespace podid::entra_emulator
