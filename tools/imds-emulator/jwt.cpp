#include "jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <vector>

#include "base64url.h"

namespace podid::emulator {
namespace {

struct MdCtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct BnFree {
    void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct BioFree {
    void operator()(BIO* bio) const { BIO_free(bio); }
};
struct ParamBldFree {
    void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct ParamFree {
    void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// OpenSSL keeps a per-thread error queue; drain it so the next failure does not report a stale reason.
Error openssl_error(const std::string& what) {
    std::string detail;
    while (unsigned long code = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        if (detail.empty()) detail = buf;
    }
    return make_error(detail.empty() ? what : what + ": " + detail);
}

std::string bn_to_base64url(const BIGNUM* bn) {
    std::string bytes(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
    return base64url_encode(bytes);
}

BnPtr base64url_to_bn(const std::string& text) {
    auto bytes = base64url_decode(text);
    if (!bytes || bytes->empty()) return nullptr;
    return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes->data()), static_cast<int>(bytes->size()),
                           nullptr));
}

Result<std::string> sha256(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
        return openssl_error("SHA-256 failed");
    }
    return std::string(reinterpret_cast<char*>(digest), len);
}

Result<EVP_PKEY*> public_key_from_jwk(const nlohmann::json& jwk) {
    if (jwk.value("kty", "") != "RSA" || !jwk.contains("n") || !jwk.contains("e")) {
        return make_error("JWK is not an RSA public key");
    }
    BnPtr n = base64url_to_bn(jwk["n"].get<std::string>());
    BnPtr e = base64url_to_bn(jwk["e"].get<std::string>());
    if (!n || !e) return make_error("JWK modulus or exponent is not base64url");
    std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
    if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
        return openssl_error("cannot build RSA parameters");
    }
    std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
    EVP_PKEY* key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
        return openssl_error("cannot load RSA public key from JWK");
    }
    return key;
}

Result<nlohmann::json> parse_json_segment(std::string_view segment, const char* what) {
    auto text = base64url_decode(segment);
    if (!text) return make_error(std::string("JWT ") + what + " is not base64url");
    auto json = nlohmann::json::parse(*text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) return make_error(std::string("JWT ") + what + " is not a JSON object");
    return json;
}

}  // namespace

void TokenSigner::KeyFree::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }

TokenSigner::TokenSigner(KeyPtr key, std::string key_id, nlohmann::json jwks)
    : key_(std::move(key)), key_id_(std::move(key_id)), jwks_(std::move(jwks)) {}

Result<TokenSigner> TokenSigner::generate() {
    KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
    if (!key) return openssl_error("cannot generate an RSA-2048 key");
    return adopt(std::move(key));
}

Result<TokenSigner> TokenSigner::from_pem(std::string_view pem) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return openssl_error("cannot read PEM");
    KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) return openssl_error("no private key in PEM");
    return adopt(std::move(key));
}

Result<TokenSigner> TokenSigner::from_pem_file(const std::string& path) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) return openssl_error("cannot open key file " + path);
    KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) return openssl_error("no private key in " + path);
    return adopt(std::move(key));
}

Result<TokenSigner> TokenSigner::adopt(KeyPtr key) {
    if (EVP_PKEY_is_a(key.get(), "RSA") != 1) return make_error("signing key is not an RSA key (RS256 needs RSA)");

    unsigned char* der = nullptr;
    int der_len = i2d_PUBKEY(key.get(), &der);
    if (der_len <= 0) return openssl_error("cannot encode the public key");
    auto digest = sha256(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(der_len)));
    OPENSSL_free(der);
    if (!digest) return digest.error();
    std::string kid = base64url_encode(*digest);

    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    if (EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        BN_free(n);
        return openssl_error("cannot read the RSA modulus and exponent");
    }
    BnPtr n_owned(n), e_owned(e);
    nlohmann::json jwk = {{"kty", "RSA"}, {"use", "sig"},
                          {"alg", "RS256"}, {"kid", kid},
                          {"n", bn_to_base64url(n)}, {"e", bn_to_base64url(e)}};
    nlohmann::json jwks = {{"keys", nlohmann::json::array({jwk})}};
    return TokenSigner(std::move(key), std::move(kid), std::move(jwks));
}

Result<std::string> TokenSigner::sign(const nlohmann::json& claims) const {
    nlohmann::json header = {{"typ", "JWT"}, {"alg", "RS256"}, {"kid", key_id_}};
    std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());

    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    size_t sig_len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) != 1) {
        return openssl_error("cannot start RS256 signing");
    }
    std::string sig(sig_len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
        return openssl_error("RS256 signing failed");
    }
    sig.resize(sig_len);
    return input + "." + base64url_encode(sig);
}

Result<DecodedJwt> decode_jwt(std::string_view token) {
    size_t first = token.find('.');
    size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
    if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
        return make_error("JWT does not have three segments");
    }
    auto header = parse_json_segment(token.substr(0, first), "header");
    if (!header) return header.error();
    auto claims = parse_json_segment(token.substr(first + 1, second - first - 1), "claims");
    if (!claims) return claims.error();
    return DecodedJwt{std::move(*header), std::move(*claims)};
}

Result<DecodedJwt> verify_jwt(std::string_view token, const nlohmann::json& jwks) {
    auto decoded = decode_jwt(token);
    if (!decoded) return decoded.error();
    if (decoded->header.value("alg", "") != "RS256") return make_error("JWT alg is not RS256");
    std::string kid = decoded->header.value("kid", "");

    const nlohmann::json* jwk = nullptr;
    if (jwks.contains("keys") && jwks["keys"].is_array()) {
        for (const auto& candidate : jwks["keys"]) {
            if (candidate.value("kid", "") == kid) jwk = &candidate;
        }
    }
    if (!jwk) return make_error("no JWKS key has kid '" + kid + "'");
    auto key = public_key_from_jwk(*jwk);
    if (!key) return key.error();
    std::unique_ptr<EVP_PKEY, PkeyFree> key_owned(*key);

    size_t last_dot = token.rfind('.');
    std::string_view signed_part = token.substr(0, last_dot);
    auto sig = base64url_decode(token.substr(last_dot + 1));
    if (!sig) return make_error("JWT signature is not base64url");

    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_owned.get()) != 1) {
        return openssl_error("cannot start RS256 verification");
    }
    int verdict = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                                   reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size());
    if (verdict != 1) {
        ERR_clear_error();
        return make_error("JWT signature does not verify");
    }
    return std::move(*decoded);
}

}  // namespace podid::emulator
