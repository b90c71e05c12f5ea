// Client certificates (PEM bundles, PKCS#12 with AES and with the legacy RC2-40) and the RS256 client assertion made
// with them. Keys and certificates are made here with OpenSSL; nothing is read from disk.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include "entra/client_assertion.h"

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
using LibCtxPtr = std::unique_ptr<OSSL_LIB_CTX, Deleter<OSSL_LIB_CTX, OSSL_LIB_CTX_free>>;
struct ProviderUnload {
    void operator()(OSSL_PROVIDER* p) const { OSSL_PROVIDER_unload(p); }
};
using ProviderPtr = std::unique_ptr<OSSL_PROVIDER, ProviderUnload>;

KeyPtr rsa_key() { return KeyPtr(EVP_RSA_gen(2048)); }

CertPtr self_signed(EVP_PKEY* key, const char* cn) {
    CertPtr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key);
    X509_sign(cert.get(), key, EVP_sha256());
    return cert;
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

std::string cert_pem(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert);
    return bio_text(bio.get());
}

std::string key_pem(EVP_PKEY* key, const char* password = nullptr) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PKCS8PrivateKey(bio.get(), key, password ? EVP_aes_256_cbc() : nullptr, nullptr, 0, nullptr,
                                  const_cast<char*>(password));
    return bio_text(bio.get());
}

std::string cert_der(X509* cert) {
    unsigned char* der = nullptr;
    const int size = i2d_X509(cert, &der);
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size));
    OPENSSL_free(der);
    return out;
}

// PKCS12_create in `context` (null: the default one) with the given PBE algorithms for key and certificate.
std::string pkcs12(EVP_PKEY* key, X509* cert, const char* password, int key_nid, int cert_nid,
                   OSSL_LIB_CTX* context = nullptr) {
    Pkcs12Ptr p12(
        PKCS12_create_ex(password, "podid-test", key, cert, nullptr, key_nid, cert_nid, 0, 0, 0, context, nullptr));
    if (!p12)
        return {};
    unsigned char* der = nullptr;
    const int size = i2d_PKCS12(p12.get(), &der);
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size));
    OPENSSL_free(der);
    return out;
}

std::string base64url_decode(std::string text) {
    for (auto& c : text)
        c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (text.size() % 4 != 0)
        text += '=';
    std::string out(text.size(), '\0');
    const int size =
        EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (size < 0)
        return "<not base64>";
    out.resize(static_cast<std::size_t>(size) - std::count(text.end() - 2, text.end(), '='));
    return out;
}

std::string thumbprint(X509* cert, const EVP_MD* md) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int size = 0;
    X509_digest(cert, md, out.data(), &size);
    return base64url_encode(std::string(reinterpret_cast<const char*>(out.data()), size));
}

std::vector<std::string> split(const std::string& text, char at) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= text.size(); ++i)
        if (i == text.size() || text[i] == at) {
            parts.push_back(text.substr(start, i - start));
            start = i + 1;
        }
    return parts;
}

AssertionClaims claims(std::string audience, std::string client_id, int64_t now,
                       std::chrono::seconds lifetime = std::chrono::seconds(600), std::string jti = "") {
    AssertionClaims out;
    out.audience = std::move(audience);
    out.client_id = std::move(client_id);
    out.now = now;
    out.lifetime = lifetime;
    out.jti = std::move(jti);
    return out;
}

struct Identity {
    KeyPtr key = rsa_key();
    CertPtr cert = self_signed(key.get(), "podid-test-sp");
};

const Identity& identity() {
    static const Identity instance;
    return instance;
}

TEST(EntraClientAssertion, Base64UrlHasNoPaddingAndTheUrlAlphabet) {
    struct Row {
        std::string in, out;
    };
    const Row rows[] = {{"", ""},
                        {"f", "Zg"},
                        {"fo", "Zm8"},
                        {"foo", "Zm9v"},
                        {"foob", "Zm9vYg"},
                        {"\xfb\xff", "-_8"},
                        {"\xfb\xef\xbe", "----"},
                        {"\xff\xff\xff", "____"}};
    for (const auto& row : rows)
        EXPECT_EQ(base64url_encode(row.in), row.out);
}

TEST(EntraClientAssertion, RandomUuidsAreVersion4) {
    const std::regex shape("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
    const std::string a = random_uuid_v4(), b = random_uuid_v4();
    EXPECT_TRUE(std::regex_match(a, shape)) << a;
    EXPECT_TRUE(std::regex_match(b, shape)) << b;
    EXPECT_NE(a, b);
}

TEST(EntraClientAssertion, LoadsPemBundlesInAnyOrder) {
    const Identity& id = identity();
    KeyPtr other_key = rsa_key();
    CertPtr other = self_signed(other_key.get(), "some-ca");
    const std::string cert = cert_pem(id.cert.get()), key = key_pem(id.key.get());
    struct Row {
        const char* name;
        std::string pem;
        std::string password;
    };
    const Row rows[] = {
        {"certificate then key", cert + key, ""},
        {"key then certificate", key + cert, ""},
        {"another certificate first", cert_pem(other.get()) + key + cert, ""},
        {"encrypted key", cert + key_pem(id.key.get(), "s3cret"), "s3cret"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        auto loaded = ClientCertificate::from_pem(row.pem, row.password);
        ASSERT_TRUE(loaded) << loaded.error().message;
        EXPECT_EQ(loaded->der(), cert_der(id.cert.get()));
        EXPECT_EQ(loaded->sha256_thumbprint(), thumbprint(id.cert.get(), EVP_sha256()));
        EXPECT_EQ(loaded->sha1_thumbprint(), thumbprint(id.cert.get(), EVP_sha1()));
        EXPECT_EQ(loaded->sha256_thumbprint().size(), 43u);
    }
}

TEST(EntraClientAssertion, RefusesPemThatCannotSign) {
    const Identity& id = identity();
    KeyPtr other_key = rsa_key();
    KeyPtr ec_key(EVP_EC_gen("P-256"));
    CertPtr ec_cert = self_signed(ec_key.get(), "ec");
    const std::string cert = cert_pem(id.cert.get());
    struct Row {
        const char* name;
        std::string pem;
        std::string password;
        std::string error;
    };
    const Row rows[] = {
        {"no key", cert, "", "no PRIVATE KEY block"},
        {"no certificate", key_pem(id.key.get()), "", "no CERTIFICATE block"},
        {"key of another certificate", cert + key_pem(other_key.get()), "", "none of the 1 certificates"},
        {"encrypted key, no password", cert + key_pem(id.key.get(), "s3cret"), "", "encrypted and no password"},
        {"encrypted key, wrong password", cert + key_pem(id.key.get(), "s3cret"), "nope", "does not load"},
        {"EC key", cert_pem(ec_cert.get()) + key_pem(ec_key.get()), "", "not RSA"},
        {"not PEM", "hello", "", "no PRIVATE KEY block"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        auto loaded = ClientCertificate::from_pem(row.pem, row.password);
        ASSERT_FALSE(loaded);
        EXPECT_NE(loaded.error().message.find(row.error), std::string::npos) << loaded.error().message;
        EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL's error queue is left clean";
    }
}

TEST(EntraClientAssertion, Pkcs12WithAesRoundTrips) {
    const Identity& id = identity();
    const std::string der = pkcs12(id.key.get(), id.cert.get(), "pfx-pass", NID_aes_256_cbc, NID_aes_256_cbc);
    ASSERT_FALSE(der.empty());
    auto loaded = ClientCertificate::from_pkcs12(der, "pfx-pass");
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->der(), cert_der(id.cert.get()));
    EXPECT_EQ(loaded->sha256_thumbprint(), thumbprint(id.cert.get(), EVP_sha256()));

    auto wrong = ClientCertificate::from_pkcs12(der, "not-it");
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message.find("password does not open"), std::string::npos) << wrong.error().message;

    const std::string no_password = pkcs12(id.key.get(), id.cert.get(), "", NID_aes_256_cbc, NID_aes_256_cbc);
    auto empty = ClientCertificate::from_pkcs12(no_password, "");
    EXPECT_TRUE(empty) << empty.error().message;

    auto garbage = ClientCertificate::from_pkcs12("not a pfx", "x");
    ASSERT_FALSE(garbage);
    EXPECT_NE(garbage.error().message.find("not a PKCS#12 file"), std::string::npos) << garbage.error().message;
}

TEST(EntraClientAssertion, Pkcs12WithRc2UsesTheLegacyProviderOnlyForThatFile) {
    // The file is made the way older Windows exports it: certificates under RC2-40-CBC, the key under 3DES.
    LibCtxPtr legacy(OSSL_LIB_CTX_new());
    // Unloaded before the context is freed (declared after it): each load holds a reference.
    ProviderPtr default_provider(OSSL_PROVIDER_load(legacy.get(), "default"));
    ProviderPtr legacy_provider(default_provider ? OSSL_PROVIDER_load(legacy.get(), "legacy") : nullptr);
    if (!legacy_provider) {
        ERR_clear_error();
        GTEST_SKIP() << "OpenSSL's legacy provider (ossl-modules/legacy.so, part of libssl3) is not installed: "
                        "an RC2-40 PKCS#12 file cannot even be made";
    }
    const Identity& id = identity();
    const std::string der = pkcs12(id.key.get(), id.cert.get(), "old-windows", NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                                   NID_pbe_WithSHA1And40BitRC2_CBC, legacy.get());
    ASSERT_FALSE(der.empty());

    auto refused = ClientCertificate::from_pkcs12(der, "old-windows", LegacyPkcs12::refuse);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("legacy provider"), std::string::npos) << refused.error().message;
    EXPECT_NE(refused.error().message.find("AES"), std::string::npos) << refused.error().message;

    auto loaded = ClientCertificate::from_pkcs12(der, "old-windows");
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->der(), cert_der(id.cert.get()));
    auto jwt = make_client_assertion(*loaded, claims("https://login.example/t/oauth2/v2.0/token", "app", 1700000000));
    EXPECT_TRUE(jwt) << jwt.error().message;

    // The rest of the process did not gain RC2.
    EVP_CIPHER* rc2 = EVP_CIPHER_fetch(nullptr, "RC2-40-CBC", nullptr);
    EXPECT_EQ(rc2, nullptr);
    EVP_CIPHER_free(rc2);
    ERR_clear_error();
}

TEST(EntraClientAssertion, AssertionIsAnRs256JwtEntraAccepts) {
    const Identity& id = identity();
    auto certificate = ClientCertificate::from_pem(cert_pem(id.cert.get()) + key_pem(id.key.get()));
    ASSERT_TRUE(certificate) << certificate.error().message;
    const std::string aud = "https://login.microsoftonline.com/72f988bf-0000-0000-0000-2d7cd011db47/oauth2/v2.0/token";
    auto jwt = make_client_assertion(*certificate, claims(aud, "11111111-2222-3333-4444-555555555555", 1700000000));
    ASSERT_TRUE(jwt) << jwt.error().message;

    const auto parts = split(*jwt, '.');
    ASSERT_EQ(parts.size(), 3u);
    for (const auto& part : parts)
        EXPECT_EQ(part.find_first_of("+/="), std::string::npos) << part;
    const auto header = nlohmann::json::parse(base64url_decode(parts[0]));
    EXPECT_EQ(header, (nlohmann::json{{"alg", "RS256"},
                                      {"typ", "JWT"},
                                      {"x5t", thumbprint(id.cert.get(), EVP_sha1())},
                                      {"x5t#S256", thumbprint(id.cert.get(), EVP_sha256())}}));
    auto payload = nlohmann::json::parse(base64url_decode(parts[1]));
    const std::string jti = payload["jti"];
    EXPECT_TRUE(
        std::regex_match(jti, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
        << jti;
    payload.erase("jti");
    EXPECT_EQ(payload, (nlohmann::json{{"aud", aud},
                                       {"iss", "11111111-2222-3333-4444-555555555555"},
                                       {"sub", "11111111-2222-3333-4444-555555555555"},
                                       {"nbf", 1700000000},
                                       {"iat", 1700000000},
                                       {"exp", 1700000600}}));

    // The signature verifies with the certificate's public key over "header.claims".
    const std::string signed_part = parts[0] + "." + parts[1];
    const std::string signature = base64url_decode(parts[2]);
    EXPECT_EQ(signature.size(), 256u);  // RSA-2048
    MdCtxPtr verify(EVP_MD_CTX_new());
    ASSERT_EQ(EVP_DigestVerifyInit(verify.get(), nullptr, EVP_sha256(), nullptr, X509_get0_pubkey(id.cert.get())), 1);
    EXPECT_EQ(EVP_DigestVerify(verify.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                               reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()),
              1);

    // A fresh jti every time; a given one is used as it is; the lifetime is a parameter.
    auto again = make_client_assertion(*certificate, claims(aud, "c", 1700000000));
    ASSERT_TRUE(again);
    EXPECT_NE(nlohmann::json::parse(base64url_decode(split(*again, '.')[1]))["jti"], jti);
    auto fixed = make_client_assertion(*certificate, claims(aud, "c", 1700000000, std::chrono::seconds(60), "my-jti"));
    ASSERT_TRUE(fixed);
    const auto fixed_claims = nlohmann::json::parse(base64url_decode(split(*fixed, '.')[1]));
    EXPECT_EQ(fixed_claims["jti"], "my-jti");
    EXPECT_EQ(fixed_claims["exp"], 1700000060);
}

TEST(EntraClientAssertion, RefusesAnAssertionWithoutAudienceOrClient) {
    const Identity& id = identity();
    auto certificate = ClientCertificate::from_pem(cert_pem(id.cert.get()) + key_pem(id.key.get()));
    ASSERT_TRUE(certificate);
    EXPECT_FALSE(make_client_assertion(*certificate, claims("", "c", 1)));
    EXPECT_FALSE(make_client_assertion(*certificate, claims("https://a", "", 1)));
    EXPECT_FALSE(make_client_assertion(ClientCertificate(), claims("https://a", "c", 1)));
}

}  // namespace
}  // namespace podid::entra
