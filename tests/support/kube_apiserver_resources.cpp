#include "kube_apiserver_resources.h"

#include <algorithm>

namespace podid::test::kube {

using nlohmann::json;

const std::vector<ResourceType>& resource_types() {
    static const std::vector<ResourceType> types = {
        {"",
         "v1",
         "pods",
         "pod",
         "Pod",
         true,
         {"po"},
         {"spec.nodeName", "spec.serviceAccountName", "spec.hostNetwork", "spec.restartPolicy", "spec.schedulerName",
          "status.phase", "status.podIP", "status.nominatedNodeName"}},
        {"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, {"sa"}, {}},
        // Read by the agent one at a time (service-principal AzureIdentities' clientPassword), never listed.
        {"", "v1", "secrets", "secret", "Secret", true, {}, {"type"}},
        {"", "v1", "namespaces", "namespace", "Namespace", false, {"ns"}, {"status.phase"}},
        {"aadpodidentity.k8s.io", "v1", "azureidentities", "azureidentity", "AzureIdentity", true, {}, {}},
        {"aadpodidentity.k8s.io",
         "v1",
         "azureidentitybindings",
         "azureidentitybinding",
         "AzureIdentityBinding",
         true,
         {},
         {}},
        {"aadpodidentity.k8s.io",
         "v1",
         "azurepodidentityexceptions",
         "azurepodidentityexception",
         "AzurePodIdentityException",
         true,
         {},
         {}},
    };
    return types;
}

const ResourceType* find_resource(const std::string& group, const std::string& version, const std::string& plural) {
    for (const auto& t : resource_types())
        if (t.group == group && t.version == version && t.plural == plural)
            return &t;
    return nullptr;
}

const ResourceType* resource_named(const std::string& name) {
    for (const auto& t : resource_types())
        if (t.kind == name || t.plural == name || t.singular == name)
            return &t;
    return nullptr;
}

namespace {

json resource_list(const std::string& group, const std::string& version) {
    json resources = json::array();
    for (const auto& t : resource_types()) {
        if (t.group != group || t.version != version)
            continue;
        json r = {{"name", t.plural},
                  {"singularName", t.singular},
                  {"namespaced", t.namespaced},
                  {"kind", t.kind},
                  {"verbs", {"get", "list", "watch"}}};
        if (!t.short_names.empty())
            r["shortNames"] = t.short_names;
        resources.push_back(std::move(r));
        if (t.group.empty() && t.plural == "serviceaccounts")  // the TokenRequest subresource, listed after its parent
            resources.push_back({{"name", "serviceaccounts/token"},
                                 {"singularName", ""},
                                 {"namespaced", true},
                                 {"group", "authentication.k8s.io"},
                                 {"version", "v1"},
                                 {"kind", "TokenRequest"},
                                 {"verbs", json::array({"create"})}});
    }
    std::string gv = group.empty() ? version : group + "/" + version;
    return {{"kind", "APIResourceList"}, {"apiVersion", "v1"}, {"groupVersion", gv}, {"resources", resources}};
}

std::vector<std::string> api_groups() {
    std::vector<std::string> groups;
    for (const auto& t : resource_types())
        if (!t.group.empty() && std::find(groups.begin(), groups.end(), t.group) == groups.end())
            groups.push_back(t.group);
    return groups;
}

json api_group(const std::string& group) {
    json version = {{"groupVersion", group + "/v1"}, {"version", "v1"}};
    return {{"kind", "APIGroup"},
            {"apiVersion", "v1"},
            {"name", group},
            {"versions", {version}},
            {"preferredVersion", version}};
}

}  // namespace

json discovery_document(const std::string& path, const std::string& server_address) {
    if (path == "/version")
        return {{"major", "1"},          {"minor", "29"},           {"gitVersion", "v1.29.0-podid-double"},
                {"gitCommit", "0"},      {"gitTreeState", "clean"}, {"buildDate", "2024-01-01T00:00:00Z"},
                {"goVersion", "go1.21"}, {"compiler", "gc"},        {"platform", "linux/amd64"}};
    if (path == "/api")
        return {{"kind", "APIVersions"},
                {"versions", {"v1"}},
                {"serverAddressByClientCIDRs", {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}}}};
    if (path == "/api/v1")
        return resource_list("", "v1");
    if (path == "/apis") {
        json groups = json::array();
        for (const auto& g : api_groups()) {
            json doc = api_group(g);
            doc.erase("kind");
            doc.erase("apiVersion");
            groups.push_back(std::move(doc));
        }
        return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
    }
    for (const auto& g : api_groups()) {
        if (path == "/apis/" + g)
            return api_group(g);
        if (path == "/apis/" + g + "/v1")
            return resource_list(g, "v1");
    }
    return nullptr;
}

json status_json(const ApiStatus& status) {
    json body = {{"kind", "Status"},    {"apiVersion", "v1"},        {"metadata", json::object()},
                 {"status", "Failure"}, {"message", status.message}, {"reason", status.reason},
                 {"code", status.code}};
    if (!status.name.empty() || !status.kind.empty()) {
        body["details"] = json::object();
        if (!status.name.empty())
            body["details"]["name"] = status.name;
        if (!status.kind.empty())
            body["details"]["kind"] = status.kind;
    }
    return body;
}

ApiStatus not_found(const ResourceType& type, const std::string& name) {
    std::string what = type.group.empty() ? type.plural : type.plural + "." + type.group;
    return {404, "NotFound", what + " \"" + name + "\" not found", name, type.plural};
}

ApiStatus bad_request(const std::string& message) { return {400, "BadRequest", message, "", ""}; }

ApiStatus expired(const std::string& message) { return {410, "Expired", message, "", ""}; }

Reply json_reply(const json& body, int status) { return {status, "application/json", body.dump(), {}}; }

Reply status_reply(const ApiStatus& status) { return json_reply(status_json(status), status.code); }

}  // namespace podid::test::kube
