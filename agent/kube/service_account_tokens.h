// Service-account tokens bound to a pod, minted by the API server's TokenRequest subresource: what the agent
// exchanges with Entra ID for a pod whose service account names an Entra application (Workload Identity).
//
// Why a cache: one token serves every Entra exchange of its pod until it runs low, and a burst of requests from
// one pod (or many pods' first requests after a restart) must not become a burst of TokenRequests.
//
// Rules (times in the injected clock):
//  - one token per pod UID, bound to the pod (boundObjectRef), so it dies with the pod on the API server's side;
//  - reused until 80 % of its lifetime (request start to status.expirationTimestamp, as the server may shorten
//    it) has passed; the next caller then fetches a new one and waits for it;
//  - concurrent callers for one pod share one TokenRequest, and its failure; failures are not remembered;
//  - forget_pod() drops the token of a deleted pod, and a fetch in flight for it is not kept.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "caller/caller.h"
#include "common/result.h"
#include "kube/api.h"

namespace podid::kube {

inline constexpr std::string_view kAzureTokenExchangeAudience = "api://AzureADTokenExchange";
inline constexpr std::chrono::seconds kMinTokenLifetime{600};  // the API's floor for spec.expirationSeconds

struct ServiceAccountToken {
    std::string token;       // the JWT; never logged, never in a message
    int64_t expires_on = 0;  // status.expirationTimestamp, seconds since the epoch
};

struct ServiceAccountTokensOptions {
    std::string audience = std::string(kAzureTokenExchangeAudience);
    // Epoch time in milliseconds; default: the system clock (expiry times are wall-clock times). Tests move it.
    std::function<int64_t()> now_ms;
};

struct ServiceAccountTokenStats {
    uint64_t requests = 0;    // TokenRequests sent
    uint64_t cache_hits = 0;  // answered from the cache
    uint64_t shared = 0;      // waited for a TokenRequest another caller started
    uint64_t failures = 0;    // TokenRequests that brought no token
    std::size_t cached = 0;   // pods with a token
};

class ServiceAccountTokens {
public:
    // TokenRequests run on a strand of `executor` (the control plane's); token_for() may be co_awaited from any
    // executor or thread. `api` is shared with the calls in flight, which may outlive this object.
    ServiceAccountTokens(boost::asio::any_io_executor executor, std::shared_ptr<KubeRequests> api,
                         ServiceAccountTokensOptions options = {});
    ~ServiceAccountTokens();
    ServiceAccountTokens(const ServiceAccountTokens&) = delete;
    ServiceAccountTokens& operator=(const ServiceAccountTokens&) = delete;

    // A token for `pod` (namespace, name, uid and service account are used) with the configured audience, asked
    // for `lifetime` (raised to kMinTokenLifetime). A cached token is answered whatever lifetime it was asked
    // for. Errors say what to fix: the ClusterRole (403), a missing service account or pod (404), or the API
    // server's own message (a pod whose uid or service account does not match is refused).
    boost::asio::awaitable<Result<ServiceAccountToken>> token_for(const PodInfo& pod, std::chrono::seconds lifetime);

    // Any thread: the pod is gone; its token is dropped and a TokenRequest in flight for it is not cached.
    void forget_pod(std::string_view uid);

    ServiceAccountTokenStats stats() const;

    struct State;  // shared with TokenRequests in flight

private:
    std::shared_ptr<State> state_;
};

}  // namespace podid::kube
