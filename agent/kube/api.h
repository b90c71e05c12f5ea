// What podid needs from the API server: informers a paged list and a watch stream (KubeApi); the token and
// secret readers one object at a time (KubeRequests). The HTTPS client (client.h) implements both; tests
// substitute scripted fakes.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "common/result.h"

namespace podid::kube {

// A failed call: the HTTP status when the server answered (0 when it did not: then error.code is an
// errno such as ECONNREFUSED or ETIMEDOUT), the API Status reason ("Expired", "Forbidden") and a message
// that names the server and includes the Status message.
struct ApiError {
    unsigned http_status = 0;
    std::string reason;
    Error error;
    bool gone() const { return http_status == 410; }  // resourceVersion too old: relist
};

template <class T>
using ApiResult = Result<T, ApiError>;

struct ListPage {
    std::string resource_version;  // metadata.resourceVersion of the list
    std::string continue_token;    // metadata.continue; empty on the last page
    nlohmann::json items = nlohmann::json::array();
};

struct WatchEvent {
    enum class Type { added, modified, deleted, bookmark, error };
    Type type = Type::added;
    nlohmann::json object;  // the object; for `error` a metav1.Status
};

const char* to_string(WatchEvent::Type type);

class WatchStream {
public:
    virtual ~WatchStream() = default;
    // The next event as soon as it arrives; nullopt when the server ended the stream cleanly
    // (timeoutSeconds elapsed); an error when the connection broke or an event could not be decoded.
    virtual boost::asio::awaitable<ApiResult<std::optional<WatchEvent>>> next() = 0;
    // On the executor next() runs on: a pending or later next() completes with an error (ECANCELED). How an
    // informer drops a watch it no longer trusts, which a connection that went silent gives no other sign of.
    virtual void cancel() = 0;
};

class KubeApi {
public:
    virtual ~KubeApi() = default;
    // `target` is the request target without the server's path prefix: "/api/v1/pods?limit=500".
    virtual boost::asio::awaitable<ApiResult<ListPage>> list(std::string target) = 0;
    // `idle_timeout` bounds the wait for each event; it must exceed the target's timeoutSeconds.
    virtual boost::asio::awaitable<ApiResult<std::unique_ptr<WatchStream>>> watch(
        std::string target, std::chrono::milliseconds idle_timeout) = 0;
    // Ends every call in progress and refuses new ones (they fail with ECANCELED). Any thread.
    virtual void shutdown() = 0;
};

// One object at a time, for TokenRequests (service_account_tokens.h) and Secret reads (secrets.h). Apart from
// KubeApi so that informer fakes need not implement calls informers never make.
class KubeRequests {
public:
    virtual ~KubeRequests() = default;
    // GET of one object ("/api/v1/namespaces/ns1/secrets/s1"): the object on 200, else an ApiError.
    virtual boost::asio::awaitable<ApiResult<nlohmann::json>> get(std::string target) = 0;
    // POST of `body` as application/json ("/api/v1/namespaces/ns1/serviceaccounts/sa/token"): the object the
    // server answers with on 201 or 200, else an ApiError.
    virtual boost::asio::awaitable<ApiResult<nlohmann::json>> create(std::string target, nlohmann::json body) = 0;
};

}  // namespace podid::kube
