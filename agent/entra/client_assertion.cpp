#include "entra/client_assertion.h"

#include <array>
#include <cstring>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

namespace podid::entra {

namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
void free_bio(BIO* bio) { BIO_free(bio); }
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, free_bio>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Pkcs12Ptr = std::unique_ptr<PKCS12, Deleter<PKCS12, PKCS12_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;

void free_cert_stack(STACK_OF(X509) * stack) { sk_X509_pop_free(stack, X509_free); }
using CertStackPtr = std::unique_ptr<STACK_OF(X509), Deleter<STACK_OF(X509), free_cert_stack>>;

constexpr const char* kReexport =
    "re-export it with AES, e.g. `openssl pkcs12 -legacy -in old.pfx -nodes -out both.pem` on a machine that has "
    "the legacy provider, then `openssl pkcs12 -export -in both.pem -certpbe AES-256-CBC -keypbe AES-256-CBC "
    "-macalg SHA256 -out new.pfx` (or export from Windows choosing AES256-SHA256)";

// OpenSSL's error queue, emptied: the oldest error (the cause; later ones add context), and whether any says "this
// algorithm is not available here", which is what OpenSSL 3 reports for RC2 or DES without the legacy provider
// (ERR_R_UNSUPPORTED from the cipher fetch, with EVP or PKCS12 context around it).
struct OpensslErrors {
    std::string first = "unknown OpenSSL error";
    bool unsupported = false;
};

OpensslErrors drain_openssl_errors() {
    OpensslErrors out;
    bool any = false;
    while (unsigned long code = ERR_get_error()) {
        if (!any) {
            char text[256];
            ERR_error_string_n(code, text, sizeof text);
            out.first = text;
            any = true;
        }
        const int reason = ERR_GET_REASON(code);
        if (reason == ERR_R_UNSUPPORTED || reason == ERR_R_FETCH_FAILED ||
            (ERR_GET_LIB(code) == ERR_LIB_EVP &&
             (reason == EVP_R_UNSUPPORTED_ALGORITHM || reason == EVP_R_UNKNOWN_CIPHER ||
              reason == EVP_R_UNSUPPORTED_CIPHER || reason == EVP_R_UNKNOWN_PBE_ALGORITHM)))
            out.unsupported = true;
    }
    return out;
}

std::string take_openssl_error() { return drain_openssl_errors().first; }

std::string digest(std::string_view bytes, const EVP_MD* md) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int size = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &size, md, nullptr) != 1)
        return {};
    return std::string(reinterpret_cast<const char*>(out.data()), size);
}

// PEM's password callback: never the terminal prompt OpenSSL falls back to without one.
int pem_password(char* buffer, int size, int /*rwflag*/, void* user) {
    const auto* password = static_cast<const std::string*>(user);
    if (password == nullptr || password->empty() || static_cast<int>(password->size()) > size)
        return -1;
    std::memcpy(buffer, password->data(), password->size());
    return static_cast<int>(password->size());
}

// A library context with the default and legacy providers, made on first use and kept for the process's life
// (keys opened in it are re-imported into the default context, but a second file may need it again). Null, with
// the reason, when the legacy provider is not installed (Debian ships it in libssl3 as ossl-modules/legacy.so).
// Freed at exit, before OpenSSL's own atexit cleanup (registered earlier, so it runs later): otherwise what the
// legacy provider allocated outlives the library and LeakSanitizer reports it.
struct LegacyContext {
    OSSL_LIB_CTX* context = nullptr;
    OSSL_PROVIDER* providers[2] = {nullptr, nullptr};  // default, legacy: each load holds a reference
    std::string error;

    LegacyContext() = default;
    LegacyContext(LegacyContext&& other) noexcept
        : context(std::exchange(other.context, nullptr)),
          providers{std::exchange(other.providers[0], nullptr), std::exchange(other.providers[1], nullptr)},
          error(std::move(other.error)) {}
    LegacyContext& operator=(LegacyContext&&) = delete;
    ~LegacyContext() { release(); }
    void release() {
        for (OSSL_PROVIDER*& p : providers)
            if (p != nullptr)
                OSSL_PROVIDER_unload(std::exchange(p, nullptr));
        if (context != nullptr)
            OSSL_LIB_CTX_free(std::exchange(context, nullptr));
    }
};

const LegacyContext& legacy_context() {
    static const LegacyContext instance = [] {
        LegacyContext out;
        out.context = OSSL_LIB_CTX_new();
        if (out.context == nullptr) {
            out.error = take_openssl_error();
            return out;
        }
        out.providers[0] = OSSL_PROVIDER_load(out.context, "default");
        out.providers[1] = out.providers[0] ? OSSL_PROVIDER_load(out.context, "legacy") : nullptr;
        if (out.providers[1] == nullptr) {
            out.error = take_openssl_error();
            out.release();
        }
        return out;
    }();
    return instance;
}

struct Parsed {
    KeyPtr key;
    CertPtr cert;
    CertStackPtr others;
};

// PKCS12_parse in the thread's current default library context; false (queue left for the caller) on failure.
bool parse_pkcs12(const std::string_view der, const std::string& password, Parsed& out) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    Pkcs12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
    if (!p12)
        return false;
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    STACK_OF(X509)* others = nullptr;
    if (PKCS12_parse(p12.get(), password.c_str(), &key, &cert, &others) != 1)
        return false;
    out.key.reset(key);
    out.cert.reset(cert);
    out.others.reset(others);
    return true;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                           static_cast<uint8_t>(bytes[i + 2]);
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += kAlphabet[(n >> 6) & 63];
        out += kAlphabet[n & 63];
    }
    if (const std::size_t rest = bytes.size() - i; rest > 0) {
        uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16;
        if (rest == 2)
            n |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        if (rest == 2)
            out += kAlphabet[(n >> 6) & 63];
    }
    return out;
}

std::string random_uuid_v4() {
    std::array<unsigned char, 16> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
        return {};  // only when the CSPRNG cannot be seeded; make_client_assertion refuses an empty jti
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);  // version 4
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);  // variant 10
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out += '-';
        out += kHex[bytes[i] >> 4];
        out += kHex[bytes[i] & 0xf];
    }
    return out;
}

Result<ClientCertificate> ClientCertificate::assemble(X509* cert, std::shared_ptr<EVP_PKEY> key) {
    if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
        return make_error(std::string("the private key is ") + OBJ_nid2sn(EVP_PKEY_get_base_id(key.get())) +
                          ", not RSA: Entra ID client assertions are signed with RS256");
    if (X509_check_private_key(cert, key.get()) != 1) {
        ERR_clear_error();
        return make_error("the private key does not belong to the certificate");
    }
    unsigned char* der = nullptr;
    const int size = i2d_X509(cert, &der);
    if (size <= 0)
        return make_error("cannot encode the certificate: " + take_openssl_error());
    ClientCertificate out;
    out.der_.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size));
    OPENSSL_free(der);
    out.x5t_s256_ = base64url_encode(digest(out.der_, EVP_sha256()));
    out.x5t_ = base64url_encode(digest(out.der_, EVP_sha1()));
    if (out.x5t_s256_.empty() || out.x5t_.empty())
        return make_error("cannot hash the certificate: " + take_openssl_error());
    out.key_ = std::move(key);
    return out;
}

Result<ClientCertificate> ClientCertificate::from_pem(std::string_view pem, std::string_view password) {
    ERR_clear_error();
    const std::string pass(password);
    KeyPtr key;
    {
        BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
        if (bio)
            key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, pem_password, const_cast<std::string*>(&pass)));
    }
    if (!key) {
        const std::string cause = take_openssl_error();
        const bool encrypted = pem.find("ENCRYPTED") != std::string_view::npos;
        if (pem.find("PRIVATE KEY-----") == std::string_view::npos)
            return make_error("the PEM text has no PRIVATE KEY block");
        return make_error(std::string(encrypted && pass.empty() ? "the private key is encrypted and no password was "
                                                                  "given"
                                                                : "the private key does not load") +
                          ": " + cause);
    }
    // Every certificate in the bundle; the one that matches the key is the client's.
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    int certificates = 0;
    while (bio) {
        CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!cert)
            break;
        ++certificates;
        const bool match = X509_check_private_key(cert.get(), key.get()) == 1;
        ERR_clear_error();  // a mismatch before the match leaves its error
        if (match)
            return assemble(cert.get(), std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free));
    }
    ERR_clear_error();
    if (certificates == 0)
        return make_error("the PEM text has no CERTIFICATE block");
    return make_error("none of the " + std::to_string(certificates) +
                      " certificates in the PEM text belongs to its private key");
}

Result<ClientCertificate> ClientCertificate::from_pkcs12(std::string_view der, std::string_view password,
                                                         LegacyPkcs12 legacy) {
    ERR_clear_error();
    const std::string pass(password);
    {
        const auto* p = reinterpret_cast<const unsigned char*>(der.data());
        Pkcs12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
        if (!p12)
            return make_error("the bytes are not a PKCS#12 file (DER): " + take_openssl_error());
        // The MAC (HMAC-SHA1 or -SHA256, available without the legacy provider) tells a wrong password apart from
        // an algorithm OpenSSL cannot use.
        if (PKCS12_mac_present(p12.get()) && PKCS12_verify_mac(p12.get(), pass.c_str(), -1) != 1 &&
            (!pass.empty() || PKCS12_verify_mac(p12.get(), nullptr, 0) != 1)) {
            if (drain_openssl_errors().unsupported)
                return make_error(std::string("the PKCS#12 file's integrity check uses an algorithm OpenSSL 3 "
                                              "cannot use here: ") +
                                  kReexport);
            return make_error("the password does not open the PKCS#12 file (its integrity check fails)");
        }
    }
    ERR_clear_error();

    Parsed parsed;
    if (parse_pkcs12(der, pass, parsed)) {
        if (!parsed.key || !parsed.cert)
            return make_error("the PKCS#12 file has no private key with its certificate");
        return assemble(parsed.cert.get(), std::shared_ptr<EVP_PKEY>(parsed.key.release(), EVP_PKEY_free));
    }
    if (const OpensslErrors errors = drain_openssl_errors(); !errors.unsupported)
        return make_error("the PKCS#12 file does not open: " + errors.first);

    const std::string legacy_algorithms =
        "the PKCS#12 file is encrypted with an algorithm OpenSSL 3 keeps in its legacy provider (RC2-40 or DES, as "
        "older Windows exports are)";
    if (legacy == LegacyPkcs12::refuse)
        return make_error(legacy_algorithms + ", which podid is configured not to load: " + kReexport);
    const LegacyContext& context = legacy_context();
    if (context.context == nullptr)
        return make_error(legacy_algorithms + ", and that provider is not available here (" + context.error +
                          "): " + kReexport);
    // Only this thread, only for this call, sees the legacy algorithms; the key leaves the legacy context as
    // PKCS#8 DER and is imported again in the default one once the thread's context is restored.
    OSSL_LIB_CTX* previous = OSSL_LIB_CTX_set0_default(context.context);
    const bool ok = parse_pkcs12(der, pass, parsed);
    std::string error;
    unsigned char* key_der = nullptr;
    int key_size = 0;
    if (!ok)
        error = "the PKCS#12 file does not open even with OpenSSL's legacy provider: " + take_openssl_error();
    else if (!parsed.key || !parsed.cert)
        error = "the PKCS#12 file has no private key with its certificate";
    else if ((key_size = i2d_PrivateKey(parsed.key.get(), &key_der)) <= 0)
        error = "cannot re-encode the PKCS#12 private key: " + take_openssl_error();
    OSSL_LIB_CTX_set0_default(previous);
    if (!error.empty())
        return make_error(error);
    const unsigned char* p = key_der;
    KeyPtr key(d2i_AutoPrivateKey(nullptr, &p, key_size));
    OPENSSL_clear_free(key_der, static_cast<std::size_t>(key_size));
    if (!key)
        return make_error("cannot re-import the PKCS#12 private key: " + take_openssl_error());
    return assemble(parsed.cert.get(), std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free));
}

Result<std::string> make_client_assertion(const ClientCertificate& certificate, const AssertionClaims& claims) {
    if (certificate.key() == nullptr)
        return make_error("no certificate loaded");
    if (claims.audience.empty() || claims.client_id.empty())
        return make_error("a client assertion needs an audience and a client id");
    const std::string jti = claims.jti.empty() ? random_uuid_v4() : claims.jti;
    if (jti.empty())
        return make_error("no random bytes for the assertion's jti: " + take_openssl_error());

    const nlohmann::json header = {{"alg", "RS256"},
                                   {"typ", "JWT"},
                                   {"x5t", certificate.sha1_thumbprint()},
                                   {"x5t#S256", certificate.sha256_thumbprint()}};
    const nlohmann::json payload = {{"aud", claims.audience},
                                    {"exp", claims.now + claims.lifetime.count()},
                                    {"iat", claims.now},
                                    {"iss", claims.client_id},
                                    {"jti", jti},
                                    {"nbf", claims.now},
                                    {"sub", claims.client_id}};
    std::string token = base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());

    MdCtxPtr context(EVP_MD_CTX_new());
    std::size_t size = 0;
    if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, certificate.key()) != 1 ||
        EVP_DigestSign(context.get(), nullptr, &size, reinterpret_cast<const unsigned char*>(token.data()),
                       token.size()) != 1)
        return make_error("cannot sign the client assertion: " + take_openssl_error());
    std::string signature(size, '\0');
    if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                       reinterpret_cast<const unsigned char*>(token.data()), token.size()) != 1)
        return make_error("cannot sign the client assertion: " + take_openssl_error());
    signature.resize(size);
    token += '.';
    token += base64url_encode(signature);
    return token;
}

}  // namespace podid::entra
