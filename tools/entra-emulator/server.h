// The Entra ID v2 token-endpoint emulator as an embeddable server: HTTPS (a CA and certificate made at start,
// or given PEMs) for the Entra endpoints and hosted test issuers, plus an optional plain-HTTP admin port on
// loopback. One I/O thread; tests start it in-process on 127.0.0.1:0, main.cpp wraps it as
// podid-entra-emulator.
//
//   podid::entra_emulator::EmulatorOptions options;
//   options.admin_port = 0;                           // optional admin API
//   podid::entra_emulator::EntraEmulator emu(options);
//   emu.start();
//   emu.directory().add_app(app);                     // or load(json), or POST /apps on the admin port
//   SSL_CERT_FILE / REQUESTS_CA_BUNDLE <- emu.ca_pem(); authority = emu.authority(tenant)
//   emu.stats().outcome("AADSTS7000215")
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "common/result.h"
#include "directory.h"
#include "errors.h"
#include "faults.h"
#include "http.h"
#include "imds-emulator/jwt.h"
#include "issuer_double.h"
#include "issuer_keys.h"
#include "stats.h"

namespace podid::entra_emulator {

struct EmulatorOptions {
    std::string listen_ip = "127.0.0.1";
    uint16_t port = 0;                   // 0: pick a free port (port() tells which)
    std::optional<uint16_t> admin_port;  // the admin API on admin_ip:admin_port; nullopt: none
    std::string admin_ip = "127.0.0.1";  // must be a loopback address
    // Names in the generated server certificate besides listen_ip and 127.0.0.1.
    std::vector<std::string> dns_names = {"localhost"};
    // Both set: serve this certificate chain and key instead of generating a CA (ca_pem() is then empty).
    std::string cert_pem;
    std::string key_pem;
    // Trust for fetching federated issuers' metadata: the system roots, these extra CA PEMs, and (when the CA
    // was generated) the emulator's own CA, so issuers it hosts itself verify.
    std::vector<std::string> trust_ca_pems;
    bool trust_system_cas = true;
    bool trust_own_ca = true;
    std::string signing_key_pem;    // RSA key for access tokens; empty: a fresh RSA-2048 key
    int64_t token_lifetime = 3599;  // expires_in; Entra answers 3599 for an hour's token
    int64_t clock_skew = 300;       // seconds of tolerance on assertions' nbf/exp (Entra allows five minutes)
    std::chrono::seconds jwks_cache_ttl{30};
    std::chrono::milliseconds fetch_timeout{5000};
    std::chrono::seconds idle_timeout{120};
    FaultSpec fault;  // active from the first token call
};

class EntraEmulator {
public:
    explicit EntraEmulator(EmulatorOptions options = {});
    ~EntraEmulator();  // stop()
    EntraEmulator(const EntraEmulator&) = delete;
    EntraEmulator& operator=(const EntraEmulator&) = delete;

    // Makes the keys and certificates, binds both listeners and serves on a background thread.
    Result<void> start();
    // Closes the listeners and every connection and joins the thread. Idempotent.
    void stop();

    uint16_t port() const { return port_; }
    uint16_t admin_port() const { return admin_port_; }
    std::string origin() const;  // "https://127.0.0.1:PORT"
    std::string authority(std::string_view tenant) const { return origin() + "/" + std::string(tenant); }
    std::string token_endpoint(std::string_view tenant) const { return authority(tenant) + "/oauth2/v2.0/token"; }
    std::string admin_origin() const;  // "http://127.0.0.1:ADMIN_PORT"
    // PEM of the CA that signed the HTTPS certificate; clients trust it (SSL_CERT_FILE, REQUESTS_CA_BUNDLE).
    const std::string& ca_pem() const { return ca_pem_; }

    // In-process access to what the admin API offers over HTTP. Valid before and after start().
    Directory& directory() { return directory_; }
    StatsSnapshot stats() const { return stats_.snapshot(); }
    void reset_stats() { stats_.reset(); }
    void set_fault(const FaultSpec& spec) { faults_.set(spec); }
    FaultSpec fault() const { return faults_.current(); }
    // The access-token signing key (after start()).
    const emulator::TokenSigner& signer() const { return *signer_; }

    // Hosted test issuers (after start()): the issuer URL, and tokens it signs.
    Result<std::string> add_issuer(const std::string& name) { return issuers_.add(name, origin()); }
    Result<std::string> mint_issuer_token(const std::string& name, const IssuerTokenSpec& spec = {}) const;
    // Forget cached issuer JWKS (the next federated call fetches again).
    void clear_issuer_cache();

private:
    Result<void> make_tls();
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor acceptor, bool admin);
    boost::asio::awaitable<void> tls_session(boost::asio::ip::tcp::socket socket);
    boost::asio::awaitable<void> admin_session(boost::asio::ip::tcp::socket socket);
    boost::asio::awaitable<HttpResponse> handle(const HttpRequest& req);
    boost::asio::awaitable<HttpResponse> handle_token(const HttpRequest& req, const std::string& tenant,
                                                      const std::string& origin, const TraceInfo& trace);
    boost::asio::awaitable<HttpResponse> handle_admin(const HttpRequest& req);

    EmulatorOptions options_;
    Directory directory_;
    Stats stats_;
    FaultState faults_;
    IssuerRegistry issuers_;
    std::optional<emulator::TokenSigner> signer_;
    std::string ca_pem_;
    std::unique_ptr<boost::asio::ssl::context> server_tls_;
    std::unique_ptr<boost::asio::ssl::context> client_tls_;
    std::unique_ptr<IssuerKeys> issuer_keys_;
    uint16_t port_ = 0;
    uint16_t admin_port_ = 0;
    // Declared last: destroying the context destroys suspended sessions, which use the members above.
    std::unique_ptr<boost::asio::io_context> ioc_;
    std::thread thread_;
};

}  // namespace podid::entra_emulator
