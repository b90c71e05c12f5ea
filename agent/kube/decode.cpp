#include "kube/decode.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <nlohmann/json.hpp>

namespace podid::kube {

using nlohmann::json;

namespace {

const json* member(const json& object, std::string_view key) {
    if (!object.is_object())
        return nullptr;
    auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// aad-pod-identity's controller decodes its CRDs with Go's case-insensitive JSON matching, and its early
// documentation spelled spec fields "ResourceID", "ClientID", "AzureIdentity", "Selector": clusters still
// carry such objects, so CRD spec fields match the same way (exact spelling first).
const json* member_ci(const json& object, std::string_view key) {
    if (const json* exact = member(object, key))
        return exact;
    if (!object.is_object())
        return nullptr;
    for (auto it = object.begin(); it != object.end(); ++it)
        if (iequals(it.key(), key))
            return &it.value();
    return nullptr;
}

std::string string_of(const json* value) {
    return value && value->is_string() ? value->get<std::string>() : std::string();
}

bool bool_of(const json* value) { return value && value->is_boolean() && value->get<bool>(); }

// Non-string values are skipped rather than stringified: labels and annotations are strings by schema.
std::map<std::string, std::string> string_map_of(const json* value) {
    std::map<std::string, std::string> out;
    if (!value || !value->is_object())
        return out;
    for (auto it = value->begin(); it != value->end(); ++it)
        if (it.value().is_string())
            out.emplace(it.key(), it.value().get<std::string>());
    return out;
}

const json& empty_object() {
    static const json kEmpty = json::object();
    return kEmpty;
}

const json& object_member(const json& object, std::string_view key) {
    const json* v = member(object, key);
    return v && v->is_object() ? *v : empty_object();
}

const json& spec_of(const json& object) {
    const json* v = member_ci(object, "spec");
    return v && v->is_object() ? *v : empty_object();
}

int identity_type_of(const json* value) {
    if (!value)
        return 0;
    if (value->is_number_integer())
        return value->get<int>();
    if (value->is_string()) {
        const std::string s = value->get<std::string>();
        int out = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        if (ec == std::errc() && end == s.data() + s.size())
            return out;
    }
    return 0;
}

void append_container_ids(const json* statuses, std::vector<std::string>& out) {
    if (!statuses || !statuses->is_array())
        return;
    for (const json& status : *statuses) {
        std::string id = strip_container_runtime(string_of(member(status, "containerID")));
        if (!id.empty())
            out.push_back(std::move(id));
    }
}

}  // namespace

std::string strip_container_runtime(std::string_view container_id) {
    const auto scheme_end = container_id.find("://");
    if (scheme_end != std::string_view::npos)
        container_id.remove_prefix(scheme_end + 3);
    return std::string(container_id);
}

ObjectMeta decode_meta(const json& object) {
    const json& meta = object_member(object, "metadata");
    ObjectMeta out;
    out.ns = string_of(member(meta, "namespace"));
    out.name = string_of(member(meta, "name"));
    out.uid = string_of(member(meta, "uid"));
    out.resource_version = string_of(member(meta, "resourceVersion"));
    out.labels = string_map_of(member(meta, "labels"));
    out.annotations = string_map_of(member(meta, "annotations"));
    return out;
}

std::string object_key(const json& object) {
    const json& meta = object_member(object, "metadata");
    std::string ns = string_of(member(meta, "namespace"));
    std::string name = string_of(member(meta, "name"));
    return ns.empty() ? name : ns + "/" + name;
}

Pod decode_pod(const json& object) {
    Pod pod;
    pod.meta = decode_meta(object);
    const json& spec = object_member(object, "spec");
    const json& status = object_member(object, "status");
    pod.node_name = string_of(member(spec, "nodeName"));
    pod.service_account = string_of(member(spec, "serviceAccountName"));
    if (pod.service_account.empty())  // the deprecated alias, still filled by old clients
        pod.service_account = string_of(member(spec, "serviceAccount"));
    if (pod.service_account.empty())
        pod.service_account = "default";
    pod.host_network = bool_of(member(spec, "hostNetwork"));
    pod.phase = string_of(member(status, "phase"));
    // Init and ephemeral containers run in the pod's cgroups too and may call IMDS.
    append_container_ids(member(status, "initContainerStatuses"), pod.container_ids);
    append_container_ids(member(status, "containerStatuses"), pod.container_ids);
    append_container_ids(member(status, "ephemeralContainerStatuses"), pod.container_ids);
    return pod;
}

AzureIdentity decode_azure_identity(const json& object) {
    AzureIdentity out;
    out.meta = decode_meta(object);
    const json& spec = spec_of(object);
    out.type = identity_type_of(member_ci(spec, "type"));
    out.resource_id = string_of(member_ci(spec, "resourceID"));
    out.client_id = string_of(member_ci(spec, "clientID"));
    out.tenant_id = string_of(member_ci(spec, "tenantID"));
    if (const json* password = member_ci(spec, "clientPassword"); password != nullptr && password->is_object()) {
        out.password_secret_name = string_of(member_ci(*password, "name"));
        out.password_secret_ns = string_of(member_ci(*password, "namespace"));
    }
    return out;
}

AzureIdentityBinding decode_azure_identity_binding(const json& object) {
    AzureIdentityBinding out;
    out.meta = decode_meta(object);
    const json& spec = spec_of(object);
    out.azure_identity = string_of(member_ci(spec, "azureIdentity"));
    out.selector = string_of(member_ci(spec, "selector"));
    return out;
}

AzurePodIdentityException decode_azure_pod_identity_exception(const json& object) {
    AzurePodIdentityException out;
    out.meta = decode_meta(object);
    out.pod_labels = string_map_of(member_ci(spec_of(object), "podLabels"));
    return out;
}

ServiceAccount decode_service_account(const json& object) {
    ServiceAccount out;
    out.meta = decode_meta(object);
    return out;
}

}  // namespace podid::kube
