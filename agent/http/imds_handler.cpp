#include "http/imds_handler.h"

#include <algorithm>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include "http/request_target.h"
#include "http/selfcheck_route.h"
#include "token/identity_select.h"
#include "token/token_body.h"

namespace podid {
namespace {

namespace http = boost::beast::http;
using Json = nlohmann::ordered_json;  // fields in IMDS's order, so responses diff cleanly against IMDS

constexpr const char* kJsonType = "application/json; charset=utf-8";

// IMDS's own wording: SDKs match on some of these (a 400 "Identity not found" ends a credential chain).
constexpr const char* kMetadataRequired = "Required metadata header not specified";
constexpr const char* kIdentityNotFound = "Identity not found";
constexpr const char* kInvalidRequest = "Invalid request";

HttpResponse make_response(const HttpRequest& req, unsigned status, const char* content_type, std::string body) {
    HttpResponse res{static_cast<http::status>(status), req.version()};
    res.set(http::field::server, "podid");
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

HttpResponse json_response(const HttpRequest& req, unsigned status, const Json& body) {
    // Query values are echoed back (resource, parameter names) and may be any bytes: never throw on them.
    return make_response(req, status, kJsonType, body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

Reply deny(const HttpRequest& req, unsigned status, const std::string& description, Reason reason) {
    return Reply{imds_error(req, status, "invalid_request", description), reason};
}

enum class MetadataHeader { absent, wrong, ok };

MetadataHeader metadata_header(const HttpRequest& req) {
    size_t count = req.count("Metadata");
    if (count == 0) {
        return MetadataHeader::absent;
    }
    // Exactly one, exactly "true": a second header could be read either way by whoever comes next.
    return count == 1 && req["Metadata"] == "true" ? MetadataHeader::ok : MetadataHeader::wrong;
}

bool has_forwarded_for(const HttpRequest& req) { return req.count("X-Forwarded-For") > 0; }

Reply method_not_allowed(const HttpRequest& req) {
    Reply reply = deny(req, 405, "Method not allowed", Reason::deny_method);
    reply.response.set(http::field::allow, "GET");
    return reply;
}

// The query classify() parsed, or (a Classified made without one) parsed here into `storage`: never copied.
const Result<ImdsQuery>& query_of(const HttpRequest& req, const Classified& what,
                                  std::optional<Result<ImdsQuery>>& storage) {
    if (what.query)
        return *what.query;
    return storage.emplace(parse_imds_query(split_target(req.target()).query));
}

// An Entra ID identity whose tenant nobody named: say where to name it.
std::string no_tenant_description(const Identity& identity) {
    const EntraRef& c = *identity.entra;
    if (c.source == TokenSource::federated)
        return "Identity not found: no Entra ID tenant for client id " + identity.client_id +
               ": annotate service account " + c.pod_ns + "/" + c.service_account +
               " with azure.workload.identity/tenant-id, or start podid with --tenant-id";
    return "Identity not found: AzureIdentity " + identity.name + " has no tenantID";
}

Plan plan_token(const HttpRequest& req, const Classified& what, const Caller& caller, const Binding& binding) {
    if (what.path != kTokenPath) {
        return deny(req, 400, kInvalidRequest, Reason::deny_path);
    }
    // SDK probes carry no Metadata header and take any answer as "IMDS is here": answer at once.
    switch (metadata_header(req)) {
    case MetadataHeader::absent: return deny(req, 400, kMetadataRequired, Reason::ok_probe);
    case MetadataHeader::wrong: return deny(req, 400, kMetadataRequired, Reason::deny_missing_metadata);
    case MetadataHeader::ok: break;
    }
    if (has_forwarded_for(req)) {
        return deny(req, 400, "X-Forwarded-For header is not allowed", Reason::deny_forwarded_for);
    }
    if (req.method() != http::verb::get) {
        return method_not_allowed(req);
    }
    std::optional<Result<ImdsQuery>> parsed_here;
    const Result<ImdsQuery>& query = query_of(req, what, parsed_here);
    if (!query) {
        return deny(req, 400, query.error().message, Reason::deny_bad_request);
    }
    if (query->api_version.empty()) {
        return deny(req, 400, "Required query variable 'api-version' is missing", Reason::deny_bad_request);
    }
    if (query->resource.empty()) {
        return deny(req, 400, "Required query variable 'resource' is missing", Reason::deny_bad_request);
    }
    // Without the kernel's record of who connected, nobody is anybody: never guess.
    if (!caller.origin) {
        return deny(req, 400, kIdentityNotFound, Reason::deny_no_origin);
    }
    if (binding.kind == BindingKind::none) {
        return deny(req, 400, kIdentityNotFound, Reason::deny_no_binding);
    }
    if (binding.kind == BindingKind::node_identity) {
        return FetchToken{token_key_for(query->selector, query->resource), Identity{}, query->bypass_cache, false,
                          Reason::ok_node_identity};
    }
    std::optional<Identity> identity = select_identity(binding, query->selector);
    if (!identity) {
        // Selected by an AzureIdentityBinding whose identities this agent cannot serve (service principal types):
        // the client sees IMDS's "Identity not found", the audit log and the operator see why.
        if (binding.kind == BindingKind::aad_pod_identity && binding.identities.empty())
            return deny(
                req, 400, kIdentityNotFound,
                binding.unsupported_identities ? Reason::deny_unsupported_identity : Reason::deny_identity_missing);
        return deny(req, 400, kIdentityNotFound,
                    query->selector.kind == IdentitySelector::Kind::none ? Reason::deny_no_binding
                                                                         : Reason::deny_identity_not_bound);
    }
    std::optional<TokenKey> key = token_key_for(*identity, query->resource);
    if (!key) {
        return deny(req, 400, kIdentityNotFound, Reason::deny_unsupported_identity);
    }
    if (key->entra && key->entra->tenant.empty()) {
        return deny(req, 400, no_tenant_description(*identity), Reason::deny_tenant_unknown);
    }
    return FetchToken{std::move(*key), std::move(*identity), query->bypass_cache, false, Reason::ok_bound_identity};
}

// `binding` is the named pod's, looked up only when the caller is allowed to ask.
Plan plan_host_token(const HttpRequest& req, const Classified& what, const Binding& binding,
                     const HandlerOptions& options) {
    if (!options.loopback_listener) {
        return deny(req, 404, "Not found", Reason::deny_path);
    }
    switch (options.host_token_access) {
    case HostTokenAccess::not_served:
        return Reply{imds_error(req, 404, "not_found", "/host/token is served only in Kubernetes mode"),
                     Reason::deny_path};
    case HostTokenAccess::refused:
        return Reply{imds_error(req, 403, "forbidden", "caller is not allowed to request tokens for other pods"),
                     Reason::deny_host_token_caller};
    case HostTokenAccess::allowed: break;
    }
    if (has_forwarded_for(req)) {
        return deny(req, 400, "X-Forwarded-For header is not allowed", Reason::deny_forwarded_for);
    }
    if (req.method() != http::verb::get) {
        return method_not_allowed(req);
    }
    if (req["podns"].empty() || req["podname"].empty()) {
        return deny(req, 400, "Required headers podns and podname not specified", Reason::deny_bad_request);
    }
    std::optional<Result<ImdsQuery>> parsed_here;
    const Result<ImdsQuery>& query = query_of(req, what, parsed_here);
    if (!query) {
        return deny(req, 400, query.error().message, Reason::deny_bad_request);
    }
    if (query->resource.empty()) {
        return deny(req, 400, "Required query variable 'resource' is missing", Reason::deny_bad_request);
    }
    if (binding.kind == BindingKind::none) {
        return deny(req, 404, kIdentityNotFound, Reason::deny_host_token_pod);
    }
    // A pod excepted with AzurePodIdentityException reaches IMDS as the node itself; /host/token never hands the
    // node's identity to a caller that merely names such a pod (NMI answered 404 too).
    if (binding.kind == BindingKind::node_identity) {
        return deny(req, 404, kIdentityNotFound, Reason::deny_host_token_pod);
    }
    // The CSI provider names a pod, not an identity: it gets the pod's default one.
    std::optional<Identity> identity = select_identity(binding, IdentitySelector{});
    if (!identity) {
        return deny(req, 404, kIdentityNotFound, Reason::deny_host_token_pod);
    }
    std::optional<TokenKey> key = token_key_for(*identity, query->resource);
    if (!key) {
        return deny(req, 404, kIdentityNotFound, Reason::deny_unsupported_identity);
    }
    if (key->entra && key->entra->tenant.empty()) {
        return deny(req, 404, no_tenant_description(*identity), Reason::deny_tenant_unknown);
    }
    return FetchToken{std::move(*key), std::move(*identity), query->bypass_cache, true, Reason::ok_bound_identity};
}

// Forwarded unchanged, method included (scheduled events are acknowledged with POST).
Plan plan_forward(const HttpRequest& req, const Classified& what, const HandlerOptions& options) {
    if (what.kind == RequestKind::instance_metadata && options.block_instance_metadata) {
        return Reply{imds_error(req, 403, "forbidden", "Request blocked by podid"), Reason::deny_instance_blocked};
    }
    if (metadata_header(req) != MetadataHeader::ok) {
        return deny(req, 400, kMetadataRequired, Reason::deny_missing_metadata);
    }
    if (has_forwarded_for(req)) {
        return deny(req, 400, "X-Forwarded-For header is not allowed", Reason::deny_forwarded_for);
    }
    return Forward{Reason::ok_forwarded};
}

std::string generated_error(int status, std::string& error) {
    if (status == 429) {
        error = "too_many_requests";
        return "Too many requests";
    }
    if (status >= 500) {
        error = "server_error";
        return "Failed to obtain a token from the instance metadata service";
    }
    error = "invalid_request";
    return "Failed to obtain a token";
}

// The body for a served token: the cache's rendering when the fallbacks change nothing (IMDS always sends both
// fields), else rendered here.
std::string token_body(const FetchToken& plan, const Token& token, int64_t now) {
    const std::string& client_id =
        !token.client_id.empty() ? token.client_id
                                 : (!plan.identity.client_id.empty() ? plan.identity.client_id : plan.key.client_id);
    // Older azure-identity reads `resource` with no fallback: never leave it empty.
    const std::string& resource = token.resource.empty() ? plan.key.resource : token.resource;
    if (const TokenRendering* r = token.rendering.get(); r && r->client_id == client_id && r->resource == resource)
        return (plan.host_token_shape ? r->host : r->imds).at(now);
    return TokenBody(token, client_id, resource, plan.host_token_shape).at(now);
}

}  // namespace

Lookups lookups_for(const HttpRequest& req, const Classified& what, bool loopback_listener) {
    Lookups l;
    switch (what.kind) {
    case RequestKind::selfcheck: l.resolve_caller = false; break;
    // Probes (no Metadata header) never wait for the pod directory; identity requests may.
    case RequestKind::token:
        if (what.path == kTokenPath && req["Metadata"] == "true") {
            l.may_wait = true;
            l.binding = BindingNeeded::caller;
        }
        break;
    // So may host-token requests: the caller's pod decides whether it may ask, and one that arrives before the watch
    // has delivered that pod (just after the agent starts) must wait for it rather than be refused.
    case RequestKind::host_token:
        if (loopback_listener) {
            l.may_wait = true;
            l.binding = BindingNeeded::named_pod;
        }
        break;
    default: break;
    }
    return l;
}

Classified classify(const HttpRequest& req) {
    if (req.target() == kSelfCheckTarget) {
        Classified out;
        out.kind = RequestKind::selfcheck;
        out.path = std::string(kSelfCheckTarget);
        return out;
    }
    SplitTarget target = split_target(req.target());
    RoutedPath routed = route_path(target.path);
    Classified out;
    out.path = std::move(routed.path);
    switch (routed.route) {
    case Route::token:
        out.kind = metadata_header(req) == MetadataHeader::absent ? RequestKind::probe : RequestKind::token;
        break;
    // An odd spelling of the identity endpoint is still an attempt at it; plan_request refuses it because
    // its path is not the token path.
    case Route::rejected: out.kind = RequestKind::token; break;
    case Route::host_token: out.kind = RequestKind::host_token; break;
    case Route::instance_metadata: out.kind = RequestKind::instance_metadata; break;
    case Route::other_metadata: out.kind = RequestKind::other_metadata; break;
    case Route::health: out.kind = RequestKind::health; break;
    case Route::unknown: out.kind = RequestKind::unknown; break;
    }
    if (out.kind == RequestKind::token || out.kind == RequestKind::probe || out.kind == RequestKind::host_token) {
        out.query = parse_imds_query(target.query);
        if (const Result<ImdsQuery>& query = *out.query) {
            out.resource = query->resource;
            out.requested_identity = query->selector.to_string();
        }
    }
    return out;
}

Plan plan_request(const HttpRequest& req, const Classified& what, const Caller& caller, const Binding& binding,
                  const HandlerOptions& options) {
    switch (what.kind) {
    case RequestKind::token:
    case RequestKind::probe: return plan_token(req, what, caller, binding);
    case RequestKind::host_token: return plan_host_token(req, what, binding, options);
    case RequestKind::instance_metadata:
    case RequestKind::other_metadata: return plan_forward(req, what, options);
    case RequestKind::health:
        // Liveness only: a session that knows readiness answers /readyz itself before asking here.
        return Reply{make_response(req, 200, "text/plain; charset=utf-8", "ok\n"), Reason::ok_probe};
    case RequestKind::selfcheck: {
        HttpResponse res{http::status::ok, req.version()};
        res.set(http::field::server, "podid");
        res.set(http::field::content_type, "text/plain");
        res.body() = selfcheck_body(caller.origin ? caller.origin->cgroup_id : 0);
        res.prepare_payload();
        return Reply{std::move(res), Reason::ok_probe};
    }
    case RequestKind::unknown: break;
    }
    return Reply{imds_error(req, 404, "not_found", "Not found"), Reason::deny_path};
}

HttpResponse render_token(const HttpRequest& req, const FetchToken& plan, const TokenOutcome& outcome, int64_t now) {
    if (outcome.token) {
        return make_response(req, 200, kJsonType, token_body(plan, *outcome.token, now));
    }
    // A provider that reports failure with a success status is a bug; the client must still see a failure.
    unsigned status = outcome.status >= 400 && outcome.status <= 599 ? static_cast<unsigned>(outcome.status) : 500;
    if (!outcome.error_body.empty()) {
        return make_response(req, status, kJsonType, outcome.error_body);
    }
    std::string error;
    std::string description = generated_error(static_cast<int>(status), error);
    return imds_error(req, status, error, description);
}

HttpResponse imds_error(const HttpRequest& req, unsigned status, const std::string& error,
                        const std::string& description) {
    return json_response(req, status, Json{{"error", error}, {"error_description", description}});
}

}  // namespace podid
