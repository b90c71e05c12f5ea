#include "admin_api.h"

namespace podid::entra_emulator {
namespace http = boost::beast::http;
namespace {

HttpResponse admin_error(const HttpRequest& req, unsigned status, const std::string& message) {
    return json_response(req, status, nlohmann::json{{"error", message}}.dump());
}

Result<nlohmann::json> json_body(const HttpRequest& req) {
    auto json = nlohmann::json::parse(req.body(), nullptr, false);
    if (json.is_discarded())
        return make_error("the body must be JSON");
    return json;
}

}  // namespace

HttpResponse answer_admin(const HttpRequest& req, AdminContext& ctx) {
    SplitTarget target = split_request_target(req.target());
    const auto& s = target.segments;
    http::verb method = req.method();
    auto only = [&](http::verb allowed, const char* name) -> std::optional<HttpResponse> {
        if (method == allowed)
            return std::nullopt;
        auto res = admin_error(req, 405, std::string("use ") + name + " on " + target.path);
        res.set(http::field::allow, name);
        return res;
    };

    if (s.size() == 1 && s[0] == "stats") {
        if (auto r = only(http::verb::get, "GET"))
            return *r;
        return json_response(req, 200, to_json(ctx.stats.snapshot()).dump());
    }
    if (s.size() == 1 && s[0] == "reset") {
        if (auto r = only(http::verb::post, "POST"))
            return *r;
        ctx.stats.reset();
        return json_response(req, 200, R"({"reset":true})");
    }
    if (s.size() == 1 && s[0] == "faults") {
        if (method == http::verb::get)
            return json_response(req, 200, to_json(ctx.faults.current()).dump());
        if (auto r = only(http::verb::post, "GET, POST"))
            return *r;
        auto spec = parse_fault(std::string_view(req.body()));
        if (!spec)
            return admin_error(req, 400, spec.error().message);
        ctx.faults.set(*spec);
        return json_response(req, 200, to_json(*spec).dump());
    }
    if (s.size() == 1 && s[0] == "directory") {
        if (auto r = only(http::verb::get, "GET"))
            return *r;
        return json_response(req, 200, ctx.directory.to_json().dump());
    }
    if (s.size() == 1 && s[0] == "tenants") {
        if (auto r = only(http::verb::post, "POST"))
            return *r;
        auto body = json_body(req);
        auto tenant = body ? parse_tenant(*body) : Result<Tenant>(body.error());
        if (!tenant)
            return admin_error(req, 400, tenant.error().message);
        ctx.directory.add_tenant(*tenant);
        return json_response(req, 201, nlohmann::json{{"id", tenant->id}, {"names", tenant->names}}.dump());
    }
    if (s.size() == 1 && s[0] == "apps") {
        if (auto r = only(http::verb::post, "POST"))
            return *r;
        auto body = json_body(req);
        auto app = body ? parse_app(*body) : Result<App>(body.error());
        if (!app)
            return admin_error(req, 400, app.error().message);
        std::string tenant = app->tenant_id, client_id = app->client_id;
        if (auto r = ctx.directory.add_app(std::move(*app)); !r)
            return admin_error(req, 400, r.error().message);
        auto tenant_id = ctx.directory.find_tenant(tenant);
        auto added = tenant_id ? ctx.directory.find_app(tenant_id->id, client_id) : std::nullopt;
        return json_response(req, 201, added ? to_json(*added).dump() : "{}");
    }
    if (s.size() == 3 && s[0] == "apps") {
        if (auto r = only(http::verb::delete_, "DELETE"))
            return *r;
        if (!ctx.directory.remove_app(s[1], s[2]))
            return admin_error(req, 404, "no app " + s[2] + " in tenant " + s[1]);
        return json_response(req, 200, R"({"removed":true})");
    }
    if (s.size() == 1 && s[0] == "ca.pem") {
        if (auto r = only(http::verb::get, "GET"))
            return *r;
        if (ctx.ca_pem.empty())
            return admin_error(req, 404, "the emulator serves a given certificate; it made no CA");
        return text_response(req, 200, ctx.ca_pem, "application/x-pem-file");
    }
    if (s.size() == 1 && s[0] == "keys") {
        if (auto r = only(http::verb::get, "GET"))
            return *r;
        return json_response(req, 200, ctx.signer.jwks().dump());
    }
    if (s.size() == 1 && s[0] == "issuers") {
        if (method == http::verb::get)
            return json_response(req, 200, ctx.issuers.to_json().dump());
        if (auto r = only(http::verb::post, "GET, POST"))
            return *r;
        auto body = json_body(req);
        if (!body || !body->is_object() || !body->contains("name") || !(*body)["name"].is_string())
            return admin_error(req, 400, "POST /issuers needs {\"name\":\"...\"}");
        auto url = ctx.issuers.add((*body)["name"].get<std::string>(), ctx.origin);
        if (!url)
            return admin_error(req, 400, url.error().message);
        return json_response(req, 201, nlohmann::json{{"issuer", *url}}.dump());
    }
    if (s.size() == 3 && s[0] == "issuers" && s[2] == "token") {
        if (auto r = only(http::verb::post, "POST"))
            return *r;
        auto body = req.body().empty() ? Result<nlohmann::json>(nlohmann::json::object()) : json_body(req);
        auto spec = body ? parse_issuer_token_spec(*body) : Result<IssuerTokenSpec>(body.error());
        if (!spec)
            return admin_error(req, 400, spec.error().message);
        auto token = ctx.issuers.mint(s[1], *spec, ctx.now);
        if (!token)
            return admin_error(req, 404, token.error().message);
        return json_response(req, 200, nlohmann::json{{"token", *token}}.dump());
    }
    return admin_error(req, 404, "no admin endpoint at " + target.path);
}

}  // namespace podid::entra_emulator
