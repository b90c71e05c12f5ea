// A small synchronous HTTP/1.1 client over one keep-alive connection, with a deadline on every step.
// For tests and tools that talk to the emulator (or to podid) on loopback; not for production traffic.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "faults.h"
#include "http_types.h"

namespace podid::emulator {

using Headers = std::vector<std::pair<std::string, std::string>>;

class HttpConnection {
public:
    static Result<HttpConnection> open(const std::string& ip, uint16_t port,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
    HttpConnection(HttpConnection&&) noexcept;
    HttpConnection& operator=(HttpConnection&&) noexcept;
    ~HttpConnection();

    // Sends `req` (Host and keep-alive filled in when absent) and reads one response. An error means the
    // connection is unusable (closed or reset by the peer, or the deadline passed).
    Result<HttpResponse> send(HttpRequest req);
    Result<HttpResponse> get(const std::string& target, const Headers& headers = {});
    Result<HttpResponse> post(const std::string& target, const std::string& body, const Headers& headers = {});

    std::string local_endpoint() const;  // "127.0.0.1:PORT": what the server records as the peer

private:
    struct Impl;
    explicit HttpConnection(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
Result<HttpResponse> http_get(const std::string& ip, uint16_t port, const std::string& target,
                              const Headers& headers = {});

// Admin API helpers (see admin_api.h).
Result<nlohmann::json> fetch_stats(const std::string& ip, uint16_t port);
Result<void> reset_stats(const std::string& ip, uint16_t port);
Result<void> set_fault(const std::string& ip, uint16_t port, const FaultSpec& spec);
Result<nlohmann::json> fetch_jwks(const std::string& ip, uint16_t port);

}  // namespace podid::emulator
