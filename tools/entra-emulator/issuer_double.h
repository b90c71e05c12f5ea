// Test issuers the emulator can host, standing in for a Kubernetes service-account issuer: under
// /_issuers/{name} an OIDC discovery document and a JWKS (the paths a cluster's issuer serves), and tokens
// signed with the issuer's own RSA key, shaped like projected service-account tokens. A federated credential
// naming the issuer URL makes the emulator fetch these over HTTPS like any external issuer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "http.h"
#include "imds-emulator/jwt.h"

namespace podid::entra_emulator {

struct IssuerTokenSpec {
    std::string subject = "system:serviceaccount:default:default";
    std::vector<std::string> audiences = {"api://AzureADTokenExchange"};
    int64_t lifetime = 3600;
    int64_t issued_offset = 0;  // added to now for iat and nbf (negative: issued in the past)
    bool with_iat = true;
    nlohmann::json extra_claims = nlohmann::json::object();  // merged last (may override anything)
};

Result<IssuerTokenSpec> parse_issuer_token_spec(const nlohmann::json& json);

class IssuerRegistry {
public:
    // Creates issuer `name` (letters, digits, '-', '_') at origin + "/_issuers/" + name with a fresh RSA-2048
    // key; an existing name keeps its key. Returns the issuer URL.
    Result<std::string> add(const std::string& name, const std::string& origin);
    std::optional<std::string> url(const std::string& name) const;
    // A compact JWS with iss, sub, aud (an array, as Kubernetes sends it), iat, nbf, exp, jti and, for
    // "system:serviceaccount:NS:SA" subjects, the kubernetes.io claim.
    Result<std::string> mint(const std::string& name, const IssuerTokenSpec& spec, int64_t now) const;
    // GET /_issuers/{name}/.well-known/openid-configuration and /_issuers/{name}/openid/v1/jwks.
    HttpResponse answer(const HttpRequest& req, const std::vector<std::string>& segments) const;
    nlohmann::json to_json() const;

private:
    struct Issuer {
        std::string url;
        std::shared_ptr<emulator::TokenSigner> signer;
    };
    mutable std::mutex mu_;
    std::map<std::string, Issuer> issuers_;
};

}  // namespace podid::entra_emulator
