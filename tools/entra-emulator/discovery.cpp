#include "discovery.h"

#include <algorithm>
#include <cctype>

#include "https_client.h"

namespace podid::entra_emulator {
namespace {

std::string lowercase(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

// "https://host:port" -> "host" (brackets kept off IPv6 addresses).
std::string host_of_origin(const std::string& origin) {
    auto url = parse_https_url(origin + "/");
    return url ? lowercase(url->host) : std::string();
}

}  // namespace

bool is_tenant_alias(const std::string& segment) {
    std::string s = lowercase(segment);
    return s == "common" || s == "organizations" || s == "consumers";
}

HttpResponse answer_openid_configuration(const HttpRequest& req, const std::string& origin,
                                         const std::string& tenant_segment, const Directory& directory,
                                         const TraceInfo& trace) {
    // A real tenant's document names its GUID; the aliases keep their name in the endpoints and print the
    // "{tenantid}" placeholder in the issuer, as Entra's do.
    std::string tid;
    std::string path_tenant = tenant_segment;
    if (is_tenant_alias(tenant_segment)) {
        tid = "{tenantid}";
    } else if (auto tenant = directory.find_tenant(tenant_segment)) {
        tid = tenant->id;
        path_tenant = tenant->id;
    } else {
        return error_response(req, errors::tenant_not_found_discovery(tenant_segment), trace);
    }
    std::string base = origin + "/" + path_tenant;
    nlohmann::ordered_json doc;
    doc["token_endpoint"] = base + "/oauth2/v2.0/token";
    doc["token_endpoint_auth_methods_supported"] = {"client_secret_post", "private_key_jwt", "client_secret_basic"};
    doc["jwks_uri"] = base + "/discovery/v2.0/keys";
    doc["response_modes_supported"] = {"query", "fragment", "form_post"};
    doc["subject_types_supported"] = {"pairwise"};
    doc["id_token_signing_alg_values_supported"] = {"RS256"};
    doc["response_types_supported"] = {"code", "id_token", "code id_token", "id_token token"};
    doc["scopes_supported"] = {"openid", "profile", "email", "offline_access"};
    doc["issuer"] = origin + "/" + tid + "/v2.0";
    doc["request_uri_parameter_supported"] = false;
    doc["userinfo_endpoint"] = origin + "/oidc/userinfo";
    doc["authorization_endpoint"] = base + "/oauth2/v2.0/authorize";
    doc["device_authorization_endpoint"] = base + "/oauth2/v2.0/devicecode";
    doc["http_logout_supported"] = true;
    doc["frontchannel_logout_supported"] = true;
    doc["end_session_endpoint"] = base + "/oauth2/v2.0/logout";
    doc["claims_supported"] = {"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver", "oid"};
    doc["kerberos_endpoint"] = base + "/kerberos";
    doc["tenant_region_scope"] = nullptr;
    doc["cloud_instance_name"] = "microsoftonline.com";
    doc["cloud_graph_host_name"] = "graph.windows.net";
    doc["msgraph_host"] = "graph.microsoft.com";
    doc["rbac_url"] = "https://pas.windows.net";
    return json_response(req, 200, doc.dump());
}

HttpResponse answer_instance_discovery(const HttpRequest& req, const std::string& origin, const Params& query,
                                       const TraceInfo& trace) {
    std::string own_host = host_of_origin(origin);
    std::string authority = own_host;
    size_t scheme = origin.find("://");
    if (scheme != std::string::npos)
        authority = origin.substr(scheme + 3);
    nlohmann::ordered_json body;
    if (auto endpoint = form_value(query, "authorization_endpoint")) {
        // MSAL sends the authority's host without its port ("https://127.0.0.1/<tenant>/oauth2/v2.0/authorize"):
        // only the host is compared, and the answer names the origin with its port.
        auto url = parse_https_url(*endpoint);
        if (!url || lowercase(url->host) != own_host)
            return error_response(req, errors::invalid_instance(), trace);
        std::string tenant = url->target.substr(1, url->target.find('/', 1) - 1);
        if (tenant.empty())
            return error_response(req, errors::invalid_instance(), trace);
        // The emulator serves the v2.0 endpoints only, so discovery points there whatever version was asked.
        body["tenant_discovery_endpoint"] = origin + "/" + tenant + "/v2.0/.well-known/openid-configuration";
    }
    body["api-version"] = form_value(query, "api-version").value_or("1.1");
    body["metadata"] = nlohmann::json::array(
        {{{"preferred_network", authority}, {"preferred_cache", authority}, {"aliases", {authority}}}});
    return json_response(req, 200, body.dump());
}

HttpResponse answer_signing_keys(const HttpRequest& req, const std::string& tenant_segment, const Directory& directory,
                                 const nlohmann::json& jwks, const TraceInfo& trace) {
    if (!is_tenant_alias(tenant_segment) && !directory.find_tenant(tenant_segment))
        return error_response(req, errors::tenant_not_found_discovery(tenant_segment), trace);
    return json_response(req, 200, jwks.dump());
}

}  // namespace podid::entra_emulator
