#include "issuer_keys.h"

#include "https_client.h"

namespace podid::entra_emulator {
namespace asio = boost::asio;

IssuerKeys::IssuerKeys(asio::ssl::context& tls, std::chrono::milliseconds timeout, std::chrono::seconds ttl,
                       Stats& stats)
    : tls_(tls), timeout_(timeout), ttl_(ttl), stats_(stats) {}

void IssuerKeys::clear() {
    std::lock_guard lock(mu_);
    cache_.clear();
}

asio::awaitable<Result<nlohmann::json>> IssuerKeys::fetch_json(const std::string& url) {
    stats_.record_issuer_fetch();
    auto res = co_await https_get(url, tls_, timeout_);
    if (!res)
        co_return res.error();
    if (res->result_int() != 200)
        co_return make_error("GET " + url + " answered " + std::to_string(res->result_int()));
    auto json = nlohmann::json::parse(res->body(), nullptr, false);
    if (json.is_discarded() || !json.is_object())
        co_return make_error("GET " + url + " did not answer a JSON object");
    co_return json;
}

asio::awaitable<Result<nlohmann::json>> IssuerKeys::jwks(const std::string& issuer, bool refresh) {
    if (!refresh) {
        std::lock_guard lock(mu_);
        auto it = cache_.find(issuer);
        if (it != cache_.end() && Clock::now() - it->second.fetched < ttl_)
            co_return it->second.jwks;
    }
    std::string base = issuer;
    while (!base.empty() && base.back() == '/')
        base.pop_back();
    auto config = co_await fetch_json(base + "/.well-known/openid-configuration");
    if (!config)
        co_return config.error();
    if (!config->contains("jwks_uri") || !(*config)["jwks_uri"].is_string())
        co_return make_error("the discovery document of " + issuer + " has no jwks_uri");
    auto keys = co_await fetch_json((*config)["jwks_uri"].get<std::string>());
    if (!keys)
        co_return keys.error();
    if (!keys->contains("keys") || !(*keys)["keys"].is_array())
        co_return make_error("the JWKS of " + issuer + " has no \"keys\" array");
    std::lock_guard lock(mu_);
    cache_[issuer] = Entry{*keys, Clock::now()};
    co_return *keys;
}

}  // namespace podid::entra_emulator
