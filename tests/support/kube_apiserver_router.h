// The API-server double's request routing as a pure function of the request and the store: discovery,
// GET of one object, list, or the parameters of a watch (which the session layer then streams).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kube_apiserver_store.h"

namespace podid::test::kube {

struct Reply {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
};

struct WatchCall {
    WatchRequest request;
    bool bookmarks = false;                       // allowWatchBookmarks=true
    std::optional<std::chrono::seconds> timeout;  // timeoutSeconds: end the stream cleanly after this
};

struct Routed {
    enum class Verb { discovery, get, list, watch, other };
    Verb verb = Verb::other;
    std::string resource;            // plural, for counters ("" when not about a resource)
    Reply reply;                     // when verb != watch
    std::optional<WatchCall> watch;  // when verb == watch
};

Routed route_request(const std::string& method, const std::string& target, const ObjectStore& store,
                     const std::string& server_address);

// Query string as Go's url.ParseQuery reads it ('+' is a space, %XX decoded); the first value of each name wins.
std::map<std::string, std::string> parse_query(const std::string& query);

Reply status_reply(const ApiStatus& status);

}  // namespace podid::test::kube
