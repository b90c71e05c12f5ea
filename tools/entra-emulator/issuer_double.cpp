#include "issuer_double.h"

#include <algorithm>
#include <cctype>

#include "crypto.h"

namespace podid::entra_emulator {
namespace {

bool valid_issuer_name(const std::string& name) {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_';
    });
}

nlohmann::json kubernetes_claim(const std::string& subject) {
    constexpr std::string_view kPrefix = "system:serviceaccount:";
    if (subject.rfind(kPrefix, 0) != 0)
        return nullptr;
    std::string rest = subject.substr(kPrefix.size());
    size_t colon = rest.find(':');
    if (colon == std::string::npos)
        return nullptr;
    std::string ns = rest.substr(0, colon), sa = rest.substr(colon + 1);
    return {{"namespace", ns}, {"serviceaccount", {{"name", sa}, {"uid", uuid_from_seed("sa:" + subject)}}}};
}

}  // namespace

Result<IssuerTokenSpec> parse_issuer_token_spec(const nlohmann::json& json) {
    if (!json.is_object())
        return make_error("a token request must be a JSON object");
    IssuerTokenSpec spec;
    if (json.contains("sub")) {
        if (!json["sub"].is_string())
            return make_error("'sub' must be a string");
        spec.subject = json["sub"].get<std::string>();
    }
    if (json.contains("aud")) {
        const auto& aud = json["aud"];
        if (aud.is_string()) {
            spec.audiences = {aud.get<std::string>()};
        } else if (aud.is_array() && std::all_of(aud.begin(), aud.end(), [](const auto& a) { return a.is_string(); })) {
            spec.audiences = aud.get<std::vector<std::string>>();
        } else {
            return make_error("'aud' must be a string or an array of strings");
        }
    }
    for (auto [field, target] :
         {std::pair{"lifetime", &spec.lifetime}, std::pair{"issued_offset", &spec.issued_offset}}) {
        if (!json.contains(field))
            continue;
        if (!json[field].is_number_integer())
            return make_error(std::string("'") + field + "' must be an integer");
        *target = json[field].get<int64_t>();
    }
    if (json.contains("with_iat")) {
        if (!json["with_iat"].is_boolean())
            return make_error("'with_iat' must be true or false");
        spec.with_iat = json["with_iat"].get<bool>();
    }
    if (json.contains("extra_claims")) {
        if (!json["extra_claims"].is_object())
            return make_error("'extra_claims' must be an object");
        spec.extra_claims = json["extra_claims"];
    }
    return spec;
}

Result<std::string> IssuerRegistry::add(const std::string& name, const std::string& origin) {
    if (!valid_issuer_name(name))
        return make_error("issuer name '" + name + "' must be 1-64 letters, digits, '-' or '_'");
    std::lock_guard lock(mu_);
    auto it = issuers_.find(name);
    if (it != issuers_.end())
        return it->second.url;
    auto signer = emulator::TokenSigner::generate();
    if (!signer)
        return signer.error();
    std::string url = origin + "/_issuers/" + name;
    issuers_[name] = Issuer{url, std::make_shared<emulator::TokenSigner>(std::move(*signer))};
    return url;
}

std::optional<std::string> IssuerRegistry::url(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = issuers_.find(name);
    if (it == issuers_.end())
        return std::nullopt;
    return it->second.url;
}

Result<std::string> IssuerRegistry::mint(const std::string& name, const IssuerTokenSpec& spec, int64_t now) const {
    Issuer issuer;
    {
        std::lock_guard lock(mu_);
        auto it = issuers_.find(name);
        if (it == issuers_.end())
            return make_error("no issuer named '" + name + "'");
        issuer = it->second;
    }
    int64_t iat = now + spec.issued_offset;
    nlohmann::json claims = {{"iss", issuer.url}, {"sub", spec.subject},        {"aud", spec.audiences},
                             {"nbf", iat},        {"exp", iat + spec.lifetime}, {"jti", random_uuid()}};
    if (spec.with_iat)
        claims["iat"] = iat;
    if (auto k8s = kubernetes_claim(spec.subject); !k8s.is_null())
        claims["kubernetes.io"] = k8s;
    claims.update(spec.extra_claims);
    return issuer.signer->sign(claims);
}

HttpResponse IssuerRegistry::answer(const HttpRequest& req, const std::vector<std::string>& segments) const {
    Issuer issuer;
    {
        std::lock_guard lock(mu_);
        auto it = segments.size() >= 2 ? issuers_.find(segments[1]) : issuers_.end();
        if (it == issuers_.end())
            return text_response(req, 404, "404 page not found\n");
        issuer = it->second;
    }
    if (req.method() != boost::beast::http::verb::get)
        return text_response(req, 405, "method not allowed\n");
    bool discovery = segments.size() == 4 && segments[2] == ".well-known" && segments[3] == "openid-configuration";
    bool keys = segments.size() == 5 && segments[2] == "openid" && segments[3] == "v1" && segments[4] == "jwks";
    if (discovery) {
        // The fields a Kubernetes API server publishes for its service-account issuer.
        nlohmann::json doc = {{"issuer", issuer.url},
                              {"jwks_uri", issuer.url + "/openid/v1/jwks"},
                              {"response_types_supported", {"id_token"}},
                              {"subject_types_supported", {"public"}},
                              {"id_token_signing_alg_values_supported", {"RS256"}}};
        return json_response(req, 200, doc.dump());
    }
    if (keys)
        return json_response(req, 200, issuer.signer->jwks().dump());
    return text_response(req, 404, "404 page not found\n");
}

nlohmann::json IssuerRegistry::to_json() const {
    std::lock_guard lock(mu_);
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, issuer] : issuers_)
        out[name] = issuer.url;
    return out;
}

}  // namespace podid::entra_emulator
