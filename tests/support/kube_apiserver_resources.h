// What the Kubernetes API-server double serves: the resource types (core v1 and the aad-pod-identity CRDs),
// the discovery documents kubectl reads before anything else, and the Status objects errors are made of.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace podid::test::kube {

struct ResourceType {
    std::string group;  // "" for the core group
    std::string version;
    std::string plural;  // the path segment: "pods"
    std::string singular;
    std::string kind;  // "Pod"
    bool namespaced = true;
    std::vector<std::string> short_names;
    std::vector<std::string> field_labels;  // what fieldSelector accepts besides metadata.name/namespace

    std::string api_version() const { return group.empty() ? version : group + "/" + version; }
    std::string list_kind() const { return kind + "List"; }
};

const std::vector<ResourceType>& resource_types();
const ResourceType* find_resource(const std::string& group, const std::string& version, const std::string& plural);
// Accepts a kind ("Pod"), a plural ("pods") or a singular ("pod"), as a test would name it.
const ResourceType* resource_named(const std::string& name);

// Discovery: /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>, /version. Null when `path` is none.
nlohmann::json discovery_document(const std::string& path, const std::string& server_address);

// A meta/v1 Status, the body of every error the real API server returns.
struct ApiStatus {
    int code = 500;
    std::string reason;  // "NotFound", "Expired", ...
    std::string message;
    std::string name;  // details.name / details.kind when about one object
    std::string kind;
};
nlohmann::json status_json(const ApiStatus& status);

ApiStatus not_found(const ResourceType& type, const std::string& name);
ApiStatus bad_request(const std::string& message);
ApiStatus expired(const std::string& message);

// One HTTP answer of the double, before the session layer writes it.
struct Reply {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // more fields (Warning, Cache-Control), set last
};

Reply json_reply(const nlohmann::json& body, int status = 200);
Reply status_reply(const ApiStatus& status);

}  // namespace podid::test::kube
