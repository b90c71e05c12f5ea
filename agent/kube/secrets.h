// One Kubernetes Secret read on demand: the client secret or certificate of an AAD Pod Identity service
// principal (AzureIdentity type 1 or 2, spec.clientPassword names the Secret).
//
// Why not an informer: a node needs a handful of Secrets, named by the identities its pods use, and watching
// every Secret of the cluster would keep all of them in the agent's memory. Why a cache: a burst of token
// requests for one identity reads the Secret once, and a short TTL still picks up a rotated secret soon.
//
// Rules: a read is answered from the cache for `ttl` after it was fetched; concurrent reads of one Secret
// share one GET, and its failure; failures are not remembered. Values never appear in messages, logs or stats.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/result.h"
#include "kube/api.h"

namespace podid::kube {

// A Secret's `data`, base64-decoded: key -> value (raw bytes, e.g. a PKCS#12 file under "certificate").
using SecretData = std::map<std::string, std::string>;

struct SecretReaderOptions {
    std::chrono::milliseconds ttl{60'000};
    // Milliseconds on a monotonic clock; default: steady_clock. Tests move it by hand.
    std::function<int64_t()> now_ms;
};

struct SecretReaderStats {
    uint64_t requests = 0;    // GETs sent
    uint64_t cache_hits = 0;  // answered from the cache
    uint64_t shared = 0;      // waited for a GET another caller started
    uint64_t failures = 0;    // GETs that brought no Secret
    std::size_t cached = 0;   // Secrets held
};

class SecretReader {
public:
    // GETs run on a strand of `executor` (the control plane's); read() may be co_awaited from any executor or
    // thread. `api` is shared with the calls in flight, which may outlive this object.
    SecretReader(boost::asio::any_io_executor executor, std::shared_ptr<KubeRequests> api,
                 SecretReaderOptions options = {});
    ~SecretReader();
    SecretReader(const SecretReader&) = delete;
    SecretReader& operator=(const SecretReader&) = delete;

    // The Secret's data. Errors say what to fix: the ClusterRole (403), a missing Secret (404), a value that
    // is not base64 (named by its key), or the API server's own message.
    boost::asio::awaitable<Result<SecretData>> read(std::string ns, std::string name);

    SecretReaderStats stats() const;

    struct State;  // shared with GETs in flight

private:
    std::shared_ptr<State> state_;
};

}  // namespace podid::kube
