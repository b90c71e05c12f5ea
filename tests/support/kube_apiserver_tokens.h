// The API-server double's service-account token issuer: the TokenRequest subresource
// (POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token, authentication.k8s.io/v1) and the issuer's OIDC
// discovery documents (/.well-known/openid-configuration, /openid/v1/jwks), answered as kube-apiserver 1.30 does
// with its default feature gates: tokens carry `jti` and, for a pod on a node, `kubernetes.io.node`; binding to a
// Node is refused. Pure functions of the request, the store, the options, the key and the clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kube_apiserver_jwt.h"
#include "kube_apiserver_resources.h"
#include "kube_apiserver_store.h"

namespace podid::test::kube {

// kube-apiserver's flags of the same meaning.
struct TokenIssuerOptions {
    // --service-account-issuer: `iss` of every token. Empty: the double's own URL, so that a verifier that follows
    // the issuer to its discovery document finds this server.
    std::string issuer;
    // --service-account-jwks-uri. Empty: https://<server address>/openid/v1/jwks, as the real server derives it.
    std::string jwks_uri;
    // --api-audiences: what a TokenRequest without audiences gets. Empty: {issuer}, the real default.
    std::vector<std::string> api_audiences;
    // --service-account-max-token-expiration: longer requests are shortened to it, with a Warning header (the
    // real flag wants at least 1 h; the double takes any value so tests can make short-lived tokens). 0: no cap.
    std::chrono::seconds max_expiration{0};
    // --service-account-extend-token-expiration (on by default): a pod-bound token asked for 3607 s with only
    // API audiences gets a year, with kubernetes.io.warnafter at 3607 s (kubelet's projected-token migration).
    bool extend_expiration = true;
};

// One token the double minted.
struct IssuedToken {
    std::string ns;
    std::string service_account;
    std::vector<std::string> audiences;
    std::string bound_kind;  // "Pod", or "" for a token bound to the service account alone
    std::string bound_name;
    std::string bound_uid;                            // the object's uid (the request may have left it out)
    int64_t expiration_seconds = 0;                   // granted: after the cap, as spec.expirationSeconds in the answer
    std::chrono::system_clock::time_point issued_at;  // iat, nbf (whole seconds)
    std::chrono::system_clock::time_point expires_at;  // status.expirationTimestamp
    std::string jti;
    std::string token;
};

struct TokenReply {
    Reply reply;
    std::optional<IssuedToken> issued;  // set when a token was minted (201)
};

class ServiceAccountTokens {
public:
    explicit ServiceAccountTokens(TokenIssuerOptions options = {});

    void set_max_expiration(std::chrono::seconds max);
    // The issuer URL: the configured one, else `server_url`.
    std::string issuer(const std::string& server_url) const;
    const SigningKey& key() const { return key_; }

    // `body` is the JSON TokenRequest; `server_url` is "https://host:port" of the double.
    TokenReply create_token(const std::string& ns, const std::string& service_account, const std::string& body,
                            const ObjectStore& store, const std::string& server_url,
                            std::chrono::system_clock::time_point now) const;
    Reply openid_configuration(const std::string& server_url) const;
    Reply jwks() const;

private:
    TokenIssuerOptions options() const;

    mutable std::mutex mu_;  // guards options_ (the cap changes at run time)
    TokenIssuerOptions options_;
    SigningKey key_;
};

}  // namespace podid::test::kube
