#include "access_token.h"

namespace podid::entra_emulator {

const char* credential_name(CredentialKind kind) {
    switch (kind) {
    case CredentialKind::secret: return "secret";
    case CredentialKind::certificate: return "certificate";
    case CredentialKind::federated: return "federated";
    }
    return "none";
}

std::optional<std::string> resource_of_scope(std::string_view scope) {
    constexpr std::string_view kDefault = "/.default";
    if (scope.size() <= kDefault.size() || scope.substr(scope.size() - kDefault.size()) != kDefault)
        return std::nullopt;
    return std::string(scope.substr(0, scope.size() - kDefault.size()));
}

nlohmann::json access_token_claims(const App& app, const std::string& resource, CredentialKind kind, int64_t now,
                                   int64_t lifetime, const std::string& token_id) {
    // appidacr/azpacr: how the client authenticated: "1" a secret, "2" a certificate or an assertion.
    std::string acr = kind == CredentialKind::secret ? "1" : "2";
    nlohmann::json claims = {{"aud", resource},       {"iat", now},           {"nbf", now},
                             {"exp", now + lifetime}, {"idtyp", "app"},       {"oid", app.object_id},
                             {"sub", app.object_id},  {"tid", app.tenant_id}, {"uti", token_id}};
    if (app.access_token_version == 2) {
        claims["iss"] = "https://login.microsoftonline.com/" + app.tenant_id + "/v2.0";
        claims["azp"] = app.client_id;
        claims["azpacr"] = acr;
        claims["ver"] = "2.0";
    } else {
        claims["iss"] = "https://sts.windows.net/" + app.tenant_id + "/";
        claims["idp"] = "https://sts.windows.net/" + app.tenant_id + "/";
        claims["appid"] = app.client_id;
        claims["appidacr"] = acr;
        claims["app_displayname"] = app.display_name;
        claims["ver"] = "1.0";
    }
    return claims;
}

nlohmann::ordered_json token_response_body(const std::string& access_token, int64_t expires_in) {
    nlohmann::ordered_json body;
    body["token_type"] = "Bearer";
    body["expires_in"] = expires_in;
    body["ext_expires_in"] = expires_in;
    body["access_token"] = access_token;
    return body;
}

}  // namespace podid::entra_emulator
