#include "token_endpoint.h"

#include <utility>

#include "access_token.h"
#include "client_credentials.h"
#include "crypto.h"
#include "federation.h"

namespace podid::entra_emulator {
namespace asio = boost::asio;
namespace {

constexpr std::string_view kJwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct ClientAuth {
    std::string client_id;
    std::optional<std::string> secret;
};

// client_secret_post (form fields) or client_secret_basic (RFC 6749 §2.3.1: form-encoded id and secret, base64).
ClientAuth client_auth_of(const HttpRequest& req, const Params& form) {
    ClientAuth auth{form_value(form, "client_id").value_or(""), form_value(form, "client_secret")};
    auto header = req.find(boost::beast::http::field::authorization);
    if (header == req.end())
        return auth;
    std::string_view value = header->value();
    constexpr std::string_view kBasic = "Basic ";
    if (value.substr(0, kBasic.size()) != kBasic)
        return auth;
    auto decoded = base64_decode(value.substr(kBasic.size()));
    size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos)
        return auth;
    Params pair = parse_form("u=" + decoded->substr(0, colon) + "&p=" + decoded->substr(colon + 1));
    if (auth.client_id.empty())
        auth.client_id = pair[0].second;
    if (!auth.secret)
        auth.secret = pair[1].second;
    return auth;
}

std::vector<std::string> token_endpoint_audiences(const std::string& origin, const std::string& segment,
                                                  const Tenant& tenant) {
    std::vector<std::string> names = {segment, tenant.id};
    names.insert(names.end(), tenant.names.begin(), tenant.names.end());
    std::vector<std::string> out;
    for (const auto& name : names) {
        // The v2.0 endpoint the assertion is sent to, and the v1 one Entra still accepts as audience.
        out.push_back(origin + "/" + name + "/oauth2/v2.0/token");
        out.push_back(origin + "/" + name + "/oauth2/token");
    }
    return out;
}

TokenOutcome failure(TokenOutcome out, EntraError err) {
    out.error = std::move(err);
    return out;
}

}  // namespace

std::string requested_client_id(const HttpRequest& req) {
    return client_auth_of(req, parse_form(req.body())).client_id;
}

asio::awaitable<TokenOutcome> answer_token_request(const HttpRequest& req, std::string tenant_segment,
                                                   TokenEndpointContext ctx) {
    Params form = parse_form(req.body());
    ClientAuth auth = client_auth_of(req, form);
    TokenOutcome out;
    out.client_id = auth.client_id;
    out.credential = "none";

    auto grant_type = form_value(form, "grant_type");
    if (!grant_type)
        co_return failure(out, errors::missing_parameter("grant_type"));
    if (*grant_type != "client_credentials")
        co_return failure(out, errors::unsupported_grant_type(*grant_type));
    auto tenant = ctx.directory.find_tenant(tenant_segment);
    if (!tenant)
        co_return failure(out, errors::tenant_not_found(tenant_segment));
    if (auth.client_id.empty())
        co_return failure(out, errors::missing_parameter("client_id"));
    auto scope = form_value(form, "scope");
    if (!scope || scope->empty())
        co_return failure(out, errors::missing_parameter("scope"));
    if (scope->find(' ') != std::string::npos)
        co_return failure(out, errors::scope_many_resources(*scope));
    auto resource = resource_of_scope(*scope);
    if (!resource)
        co_return failure(out, errors::scope_not_default(*scope));
    auto app = ctx.directory.find_app(tenant->id, auth.client_id);
    if (!app)
        co_return failure(out, errors::app_not_found(auth.client_id, tenant_segment));

    CredentialKind kind = CredentialKind::secret;
    auto assertion = form_value(form, "client_assertion");
    if (assertion) {
        // Entra's answer to a request carrying both a secret and an assertion is not documented; the
        // assertion is judged here and the secret ignored.
        auto type = form_value(form, "client_assertion_type");
        if (!type)
            co_return failure(out, errors::missing_parameter("client_assertion_type"));
        if (*type != kJwtBearer)
            co_return failure(out, errors::bad_assertion_type(*type));
        auto jwt = emulator::decode_jwt(*assertion);
        if (!jwt)
            co_return failure(out, errors::malformed_assertion("JWT token is invalid or malformed."));
        if (is_own_assertion(jwt->claims, app->client_id)) {
            kind = CredentialKind::certificate;
            out.credential = credential_name(kind);
            AssertionRules rules{token_endpoint_audiences(ctx.origin, tenant_segment, *tenant), ctx.now,
                                 ctx.clock_skew};
            if (auto err = check_certificate_assertion(*app, *assertion, *jwt, rules))
                co_return failure(out, std::move(*err));
        } else {
            kind = CredentialKind::federated;
            out.credential = credential_name(kind);
            if (auto err = match_federated_credential(*app, jwt->claims))
                co_return failure(out, std::move(*err));
            std::string issuer = jwt->claims.value("iss", "");
            auto jwks = co_await ctx.issuer_keys.jwks(issuer, false);
            if (jwks && !jwks_has_kid(*jwks, jwt->header.value("kid", "")))
                jwks = co_await ctx.issuer_keys.jwks(issuer, true);  // the issuer may have rotated its key
            if (!jwks)
                co_return failure(out, errors::external_oidc_failed());
            if (auto err = check_federated_token(*assertion, *jwt, *jwks, ctx.now, ctx.clock_skew))
                co_return failure(out, std::move(*err));
        }
    } else if (auth.secret) {
        out.credential = credential_name(kind);
        if (auto err = check_client_secret(*app, *auth.secret))
            co_return failure(out, std::move(*err));
    } else {
        co_return failure(out, errors::no_credential());
    }

    auto token =
        ctx.signer.sign(access_token_claims(*app, *resource, kind, ctx.now, ctx.token_lifetime, random_uuid()));
    if (!token)
        co_return failure(out, errors::server_fault(500));
    out.body = token_response_body(*token, ctx.token_lifetime).dump();
    co_return out;
}

}  // namespace podid::entra_emulator
