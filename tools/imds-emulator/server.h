// The emulator as an embeddable HTTP/1.1 server (keep-alive, one I/O thread): tests start it in-process on
// 127.0.0.1:0, main.cpp wraps it as the podid-imds-emulator program.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json.hpp>

#include "admin_api.h"
#include "common/result.h"
#include "faults.h"
#include "identity_store.h"
#include "jwt.h"
#include "rate_limiter.h"
#include "stats.h"

namespace podid::emulator {

constexpr const char* kDefaultTenantId = "72f988bf-0000-4000-8000-0000000e3a1d";

struct EmulatorConfig {
    std::string listen_ip = "169.254.169.254";
    uint16_t listen_port = 80;  // 0: pick a free port (start() returns it)
    IdentityStore identities;
    std::string tenant_id = kDefaultTenantId;
    int64_t token_lifetime = 86400;  // seconds
    FaultSpec fault;                 // active from the first request
    bool enforce_limits = false;     // 429 beyond IMDS's 20 token requests/s or 5 concurrent
    LimitSettings limits;
    std::chrono::seconds idle_timeout{120};  // keep-alive connections idle longer than this are closed
};

class EmulatorServer {
public:
    EmulatorServer(EmulatorConfig config, TokenSigner signer);
    ~EmulatorServer();  // stop()
    EmulatorServer(const EmulatorServer&) = delete;
    EmulatorServer& operator=(const EmulatorServer&) = delete;

    // Binds and listens, then serves on a background thread. Returns the bound port.
    Result<uint16_t> start();
    // Closes the listener and every connection and joins the thread. Idempotent.
    void stop();

    uint16_t port() const { return port_; }
    std::string endpoint() const;  // "IP:PORT" as bound

    // In-process access to what the admin API offers over HTTP.
    nlohmann::json stats() const { return stats_.to_json(); }
    void reset_stats() { stats_.reset(); }
    void set_fault(const FaultSpec& spec) { faults_.set(spec); }
    const TokenSigner& signer() const { return signer_; }
    const EmulatorConfig& config() const { return config_; }

private:
    struct Handled;
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor acceptor);
    boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket);
    boost::asio::awaitable<Handled> handle(const HttpRequest& req, const std::string& peer);
    boost::asio::awaitable<Handled> handle_token(const HttpRequest& req, const std::string& peer);

    EmulatorConfig config_;
    TokenSigner signer_;
    Stats stats_;
    FaultState faults_;
    RateLimiter limiter_;
    uint16_t port_ = 0;
    // Declared last: destroying the context destroys suspended sessions, which use the members above.
    std::unique_ptr<boost::asio::io_context> ioc_;
    std::thread thread_;
};

}  // namespace podid::emulator
