#include "tls_certs.h"

#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>
#include <memory>

namespace podid::test {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

Error openssl_error(const std::string& what) {
    unsigned long code = ERR_get_error();
    char text[256] = "unknown error";
    if (code != 0)
        ERR_error_string_n(code, text, sizeof text);
    ERR_clear_error();
    return make_error(what + ": " + text);
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<size_t>(len));
}

Result<std::string> cert_pem(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
        return openssl_error("PEM_write_bio_X509");
    return bio_text(bio.get());
}

Result<std::string> key_pem(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return openssl_error("PEM_write_bio_PrivateKey");
    return bio_text(bio.get());
}

Result<KeyPtr> parse_key(const std::string& pem) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    KeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!key)
        return openssl_error("PEM_read_bio_PrivateKey");
    return key;
}

Result<CertPtr> parse_cert(const std::string& pem) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    CertPtr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!cert)
        return openssl_error("PEM_read_bio_X509");
    return cert;
}

Result<KeyPtr> new_key() {
    KeyPtr key(EVP_EC_gen("P-256"));
    if (!key)
        return openssl_error("EVP_EC_gen(P-256)");
    return key;
}

struct CertSpec {
    std::string cn;
    std::vector<std::string> orgs;
    bool is_ca = false;
    std::string extended_usage;  // "serverAuth" | "clientAuth" | "" (CA)
    std::string san;             // "IP:127.0.0.1,DNS:localhost" or ""
    int valid_days = 2;
};

Result<void> add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext)
        return openssl_error("extension " + value);
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (ok != 1)
        return openssl_error("X509_add_ext");
    return {};
}

// Signs a certificate for `key` with `issuer_key`; a null `issuer` makes it self-signed.
Result<CertPtr> make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
    CertPtr cert(X509_new());
    if (!cert)
        return openssl_error("X509_new");
    X509_set_version(cert.get(), 2);  // v3

    // A random positive 127-bit serial: Go rejects negative serials, and equal serials from one CA
    // (two test runs reusing a directory) would confuse anyone comparing certificates.
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1)
        return openssl_error("RAND_bytes");
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    bool serial_ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
    BN_free(bn);
    if (!serial_ok)
        return openssl_error("serial number");

    // Backdated an hour so a client whose clock is slightly behind still accepts it.
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(spec.valid_days) * 86400);

    X509_NAME* name = X509_get_subject_name(cert.get());
    for (const auto& org : spec.orgs)
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(org.c_str()), -1,
                                   -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1,
                               -1, 0);
    X509* signer = issuer ? issuer : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
    if (X509_set_pubkey(cert.get(), key) != 1)
        return openssl_error("X509_set_pubkey");

    std::vector<std::pair<int, std::string>> extensions;
    if (spec.is_ca) {
        extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                      {NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"},
                      {NID_subject_key_identifier, "hash"}};
    } else {
        extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                      {NID_ext_key_usage, spec.extended_usage},
                      {NID_authority_key_identifier, "keyid:always"}};
        if (!spec.san.empty())
            extensions.emplace_back(NID_subject_alt_name, spec.san);
    }
    for (const auto& [nid, value] : extensions)
        if (auto r = add_extension(cert.get(), signer, nid, value); !r)
            return r.error();

    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0)
        return openssl_error("X509_sign");
    return cert;
}

Result<TlsCert> issue(const CertSpec& spec, X509* ca, EVP_PKEY* ca_key) {
    auto key = new_key();
    if (!key)
        return key.error();
    auto cert = make_cert(spec, key->get(), ca, ca_key);
    if (!cert)
        return cert.error();
    auto cpem = cert_pem(cert->get());
    if (!cpem)
        return cpem.error();
    auto kpem = key_pem(key->get());
    if (!kpem)
        return kpem.error();
    return TlsCert{*cpem, *kpem};
}

Result<void> write_file(const std::string& path, const std::string& text, mode_t mode) {
    {
        std::ofstream out(path, std::ios::trunc);
        out << text;
        if (!out)
            return make_error("cannot write " + path, errno);
    }
    if (::chmod(path.c_str(), mode) != 0)
        return make_error("chmod " + path, errno);
    return {};
}

}  // namespace

Result<TestPki> make_test_pki(const PkiOptions& options) {
    auto ca_key = new_key();
    if (!ca_key)
        return ca_key.error();
    auto ca = make_cert({"podid-test-ca", {}, true, "", "", options.valid_days}, ca_key->get(), nullptr, ca_key->get());
    if (!ca)
        return ca.error();

    std::string san;
    for (const auto& ip : options.server_ips)
        san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
    for (const auto& dns : options.server_dns)
        san += (san.empty() ? "" : ",") + std::string("DNS:") + dns;

    TestPki pki;
    auto ca_cert_pem = cert_pem(ca->get());
    if (!ca_cert_pem)
        return ca_cert_pem.error();
    auto ca_key_pem = key_pem(ca_key->get());
    if (!ca_key_pem)
        return ca_key_pem.error();
    pki.ca = {*ca_cert_pem, *ca_key_pem};

    auto server =
        issue({"podid-test-apiserver", {}, false, "serverAuth", san, options.valid_days}, ca->get(), ca_key->get());
    if (!server)
        return server.error();
    pki.server = *server;
    auto client = issue({options.client_cn, options.client_orgs, false, "clientAuth", "", options.valid_days},
                        ca->get(), ca_key->get());
    if (!client)
        return client.error();
    pki.client = *client;
    return pki;
}

Result<TlsCert> issue_client_cert(const TestPki& pki, const std::string& cn, const std::vector<std::string>& orgs,
                                  int valid_days) {
    auto ca = parse_cert(pki.ca.cert_pem);
    if (!ca)
        return ca.error();
    auto ca_key = parse_key(pki.ca.key_pem);
    if (!ca_key)
        return ca_key.error();
    return issue({cn, orgs, false, "clientAuth", "", valid_days}, ca->get(), ca_key->get());
}

Result<void> write_pki(TestPki& pki, const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return make_error("cannot create " + dir + ": " + ec.message(), ec.value());
    pki.dir = dir;
    const std::pair<std::string, const std::string*> files[] = {{pki.ca_path(), &pki.ca.cert_pem},
                                                                {pki.server_cert_path(), &pki.server.cert_pem},
                                                                {pki.server_key_path(), &pki.server.key_pem},
                                                                {pki.client_cert_path(), &pki.client.cert_pem},
                                                                {pki.client_key_path(), &pki.client.key_pem}};
    for (const auto& [path, text] : files) {
        bool secret = path.size() > 4 && path.compare(path.size() - 4, 4, ".key") == 0;
        if (auto r = write_file(path, *text, secret ? 0600 : 0644); !r)
            return r;
    }
    return {};
}

std::string base64_encode(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

}  // namespace podid::test
