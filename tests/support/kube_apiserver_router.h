// The API-server double's request routing as a pure function of the request, the store and the token issuer:
// discovery, GET of one object, list, TokenRequest, the issuer's OIDC documents, or the parameters of a watch
// (which the session layer then streams).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kube_apiserver_store.h"
#include "kube_apiserver_tokens.h"

namespace podid::test::kube {

struct WatchCall {
    WatchRequest request;
    bool bookmarks = false;                       // allowWatchBookmarks=true
    std::optional<std::chrono::seconds> timeout;  // timeoutSeconds: end the stream cleanly after this
};

struct Routed {
    enum class Verb { discovery, get, list, watch, create, other };
    Verb verb = Verb::other;
    std::string resource;  // plural, for counters ("" when not about a resource); "serviceaccounts/token"
    std::string ns;        // for TokenRequests: the service account's namespace and name
    std::string name;
    Reply reply;                     // when verb != watch
    std::optional<WatchCall> watch;  // when verb == watch
    std::optional<IssuedToken> issued;
};

struct ApiRequest {
    std::string method;
    std::string target;  // path and query
    std::string content_type;
    std::string body;
};

struct RouteContext {
    const ObjectStore& store;
    std::string server_address;  // host:port, for /api's serverAddressByClientCIDRs
    std::string server_url;      // https://host:port
    const ServiceAccountTokens& tokens;
    std::chrono::system_clock::time_point now;
};

Routed route_request(const ApiRequest& request, const RouteContext& context);

// What the double serves to a client that brings no credentials: the issuer's OIDC discovery documents. The real
// server authorizes system:anonymous for them only when RBAC grants the system:service-account-issuer-discovery
// ClusterRole to system:unauthenticated, as clusters that publish their issuer do; the double assumes it is.
bool serves_anonymously(const std::string& method, const std::string& target);

// Query string as Go's url.ParseQuery reads it ('+' is a space, %XX decoded); the first value of each name wins.
std::map<std::string, std::string> parse_query(const std::string& query);

}  // namespace podid::test::kube
