// The API-server double's service-account signing key: RS256 JWTs shaped as kube-apiserver's token generator
// makes them (header {"alg":"RS256","kid":...} and no "typ"; kid = base64url SHA-256 of the public key's DER
// SubjectPublicKeyInfo), the JWKS it publishes at /openid/v1/jwks, and signature checks for tests.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace podid::test::kube {

struct DecodedJwt {
    nlohmann::json header;
    nlohmann::json claims;
};

// Splits a compact JWS and decodes header and claims without checking the signature.
Result<DecodedJwt> decode_jwt(std::string_view jwt);

class SigningKey {
public:
    // Makes no key yet: a 2048-bit RSA key takes a few hundred milliseconds, and most tests of the double never
    // ask for a token. The first use makes it; it then stays for the key's life (one cluster, one issuer key).
    SigningKey();
    ~SigningKey();
    SigningKey(const SigningKey&) = delete;
    SigningKey& operator=(const SigningKey&) = delete;

    // Compact JWS of `claims`, signed RS256.
    Result<std::string> sign(const nlohmann::json& claims) const;
    Result<std::string> key_id() const;
    // {"keys":[{"use":"sig","kty":"RSA","kid":...,"alg":"RS256","n":...,"e":...}]}
    Result<nlohmann::json> jwks() const;
    Result<std::string> public_key_pem() const;  // SubjectPublicKeyInfo ("BEGIN PUBLIC KEY")
    // Checks that `jwt` is RS256, names this key's kid and carries a valid signature; claims are returned, not
    // judged (exp, aud and iss are the caller's to check).
    Result<DecodedJwt> verify(std::string_view jwt) const;

private:
    struct Material;
    Result<const Material*> material() const;

    mutable std::mutex mu_;
    mutable std::unique_ptr<Material> material_;  // immutable once made
};

}  // namespace podid::test::kube
