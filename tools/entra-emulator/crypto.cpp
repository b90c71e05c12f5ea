#include "crypto.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "imds-emulator/base64url.h"

namespace podid::entra_emulator {
namespace {

struct BioFree {
    void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr memory_bio(std::string_view text) { return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))); }

std::string digest_of(std::string_view data, const EVP_MD* md) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1)
        return {};
    return std::string(reinterpret_cast<char*>(out), len);
}

std::string format_uuid(const unsigned char bytes[16]) {
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out.push_back('-');
        out.push_back(kHex[bytes[i] >> 4]);
        out.push_back(kHex[bytes[i] & 0xf]);
    }
    return out;
}

std::string asn1_time_text(const ASN1_TIME* t) {
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return "?";
    char buf[32];
    std::strftime(buf, sizeof buf, "%m/%d/%Y %H:%M:%S", &tm);
    return buf;
}

// Prepares `ctx` for `alg` on `key`: PKCS#1 v1.5 or PSS with the parameters RFC 7518 fixes for PS256.
bool init_jws_ctx(EVP_MD_CTX* ctx, EVP_PKEY* key, JwsAlg alg, bool sign) {
    EVP_PKEY_CTX* pctx = nullptr;
    int ok = sign ? EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), nullptr, key)
                  : EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), nullptr, key);
    if (ok != 1)
        return false;
    if (alg == JwsAlg::ps256) {
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    }
    return true;
}

}  // namespace

void PkeyFree::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
void X509Free::operator()(X509* cert) const { X509_free(cert); }

Error openssl_error(const std::string& what) {
    std::string detail;
    while (unsigned long code = ERR_get_error()) {
        if (detail.empty()) {
            char buf[256];
            ERR_error_string_n(code, buf, sizeof buf);
            detail = buf;
        }
    }
    return make_error(detail.empty() ? what : what + ": " + detail);
}

std::string sha1_digest(std::string_view data) { return digest_of(data, EVP_sha1()); }
std::string sha256_digest(std::string_view data) { return digest_of(data, EVP_sha256()); }

std::string hex_upper(std::string_view bytes) {
    static const char* kHex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
    return out;
}

std::string random_uuid() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
        // Ids here need uniqueness, not secrecy: fall back to the clock.
        auto now = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        std::string seeded = sha256_digest(std::string_view(reinterpret_cast<char*>(&now), sizeof now));
        std::copy_n(seeded.begin(), 16, bytes);
    }
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
    return format_uuid(bytes);
}

std::string uuid_from_seed(std::string_view seed) {
    std::string digest = sha256_digest(seed);
    unsigned char bytes[16];
    std::copy_n(digest.begin(), 16, bytes);
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
    return format_uuid(bytes);
}

Result<X509Ptr> parse_certificate_pem(std::string_view pem) {
    BioPtr bio = memory_bio(pem);
    X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!cert)
        return openssl_error("no certificate in PEM");
    return cert;
}

Result<PkeyPtr> parse_private_key_pem(std::string_view pem) {
    BioPtr bio = memory_bio(pem);
    PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!key)
        return openssl_error("no private key in PEM");
    return key;
}

std::string certificate_der(X509* cert) {
    unsigned char* der = nullptr;
    int len = i2d_X509(cert, &der);
    if (len <= 0)
        return {};
    std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    return out;
}

std::string certificate_validity(X509* cert) {
    return "Start=" + asn1_time_text(X509_get0_notBefore(cert)) + ", End=" + asn1_time_text(X509_get0_notAfter(cert));
}

std::optional<JwsAlg> jws_alg_from_name(std::string_view name) {
    if (name == "RS256")
        return JwsAlg::rs256;
    if (name == "PS256")
        return JwsAlg::ps256;
    return std::nullopt;
}

const char* jws_alg_name(JwsAlg alg) { return alg == JwsAlg::ps256 ? "PS256" : "RS256"; }

Result<std::string> sign_jws(EVP_PKEY* key, nlohmann::json header, const nlohmann::json& claims, JwsAlg alg) {
    header["alg"] = jws_alg_name(alg);
    std::string input = emulator::base64url_encode(header.dump()) + "." + emulator::base64url_encode(claims.dump());
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    size_t len = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (!ctx || !init_jws_ctx(ctx.get(), key, alg, true) ||
        EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) != 1) {
        return openssl_error(std::string("cannot start ") + jws_alg_name(alg) + " signing");
    }
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data, input.size()) != 1)
        return openssl_error(std::string(jws_alg_name(alg)) + " signing failed");
    sig.resize(len);
    return input + "." + emulator::base64url_encode(sig);
}

bool verify_jws_signature(std::string_view token, EVP_PKEY* key, JwsAlg alg) {
    size_t last_dot = token.rfind('.');
    if (last_dot == std::string_view::npos || !key)
        return false;
    auto sig = emulator::base64url_decode(token.substr(last_dot + 1));
    if (!sig || sig->empty())
        return false;
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    bool ok = ctx && init_jws_ctx(ctx.get(), key, alg, false) &&
              EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                               reinterpret_cast<const unsigned char*>(token.data()), last_dot) == 1;
    ERR_clear_error();  // a failed verification queues reasons nobody will read
    return ok;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0)
        return std::nullopt;
    std::string out(text.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0)
        return std::nullopt;
    size_t pad = 0;
    for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && pad < 2; --i)
        ++pad;
    out.resize(static_cast<size_t>(n) - pad);  // EVP_DecodeBlock counts the padding as zero bytes
    return out;
}

}  // namespace podid::entra_emulator
