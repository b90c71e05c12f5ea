// A federated issuer's signing keys as Entra obtains them: GET {issuer}/.well-known/openid-configuration, then
// its jwks_uri, over verified HTTPS. Cached per issuer for a short time; a token whose kid is not in the cached
// set makes the caller ask again with refresh (an issuer that rotated its key).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "stats.h"

namespace podid::entra_emulator {

// Where the token endpoint gets issuer keys; a test may inject its own.
class IssuerKeySource {
public:
    virtual ~IssuerKeySource() = default;
    // The issuer's JWKS ({"keys":[...]}); refresh bypasses any cache. Errors say what failed, for logs.
    virtual boost::asio::awaitable<Result<nlohmann::json>> jwks(const std::string& issuer, bool refresh) = 0;
};

class IssuerKeys : public IssuerKeySource {
public:
    using Clock = std::chrono::steady_clock;
    IssuerKeys(boost::asio::ssl::context& tls, std::chrono::milliseconds timeout, std::chrono::seconds ttl,
               Stats& stats);

    boost::asio::awaitable<Result<nlohmann::json>> jwks(const std::string& issuer, bool refresh) override;
    void clear();

private:
    boost::asio::awaitable<Result<nlohmann::json>> fetch_json(const std::string& url);

    struct Entry {
        nlohmann::json jwks;
        Clock::time_point fetched;
    };
    boost::asio::ssl::context& tls_;
    std::chrono::milliseconds timeout_;
    std::chrono::seconds ttl_;
    Stats& stats_;
    std::mutex mu_;
    std::map<std::string, Entry> cache_;
};

}  // namespace podid::entra_emulator
