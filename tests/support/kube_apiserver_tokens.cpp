#include "kube_apiserver_tokens.h"

#include <algorithm>
#include <ctime>
#include <utility>

namespace podid::test::kube {
namespace {

using nlohmann::json;
using Clock = std::chrono::system_clock;

constexpr const char* kGroup = "authentication.k8s.io";
constexpr const char* kApiVersion = "authentication.k8s.io/v1";
constexpr int64_t kDefaultExpiration = 3600;  // the API's default for spec.expirationSeconds
constexpr int64_t kMinExpiration = 10 * 60;   // validation's floor and ceiling
constexpr int64_t kMaxExpiration = int64_t{1} << 32;
constexpr int64_t kWarnOnlyExpiration = 3607;  // what kubelet asks for projected tokens by default
constexpr int64_t kExtendedExpiration = 365 * 24 * 60 * 60;
constexpr const char* kDiscoveryCacheControl = "public, max-age=3600";

struct BoundRef {
    std::string kind, api_version, name, uid;
};

struct TokenRequest {
    std::string name, ns;  // metadata, "" when not given
    std::vector<std::string> audiences;
    std::optional<int64_t> expiration;
    std::optional<BoundRef> bound;
};

std::string rfc3339(int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::string go_quote(const std::string& text) { return "\"" + text + "\""; }  // Go's %q for plain names

const char* go_json_type(const json& value) {
    switch (value.type()) {
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "bool";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    case json::value_t::null: return "null";
    default: return "number";
    }
}

// The decoder's refusal of a body field of the wrong JSON type, in kube-apiserver's words.
ApiStatus wrong_type(const json& value, const std::string& go_struct, const std::string& field,
                     const std::string& go_type) {
    return bad_request("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal " +
                       std::string(go_json_type(value)) + " into Go struct field " + go_struct + "." + field +
                       " of type " + go_type);
}

// A string member of `object` (absent and null read as ""); false when it is something else.
bool string_field(const json& object, const char* name, std::string& out) {
    auto it = object.find(name);
    if (it == object.end() || it->is_null())
        return true;
    if (!it->is_string())
        return false;
    out = it->get<std::string>();
    return true;
}

Outcome<TokenRequest> parse_token_request(const std::string& body) {
    json doc;
    try {
        doc = json::parse(body);
    } catch (const json::parse_error& e) {
        return bad_request(
            "the object provided is unrecognized (must be of type TokenRequest): couldn't get version/kind; json "
            "parse error: " +
            std::string(e.what()));
    }
    if (!doc.is_object())
        return bad_request(
            "the object provided is unrecognized (must be of type TokenRequest): couldn't get version/kind; json "
            "parse error: want a JSON object");
    std::string api_version, kind;
    if (!string_field(doc, "apiVersion", api_version) || !string_field(doc, "kind", kind))
        return bad_request(
            "the object provided is unrecognized (must be of type TokenRequest): apiVersion and kind "
            "must be strings");
    if (!kind.empty() && kind != "TokenRequest")
        return bad_request("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: no kind " +
                           go_quote(kind) + " is registered for version " + go_quote(kApiVersion));
    if (!api_version.empty() && api_version != kApiVersion)
        return bad_request("the API version in the data (" + api_version +
                           ") does not match the expected API version (" + kApiVersion + ")");

    TokenRequest req;
    const json metadata = doc.value("metadata", json());
    if (!metadata.is_null() && !metadata.is_object())
        return wrong_type(metadata, "TokenRequest", "metadata", "v1.ObjectMeta");
    if (metadata.is_object()) {
        if (!string_field(metadata, "name", req.name))
            return wrong_type(metadata["name"], "TokenRequest", "metadata.name", "string");
        if (!string_field(metadata, "namespace", req.ns))
            return wrong_type(metadata["namespace"], "TokenRequest", "metadata.namespace", "string");
    }
    const json spec = doc.value("spec", json());
    if (!spec.is_null() && !spec.is_object())
        return wrong_type(spec, "TokenRequest", "spec", "v1.TokenRequestSpec");
    if (!spec.is_object())
        return req;

    if (auto it = spec.find("audiences"); it != spec.end() && !it->is_null()) {
        if (!it->is_array())
            return wrong_type(*it, "TokenRequestSpec", "spec.audiences", "[]string");
        for (const auto& audience : *it) {
            if (!audience.is_string())
                return wrong_type(audience, "TokenRequestSpec", "spec.audiences", "string");
            req.audiences.push_back(audience.get<std::string>());
        }
    }
    if (auto it = spec.find("expirationSeconds"); it != spec.end() && !it->is_null()) {
        if (!it->is_number_integer())
            return wrong_type(*it, "TokenRequestSpec", "spec.expirationSeconds", "int64");
        req.expiration = it->get<int64_t>();
    }
    if (auto it = spec.find("boundObjectRef"); it != spec.end() && !it->is_null()) {
        if (!it->is_object())
            return wrong_type(*it, "TokenRequestSpec", "spec.boundObjectRef", "v1.BoundObjectReference");
        BoundRef ref;
        for (auto [name, out] : {std::pair{"kind", &ref.kind}, std::pair{"apiVersion", &ref.api_version},
                                 std::pair{"name", &ref.name}, std::pair{"uid", &ref.uid}})
            if (!string_field(*it, name, *out))
                return wrong_type((*it)[name], "BoundObjectReference", std::string("spec.boundObjectRef.") + name,
                                  "string");
        req.bound = std::move(ref);
    }
    return req;
}

// 422 Invalid with one field cause, as field.Invalid and errors.NewInvalid make it.
Reply invalid(const std::string& name, const std::string& field, const std::string& value, const std::string& detail) {
    std::string cause = "Invalid value: " + value + ": " + detail;
    ApiStatus status{
        422, "Invalid",
        std::string("TokenRequest.") + kGroup + " " + go_quote(name) + " is invalid: " + field + ": " + cause, name,
        "TokenRequest"};
    json body = status_json(status);
    body["details"]["group"] = kGroup;
    json one_cause = {{"reason", "FieldValueInvalid"}, {"message", cause}, {"field", field}};
    body["details"]["causes"] = json::array({one_cause});
    return json_reply(body, 422);
}

TokenReply refused(const ApiStatus& status) { return {status_reply(status), std::nullopt}; }
TokenReply refused(Reply reply) { return {std::move(reply), std::nullopt}; }

// A string member, "" when `object` is no object or the member is missing or of another type.
std::string str(const json& object, const char* name) {
    if (!object.is_object())
        return "";
    auto it = object.find(name);
    return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string meta_field(const json& object, const char* field) {
    auto it = object.find("metadata");
    return it == object.end() ? "" : str(*it, field);
}

std::string spec_field(const json& object, const char* field) {
    auto it = object.find("spec");
    return it == object.end() ? "" : str(*it, field);
}

json bound_ref_json(const BoundRef& ref) {  // the request's reference, echoed with its empty fields left out
    json out = json::object();
    for (const auto& [name, value] : {std::pair{"kind", ref.kind}, std::pair{"apiVersion", ref.api_version},
                                      std::pair{"name", ref.name}, std::pair{"uid", ref.uid}})
        if (!value.empty())
            out[name] = value;
    return out;
}

}  // namespace

ServiceAccountTokens::ServiceAccountTokens(TokenIssuerOptions options) : options_(std::move(options)) {}

void ServiceAccountTokens::set_max_expiration(std::chrono::seconds max) {
    std::lock_guard lock(mu_);
    options_.max_expiration = max;
}

TokenIssuerOptions ServiceAccountTokens::options() const {
    std::lock_guard lock(mu_);
    return options_;
}

std::string ServiceAccountTokens::issuer(const std::string& server_url) const {
    std::lock_guard lock(mu_);
    return options_.issuer.empty() ? server_url : options_.issuer;
}

// The steps and their order are kube-apiserver's: body name/namespace, service account, defaults, validation,
// bound object, cap, claims.
TokenReply ServiceAccountTokens::create_token(const std::string& ns, const std::string& service_account,
                                              const std::string& body, const ObjectStore& store,
                                              const std::string& server_url, Clock::time_point now) const {
    const TokenIssuerOptions opts = options();
    auto parsed = parse_token_request(body);
    if (auto* status = std::get_if<ApiStatus>(&parsed))
        return refused(*status);
    TokenRequest req = std::get<TokenRequest>(std::move(parsed));

    if (!req.name.empty() && req.name != service_account)
        return refused(invalid(service_account, "metadata.name", go_quote(req.name),
                               "must match the service account name if specified"));
    if (!req.ns.empty() && req.ns != ns)
        return refused(invalid(service_account, "metadata.namespace", go_quote(req.ns),
                               "must match the service account namespace if specified"));

    auto account = store.get(*resource_named("ServiceAccount"), ns, service_account);
    if (auto* status = std::get_if<ApiStatus>(&account))
        return refused(*status);

    const std::string iss = opts.issuer.empty() ? server_url : opts.issuer;
    const std::vector<std::string> api_audiences =
        opts.api_audiences.empty() ? std::vector<std::string>{iss} : opts.api_audiences;
    if (req.audiences.empty())
        req.audiences = api_audiences;
    int64_t expiration = req.expiration.value_or(kDefaultExpiration);
    // The real validation names no object here: its message reads TokenRequest.authentication.k8s.io "".
    if (expiration < kMinExpiration)
        return refused(invalid("", "spec.expirationSeconds", std::to_string(expiration),
                               "may not specify a duration less than 10 minutes"));
    if (expiration > kMaxExpiration)
        return refused(invalid("", "spec.expirationSeconds", std::to_string(expiration),
                               "may not specify a duration larger than 2^32 seconds"));

    json pod;  // null unless the token is bound to a pod
    if (req.bound) {
        const BoundRef& ref = *req.bound;
        size_t slash = ref.api_version.find('/');
        std::string group = slash == std::string::npos ? "" : ref.api_version.substr(0, slash);
        std::string version = slash == std::string::npos ? ref.api_version : ref.api_version.substr(slash + 1);
        std::string uid;
        if (group.empty() && ref.kind == "Pod") {
            auto got = store.get(*resource_named("Pod"), ns, ref.name);
            if (auto* status = std::get_if<ApiStatus>(&got))
                return refused(*status);
            pod = std::get<json>(std::move(got));
            // The real ServiceAccount admission plugin fills an empty serviceAccountName with "default" before a
            // pod is stored; pods a test puts in the double's store skip admission.
            std::string pod_account = spec_field(pod, "serviceAccountName");
            if (pod_account.empty())
                pod_account = "default";
            if (pod_account != service_account)
                return refused(bad_request("cannot bind token for serviceaccount " + go_quote(service_account) +
                                           " to pod running with different serviceaccount name."));
            uid = meta_field(pod, "uid");
        } else if (group.empty() && ref.kind == "Node") {
            return refused(bad_request(
                "cannot bind token to a Node object as the \"ServiceAccountTokenNodeBinding\" feature-gate is "
                "disabled"));
        } else if (group.empty() && ref.kind == "Secret") {
            // Secret-bound tokens are not modelled: every Secret reference is answered as a missing Secret would be.
            return refused(
                ApiStatus{404, "NotFound", "secrets " + go_quote(ref.name) + " not found", ref.name, "secrets"});
        } else {
            return refused(
                bad_request("cannot bind token to object of type " + group + "/" + version + ", Kind=" + ref.kind));
        }
        if (!ref.uid.empty() && ref.uid != uid)
            return refused(ApiStatus{409, "Conflict",
                                     "Operation cannot be fulfilled on " + ref.kind + " " + go_quote(ref.name) +
                                         ": the UID in the bound object reference (" + ref.uid +
                                         ") does not match the UID in record. The object might have been deleted "
                                         "and then recreated",
                                     ref.name, ref.kind});
    }

    std::vector<std::pair<std::string, std::string>> headers;
    if (opts.max_expiration.count() > 0 && expiration > opts.max_expiration.count()) {
        headers.emplace_back("Warning", "299 - \"requested expiration of " + std::to_string(expiration) +
                                            " seconds shortened to " + std::to_string(opts.max_expiration.count()) +
                                            " seconds\"");
        expiration = opts.max_expiration.count();
    }
    int64_t lifetime = expiration;
    int64_t warn_after = 0;
    bool api_audiences_only = std::all_of(req.audiences.begin(), req.audiences.end(), [&](const std::string& a) {
        return std::find(api_audiences.begin(), api_audiences.end(), a) != api_audiences.end();
    });
    if (opts.extend_expiration && !pod.is_null() && expiration == kWarnOnlyExpiration && api_audiences_only) {
        warn_after = expiration;
        lifetime = kExtendedExpiration;
    }

    const int64_t iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const json& account_object = std::get<json>(account);
    json k8s = {{"namespace", ns},
                {"serviceaccount", {{"name", service_account}, {"uid", meta_field(account_object, "uid")}}}};
    if (!pod.is_null()) {
        k8s["pod"] = {{"name", meta_field(pod, "name")}, {"uid", meta_field(pod, "uid")}};
        // The real server adds the pod's node; with no Node object (the double keeps none) only its name.
        if (std::string node = spec_field(pod, "nodeName"); !node.empty())
            k8s["node"] = {{"name", node}};
    }
    if (warn_after != 0)
        k8s["warnafter"] = iat + warn_after;
    std::string jti = new_uid();
    json claims = {{"aud", req.audiences}, {"exp", iat + lifetime},
                   {"iat", iat},           {"iss", iss},
                   {"jti", jti},           {"kubernetes.io", k8s},
                   {"nbf", iat},           {"sub", "system:serviceaccount:" + ns + ":" + service_account}};
    auto token = key_.sign(claims);
    if (!token)
        return refused(ApiStatus{500, "InternalError",
                                 "Internal error occurred: failed to generate token: " + token.error().message, "",
                                 ""});

    json spec = {{"audiences", req.audiences}, {"expirationSeconds", expiration}};
    if (req.bound)
        spec["boundObjectRef"] = bound_ref_json(*req.bound);
    json answer = {{"kind", "TokenRequest"},
                   {"apiVersion", kApiVersion},
                   {"metadata", {{"name", service_account}, {"namespace", ns}, {"creationTimestamp", rfc3339(iat)}}},
                   {"spec", spec},
                   {"status", {{"token", *token}, {"expirationTimestamp", rfc3339(iat + expiration)}}}};
    TokenReply out{json_reply(answer, 201), IssuedToken{}};
    out.reply.headers = std::move(headers);
    IssuedToken& issued = *out.issued;
    issued.ns = ns;
    issued.service_account = service_account;
    issued.audiences = req.audiences;
    if (!pod.is_null()) {
        issued.bound_kind = "Pod";
        issued.bound_name = meta_field(pod, "name");
        issued.bound_uid = meta_field(pod, "uid");
    }
    issued.expiration_seconds = expiration;
    issued.issued_at = Clock::time_point(std::chrono::seconds(iat));
    issued.expires_at = Clock::time_point(std::chrono::seconds(iat + expiration));
    issued.jti = jti;
    issued.token = *token;
    return out;
}

Reply ServiceAccountTokens::openid_configuration(const std::string& server_url) const {
    const TokenIssuerOptions opts = options();
    json doc = {{"issuer", opts.issuer.empty() ? server_url : opts.issuer},
                {"jwks_uri", opts.jwks_uri.empty() ? server_url + "/openid/v1/jwks" : opts.jwks_uri},
                {"response_types_supported", json::array({"id_token"})},
                {"subject_types_supported", json::array({"public"})},
                {"id_token_signing_alg_values_supported", json::array({"RS256"})}};
    Reply reply = json_reply(doc);
    reply.headers = {{"Cache-Control", kDiscoveryCacheControl}};
    return reply;
}

Reply ServiceAccountTokens::jwks() const {
    auto keys = key_.jwks();
    if (!keys)
        return status_reply({500, "InternalError", "Internal error occurred: " + keys.error().message, "", ""});
    return {200, "application/jwk-set+json", keys->dump(), {{"Cache-Control", kDiscoveryCacheControl}}};
}

}  // namespace podid::test::kube
