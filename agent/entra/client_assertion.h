// The signed JWT a service principal presents instead of a secret when it authenticates with a certificate
// (AAD Pod Identity's AzureIdentity type 2): RFC 7523 client authentication, as Entra ID's v2 token endpoint takes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/types.h>

#include "common/result.h"

namespace podid::entra {

// Whether a PKCS#12 file sealed with algorithms OpenSSL 3 keeps in its "legacy" provider (RC2-40-CBC, typical of
// files exported by older Windows and by `openssl pkcs12 -export` before 3.0) may be opened with that provider.
enum class LegacyPkcs12 { load_if_needed, refuse };

// A certificate and its RSA private key, loaded once and used to sign many assertions (from any thread).
class ClientCertificate {
public:
    // A PEM bundle holding the certificate and its private key, in any order (other certificates, e.g. a chain, may
    // be there too: the one whose public key matches the private key is used). `password` opens an encrypted key.
    static Result<ClientCertificate> from_pem(std::string_view pem, std::string_view password = {});

    // PKCS#12 bytes and their password, as NMI read them from a Secret's `certificate` and `password` keys.
    // A file that needs the legacy provider is opened with it (loaded into a private library context, so the rest
    // of the process does not gain RC2 or DES) when `legacy` allows and the provider is installed; otherwise the
    // error says so and how to re-export the file with AES.
    static Result<ClientCertificate> from_pkcs12(std::string_view der, std::string_view password,
                                                 LegacyPkcs12 legacy = LegacyPkcs12::load_if_needed);

    const std::string& der() const { return der_; }                     // the certificate, DER
    const std::string& sha256_thumbprint() const { return x5t_s256_; }  // base64url SHA-256 of der(): x5t#S256
    const std::string& sha1_thumbprint() const { return x5t_; }         // base64url SHA-1 of der(): x5t
    EVP_PKEY* key() const { return key_.get(); }

private:
    // Checks that `key` is RSA and belongs to `cert`, and derives the DER and thumbprints.
    static Result<ClientCertificate> assemble(X509* cert, std::shared_ptr<EVP_PKEY> key);

    std::shared_ptr<EVP_PKEY> key_;
    std::string der_;
    std::string x5t_s256_;
    std::string x5t_;
};

struct AssertionClaims {
    std::string audience;                // aud: the token endpoint URL the assertion is sent to
    std::string client_id;               // iss and sub: the application (client) id
    int64_t now = 0;                     // epoch seconds: nbf and iat
    std::chrono::seconds lifetime{600};  // exp = now + lifetime
    std::string jti;                     // empty: a random UUID v4 (Entra rejects a replayed jti)
};

// header {"alg":"RS256","typ":"JWT","x5t":<SHA-1>,"x5t#S256":<SHA-256>} (x5t for tenants and tools that still look
// for the SHA-1 thumbprint, as MSAL sends it), claims {aud, exp, iat, iss, jti, nbf, sub}, RS256 signature.
Result<std::string> make_client_assertion(const ClientCertificate& certificate, const AssertionClaims& claims);

// RFC 4648 §5 without padding.
std::string base64url_encode(std::string_view bytes);

// RFC 9562 version 4 (random), lower-case hex.
std::string random_uuid_v4();

}  // namespace podid::entra
