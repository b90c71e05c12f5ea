#include "imds_rules.h"

#include <array>
#include <cctype>
#include <cstdio>

#include "base64url.h"
#include "instance_metadata.h"
#include "query.h"

namespace podid::emulator {
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kTokenPath = "/identity/oauth2/token";
constexpr std::string_view kInfoPath = "/identity/info";
constexpr std::string_view kInstancePath = "/instance";
constexpr std::string_view kVersionsPath = "/versions";
constexpr std::string_view kAdminPrefix = "/_emulator/";

constexpr std::array<const char*, 4> kNewestVersions = {"2023-07-01", "2023-04-01", "2021-12-13", "2018-02-01"};

// The part after a case-insensitive "/metadata", or nullopt when the path is not under it.
std::optional<std::string_view> under_metadata(std::string_view path) {
    constexpr std::string_view prefix = "/metadata";
    if (path.size() < prefix.size() || !iequals(path.substr(0, prefix.size()), prefix)) return std::nullopt;
    std::string_view rest = path.substr(prefix.size());
    if (!rest.empty() && rest.front() != '/') return std::nullopt;  // "/metadataX"
    return rest;
}

bool valid_api_version(std::string_view v) {
    // YYYY-MM-DD with an optional "-preview"-style suffix.
    if (v.size() < 10) return false;
    for (size_t i = 0; i < 10; ++i) {
        bool dash = i == 4 || i == 7;
        if (dash ? v[i] != '-' : !std::isdigit(static_cast<unsigned char>(v[i]))) return false;
    }
    return v.size() == 10 || v[10] == '-';
}

// The instance/versions family reports a missing api-version in its own shape.
HttpResponse missing_api_version(const HttpRequest& req) {
    nlohmann::json body = {
        {"error", "Bad request. api-version was not specified in the request. For more information refer to "
                  "aka.ms/azureimds"},
        {"newest-versions", kNewestVersions},
    };
    return json_response(req, 400, body.dump());
}

std::string uuid_from(std::string_view bytes) {
    std::string b(bytes.substr(0, 16));
    b.resize(16, '\0');
    auto u = [&](int i) { return static_cast<unsigned>(static_cast<unsigned char>(b[static_cast<size_t>(i)])); };
    char out[37];
    std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u(0), u(1),
                  u(2), u(3), u(4), u(5), (u(6) & 0x0f) | 0x40, u(7), (u(8) & 0x3f) | 0x80, u(9), u(10), u(11), u(12),
                  u(13), u(14), u(15));
    return out;
}

struct SelectorParam {
    const char* name;
    Selector selector;
};
constexpr std::array<SelectorParam, 4> kSelectors = {{
    {"client_id", Selector::client_id},
    {"object_id", Selector::object_id},
    {"msi_res_id", Selector::resource_id},
    {"mi_res_id", Selector::resource_id},  // accepted alias of msi_res_id
}};

ImdsOutcome answer_token(const HttpRequest& req, const Target& target, const ImdsContext& ctx) {
    ImdsOutcome out{HttpResponse{}, Route::token, param(target, "client_id").value_or(""),
                    param(target, "resource").value_or("")};
    auto fail = [&](unsigned status, std::string_view error, std::string_view description) {
        out.response = imds_error(req, status, error, description);
        return std::move(out);
    };

    if (req.method() != http::verb::get) {
        out.response = imds_error(req, 405, "method_not_allowed", "Only GET is supported on this endpoint");
        out.response.set(http::field::allow, "GET");
        return out;
    }
    // IMDS refuses to be used behind a proxy.
    if (req.find("X-Forwarded-For") != req.end()) {
        return fail(400, "invalid_request", "Request must not contain an X-Forwarded-For header");
    }
    auto metadata = req.find("Metadata");
    if (metadata == req.end() || metadata->value() != "true") {
        return fail(400, "invalid_request", "Required metadata header not specified");
    }
    if (auto dup = duplicate_param(target)) {
        return fail(400, "invalid_request", "Query parameter '" + *dup + "' appears more than once");
    }
    auto api_version = param(target, "api-version");
    if (!api_version || api_version->empty()) {
        return fail(400, "invalid_request", "Required query variable 'api-version' is missing");
    }
    if (!valid_api_version(*api_version)) {
        return fail(400, "invalid_request", "Bad request. api-version '" + *api_version + "' is invalid");
    }
    if (out.resource.empty()) return fail(400, "invalid_request", "Required query variable 'resource' is missing");

    const SelectorParam* chosen = nullptr;
    std::string value;
    for (const auto& s : kSelectors) {
        auto v = param(target, s.name);
        if (!v) continue;
        if (chosen) {
            return fail(400, "invalid_request",
                        std::string("Only one of client_id, object_id, msi_res_id may be given; got ") +
                            chosen->name + " and " + s.name);
        }
        chosen = &s;
        value = *v;
    }
    const EmulatedIdentity* identity = ctx.identities.find(chosen ? chosen->selector : Selector::none, value);
    if (!identity) return fail(400, "invalid_request", "Identity not found");
    out.client_id = identity->client_id;

    auto jwt = ctx.signer.sign(token_claims(*identity, out.resource, ctx));
    if (!jwt) return fail(500, "server_error", "Emulator could not sign the token: " + jwt.error().message);

    // Every field is a JSON string on IMDS, numbers included.
    nlohmann::json body = {
        {"access_token", *jwt},
        {"client_id", identity->client_id},
        {"expires_in", std::to_string(ctx.token_lifetime)},
        {"expires_on", std::to_string(ctx.now + ctx.token_lifetime)},
        {"ext_expires_in", std::to_string(ctx.token_lifetime)},
        {"not_before", std::to_string(ctx.now)},
        {"resource", out.resource},
        {"token_type", "Bearer"},
    };
    out.response = json_response(req, 200, body.dump());
    return out;
}

ImdsOutcome answer_metadata_doc(const HttpRequest& req, const Target& target, Route route, std::string_view sub_path,
                                const ImdsContext& ctx) {
    ImdsOutcome out{HttpResponse{}, route, "", ""};
    if (req.method() != http::verb::get) {
        out.response = imds_error(req, 405, "method_not_allowed", "Only GET is supported on this endpoint");
        out.response.set(http::field::allow, "GET");
        return out;
    }
    auto metadata = req.find("Metadata");
    if (metadata == req.end() || metadata->value() != "true") {
        out.response = imds_error(req, 400, "invalid_request", "Required metadata header not specified");
        return out;
    }
    if (auto dup = duplicate_param(target)) {
        out.response = imds_error(req, 400, "invalid_request", "Query parameter '" + *dup + "' appears more than once");
        return out;
    }
    if (route == Route::versions) {
        out.response = json_response(req, 200, nlohmann::json{{"apiVersions", kNewestVersions}}.dump());
        return out;
    }
    auto api_version = param(target, "api-version");
    if (!api_version || !valid_api_version(*api_version)) {
        out.response = missing_api_version(req);
        return out;
    }
    if (route == Route::identity_info) {
        out.response = json_response(req, 200, nlohmann::json{{"tenantId", ctx.tenant_id}}.dump());
        return out;
    }
    out.response = answer_instance(req, target, sub_path, ctx.identities.vm());
    return out;
}

}  // namespace

const char* to_string(Route route) {
    switch (route) {
        case Route::token: return "token";
        case Route::identity_info: return "identity_info";
        case Route::instance: return "instance";
        case Route::versions: return "versions";
        case Route::admin: return "admin";
        case Route::not_found: return "not_found";
    }
    return "not_found";
}

Route route_of(std::string_view target) {
    std::string_view path = target.substr(0, target.find('?'));
    if (path.substr(0, kAdminPrefix.size()) == kAdminPrefix) return Route::admin;
    auto rest = under_metadata(path);
    if (!rest) return Route::not_found;
    if (*rest == kTokenPath) return Route::token;
    if (*rest == kInfoPath) return Route::identity_info;
    if (*rest == kVersionsPath) return Route::versions;
    if (rest->substr(0, kInstancePath.size()) == kInstancePath &&
        (rest->size() == kInstancePath.size() || (*rest)[kInstancePath.size()] == '/')) {
        return Route::instance;
    }
    return Route::not_found;
}

nlohmann::json token_claims(const EmulatedIdentity& identity, std::string_view resource, const ImdsContext& ctx) {
    nlohmann::json claims = {
        {"aud", resource},
        {"iss", "https://sts.windows.net/" + ctx.tenant_id + "/"},
        {"iat", ctx.now},
        {"nbf", ctx.now},
        {"exp", ctx.now + ctx.token_lifetime},
        {"aio", "podid-emulator"},
        {"appid", identity.client_id},
        {"appidacr", "2"},
        {"idp", "https://sts.windows.net/" + ctx.tenant_id + "/"},
        {"idtyp", "app"},
        {"oid", identity.object_id},
        {"sub", identity.object_id},
        {"tid", ctx.tenant_id},
        {"uti", base64url_encode(ctx.token_id)},
        {"jti", uuid_from(ctx.token_id)},
        {"ver", "1.0"},
        {"xms_mirid", identity.resource_id},
    };
    return claims;
}

ImdsOutcome answer_imds(const HttpRequest& req, const ImdsContext& ctx) {
    Target target = split_target(req.target());
    Route route = route_of(target.path);
    switch (route) {
        case Route::token: return answer_token(req, target, ctx);
        case Route::identity_info:
        case Route::versions: return answer_metadata_doc(req, target, route, "", ctx);
        case Route::instance: {
            std::string_view rest = *under_metadata(target.path);
            return answer_metadata_doc(req, target, route, rest.substr(kInstancePath.size()), ctx);
        }
        case Route::admin:
        case Route::not_found: break;
    }
    return ImdsOutcome{imds_error(req, 404, "not_found", "No IMDS endpoint at " + target.path), Route::not_found, "",
                       ""};
}

}  // namespace podid::emulator
