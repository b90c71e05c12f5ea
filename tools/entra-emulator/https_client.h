// The emulator's outgoing HTTPS: GETs of a federated issuer's discovery document and JWKS, as Entra makes them.
// Runs as a coroutine on the server's I/O thread, so it must never block (the issuer may be this very server).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "common/result.h"
#include "http.h"

namespace podid::entra_emulator {

struct HttpsUrl {
    std::string host;  // without brackets for IPv6
    std::string port;  // "443" when absent
    std::string target;
};
// Only https:// URLs: Entra fetches issuer metadata over TLS alone.
Result<HttpsUrl> parse_https_url(std::string_view url);

// A client context that verifies the peer against the system roots (optional) and `extra_ca_pems`.
Result<std::unique_ptr<boost::asio::ssl::context>> make_client_tls(const std::vector<std::string>& extra_ca_pems,
                                                                   bool system_roots);

// One GET on a fresh connection; the peer's certificate must verify and name the URL's host (DNS or IP).
// The body is capped at 1 MiB; `timeout` bounds the whole exchange.
boost::asio::awaitable<Result<HttpResponse>> https_get(std::string url, boost::asio::ssl::context& tls,
                                                       std::chrono::milliseconds timeout);

}  // namespace podid::entra_emulator
