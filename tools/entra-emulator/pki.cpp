#include "pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <utility>

#include "crypto.h"

namespace podid::entra_emulator {
namespace {

struct PkiBioFree {
    void operator()(BIO* bio) const { BIO_free(bio); }
};

Result<std::string> pem_of(X509* cert, EVP_PKEY* key) {
    std::unique_ptr<BIO, PkiBioFree> bio(BIO_new(BIO_s_mem()));
    bool ok = bio && (cert ? PEM_write_bio_X509(bio.get(), cert)
                           : PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) == 1;
    if (!ok)
        return openssl_error("cannot write PEM");
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

struct CertRequest {
    std::string cn;
    bool ca = false;
    std::string san;  // "IP:127.0.0.1,DNS:localhost" or ""
    int valid_days = 7;
};

Result<void> add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    bool ok = ext && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    if (!ok)
        return openssl_error("cannot add certificate extension " + value);
    return {};
}

// Signs a certificate for `key`; a null `issuer` makes it self-signed.
Result<X509Ptr> issue(const CertRequest& req, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
    X509Ptr cert(X509_new());
    unsigned char serial[16];
    if (!cert || RAND_bytes(serial, sizeof serial) != 1)
        return openssl_error("cannot start a certificate");
    serial[0] &= 0x7f;  // positive: some verifiers reject negative serials
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    bool serial_ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
    BN_free(bn);
    if (!serial_ok || X509_set_version(cert.get(), 2) != 1)
        return openssl_error("cannot set the serial number");
    // An hour in the past, so a client whose clock lags a little still accepts it.
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(req.valid_days) * 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(req.cn.c_str()), -1, -1, 0);
    X509* signer = issuer ? issuer : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
    if (X509_set_pubkey(cert.get(), key) != 1)
        return openssl_error("cannot set the public key");

    std::vector<std::pair<int, std::string>> exts;
    if (req.ca) {
        exts = {{NID_basic_constraints, "critical,CA:TRUE"},
                {NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"},
                {NID_subject_key_identifier, "hash"}};
    } else {
        exts = {{NID_basic_constraints, "critical,CA:FALSE"},
                {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                {NID_subject_key_identifier, "hash"}};
        if (issuer)
            exts.emplace_back(NID_authority_key_identifier, "keyid:always");
        if (!req.san.empty()) {
            exts.emplace_back(NID_ext_key_usage, "serverAuth");
            exts.emplace_back(NID_subject_alt_name, req.san);
        } else {
            exts.emplace_back(NID_ext_key_usage, "clientAuth");
        }
    }
    for (const auto& [nid, value] : exts) {
        if (auto r = add_ext(cert.get(), signer, nid, value); !r)
            return r.error();
    }
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0)
        return openssl_error("cannot sign the certificate");
    return cert;
}

Result<PemPair> pems(X509* cert, EVP_PKEY* key) {
    auto cert_pem = pem_of(cert, nullptr);
    if (!cert_pem)
        return cert_pem.error();
    auto key_pem = pem_of(nullptr, key);
    if (!key_pem)
        return key_pem.error();
    return PemPair{std::move(*cert_pem), std::move(*key_pem)};
}

}  // namespace

Result<ServerPki> make_server_pki(const ServerPkiOptions& options) {
    PkeyPtr ca_key(EVP_EC_gen("P-256"));
    PkeyPtr server_key(EVP_EC_gen("P-256"));
    if (!ca_key || !server_key)
        return openssl_error("cannot generate P-256 keys");
    auto ca = issue({"podid-entra-emulator CA", true, "", options.valid_days}, ca_key.get(), nullptr, ca_key.get());
    if (!ca)
        return ca.error();
    std::string san;
    for (const auto& ip : options.ips)
        san += (san.empty() ? "IP:" : ",IP:") + ip;
    for (const auto& dns : options.dns)
        san += (san.empty() ? "DNS:" : ",DNS:") + dns;
    if (san.empty())
        return make_error("the server certificate needs at least one IP address or DNS name");
    auto server =
        issue({"podid-entra-emulator", false, san, options.valid_days}, server_key.get(), ca->get(), ca_key.get());
    if (!server)
        return server.error();
    auto ca_pems = pems(ca->get(), ca_key.get());
    if (!ca_pems)
        return ca_pems.error();
    auto server_pems = pems(server->get(), server_key.get());
    if (!server_pems)
        return server_pems.error();
    return ServerPki{std::move(*ca_pems), std::move(*server_pems)};
}

Result<PemPair> make_client_certificate(const std::string& common_name, int valid_days) {
    PkeyPtr key(EVP_RSA_gen(2048));
    if (!key)
        return openssl_error("cannot generate an RSA-2048 key");
    auto cert = issue({common_name, false, "", valid_days}, key.get(), nullptr, key.get());
    if (!cert)
        return cert.error();
    return pems(cert->get(), key.get());
}

}  // namespace podid::entra_emulator
