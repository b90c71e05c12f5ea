// RS256 JWTs: the emulator signs its access tokens with one RSA key and publishes the public half as a JWKS,
// so tests can check a token the way a resource server would.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

using EVP_PKEY = struct evp_pkey_st;

namespace podid::emulator {

class TokenSigner {
public:
    static Result<TokenSigner> generate();  // a fresh RSA-2048 key
    static Result<TokenSigner> from_pem_file(const std::string& path);
    static Result<TokenSigner> from_pem(std::string_view pem);

    // base64url SHA-256 of the public key's DER encoding: stable for a key file across restarts.
    const std::string& key_id() const { return key_id_; }
    // Compact JWS `header.claims.signature` with header {"typ":"JWT","alg":"RS256","kid":key_id()}.
    Result<std::string> sign(const nlohmann::json& claims) const;
    // {"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":...,"n":...,"e":...}]}
    const nlohmann::json& jwks() const { return jwks_; }

private:
    struct KeyFree {
        void operator()(EVP_PKEY* key) const;
    };
    using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

    static Result<TokenSigner> adopt(KeyPtr key);
    TokenSigner(KeyPtr key, std::string key_id, nlohmann::json jwks);

    KeyPtr key_;
    std::string key_id_;
    nlohmann::json jwks_;
};

struct DecodedJwt {
    nlohmann::json header;
    nlohmann::json claims;
};

// Splits a compact JWS and verifies its RS256 signature against the JWKS key named by its `kid`.
// Claims (exp, aud, ...) are returned, not judged: callers decide what they expect.
Result<DecodedJwt> verify_jwt(std::string_view token, const nlohmann::json& jwks);

// Splits and decodes without checking the signature (for tools that only inspect claims).
Result<DecodedJwt> decode_jwt(std::string_view token);

}  // namespace podid::emulator
