// OpenSSL at the emulator's edge: owning pointers, digests, certificates, and compact JWS (RS256 and PS256)
// signing and verification with an explicit key. Errors carry OpenSSL's first reason.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace podid::entra_emulator {

struct PkeyFree {
    void operator()(EVP_PKEY* key) const;
};
struct X509Free {
    void operator()(X509* cert) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
// Keys shared by the copies of an app registration that requests take.
using SharedPkey = std::shared_ptr<EVP_PKEY>;

// `what` plus OpenSSL's first queued reason; drains the thread's error queue.
Error openssl_error(const std::string& what);

// Raw digests (20 and 32 bytes).
std::string sha1_digest(std::string_view data);
std::string sha256_digest(std::string_view data);
std::string hex_upper(std::string_view bytes);
// A random RFC 4122 version-4 UUID in lower case, as Entra's trace and correlation ids.
std::string random_uuid();
// A UUID-shaped name derived from `seed` (stable across restarts), for object ids nobody configured.
std::string uuid_from_seed(std::string_view seed);

Result<X509Ptr> parse_certificate_pem(std::string_view pem);
Result<PkeyPtr> parse_private_key_pem(std::string_view pem);
std::string certificate_der(X509* cert);
// notBefore / notAfter as "MM/DD/YYYY HH:MM:SS", the form Entra prints in AADSTS700027 ("Found key 'Start=...'").
std::string certificate_validity(X509* cert);

// The JWS algorithms Entra accepts for certificate credentials.
enum class JwsAlg { rs256, ps256 };
std::optional<JwsAlg> jws_alg_from_name(std::string_view name);
const char* jws_alg_name(JwsAlg alg);

// `header.claims` signed with `key`; `header` gets "alg" set from `alg`.
Result<std::string> sign_jws(EVP_PKEY* key, nlohmann::json header, const nlohmann::json& claims, JwsAlg alg);
// True when the compact JWS's signature verifies with `key` under `alg` (PS256: MGF1-SHA256, salt = 32 bytes,
// RFC 7518 §3.5).
bool verify_jws_signature(std::string_view token, EVP_PKEY* key, JwsAlg alg);

// Standard (not URL) base64 decoding, for HTTP Basic credentials.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace podid::entra_emulator
