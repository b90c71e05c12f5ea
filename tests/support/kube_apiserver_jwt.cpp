#include "kube_apiserver_jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <vector>

#include "kube_apiserver_base64url.h"

namespace podid::test::kube {
namespace {

using nlohmann::json;

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

Error openssl_error(const std::string& what) {
    unsigned long code = ERR_get_error();
    char text[256] = "unknown error";
    if (code != 0)
        ERR_error_string_n(code, text, sizeof text);
    ERR_clear_error();
    return make_error(what + ": " + text);
}

std::string as_string(const unsigned char* data, size_t size) {
    return std::string(reinterpret_cast<const char*>(data), size);
}

Result<std::string> bn_param(EVP_PKEY* key, const char* name) {
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(key, name, &raw) != 1)
        return openssl_error(std::string("EVP_PKEY_get_bn_param ") + name);
    BnPtr bn(raw);
    std::vector<unsigned char> bytes(static_cast<size_t>(BN_num_bytes(bn.get())));
    BN_bn2bin(bn.get(), bytes.data());
    return base64url_encode(as_string(bytes.data(), bytes.size()));  // big-endian, no leading zeros (RFC 7518)
}

}  // namespace

struct SigningKey::Material {
    KeyPtr key;
    std::string kid;
    json jwks;
    std::string pem;
};

SigningKey::SigningKey() = default;
SigningKey::~SigningKey() = default;

Result<const SigningKey::Material*> SigningKey::material() const {
    std::lock_guard lock(mu_);
    if (material_)
        return material_.get();
    auto m = std::make_unique<Material>();
    m->key.reset(EVP_RSA_gen(2048));
    if (!m->key)
        return openssl_error("EVP_RSA_gen 2048");

    int der_len = i2d_PUBKEY(m->key.get(), nullptr);
    if (der_len <= 0)
        return openssl_error("i2d_PUBKEY");
    std::vector<unsigned char> der(static_cast<size_t>(der_len));
    unsigned char* out = der.data();
    i2d_PUBKEY(m->key.get(), &out);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_Digest(der.data(), der.size(), digest, &digest_len, EVP_sha256(), nullptr) != 1)
        return openssl_error("SHA-256 of the public key");
    m->kid = base64url_encode(as_string(digest, digest_len));

    auto n = bn_param(m->key.get(), OSSL_PKEY_PARAM_RSA_N);
    auto e = bn_param(m->key.get(), OSSL_PKEY_PARAM_RSA_E);
    if (!n)
        return n.error();
    if (!e)
        return e.error();
    json jwk = {{"use", "sig"}, {"kty", "RSA"}, {"kid", m->kid}, {"alg", "RS256"}, {"n", *n}, {"e", *e}};
    m->jwks = {{"keys", json::array({jwk})}};

    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), m->key.get()) != 1)
        return openssl_error("PEM_write_bio_PUBKEY");
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    m->pem.assign(data, static_cast<size_t>(len));

    material_ = std::move(m);
    return material_.get();
}

Result<std::string> SigningKey::sign(const json& claims) const {
    auto m = material();
    if (!m)
        return m.error();
    // The header's members in the order go-jose writes them; nothing reads the order, a reader of a token may.
    std::string header = R"({"alg":"RS256","kid":")" + (*m)->kid + R"("})";
    std::string input = base64url_encode(header) + "." + base64url_encode(claims.dump());
    MdCtxPtr ctx(EVP_MD_CTX_new());
    size_t sig_len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, (*m)->key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) != 1)
        return openssl_error("RS256 sign");
    std::vector<unsigned char> sig(sig_len);
    if (EVP_DigestSign(ctx.get(), sig.data(), &sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) != 1)
        return openssl_error("RS256 sign");
    return input + "." + base64url_encode(as_string(sig.data(), sig_len));
}

Result<std::string> SigningKey::key_id() const {
    auto m = material();
    if (!m)
        return m.error();
    return (*m)->kid;
}

Result<json> SigningKey::jwks() const {
    auto m = material();
    if (!m)
        return m.error();
    return (*m)->jwks;
}

Result<std::string> SigningKey::public_key_pem() const {
    auto m = material();
    if (!m)
        return m.error();
    return (*m)->pem;
}

Result<DecodedJwt> decode_jwt(std::string_view jwt) {
    size_t first = jwt.find('.');
    size_t last = jwt.rfind('.');
    if (first == std::string_view::npos || first == last || jwt.find('.', first + 1) != last)
        return make_error("not a compact JWS: want three dot-separated parts");
    auto header = base64url_decode(jwt.substr(0, first));
    auto claims = base64url_decode(jwt.substr(first + 1, last - first - 1));
    if (!header || !claims)
        return make_error("JWT header or claims are not base64url");
    DecodedJwt out{json::parse(*header, nullptr, false), json::parse(*claims, nullptr, false)};
    if (!out.header.is_object() || !out.claims.is_object())
        return make_error("JWT header or claims are not JSON objects");
    return out;
}

Result<DecodedJwt> SigningKey::verify(std::string_view jwt) const {
    auto decoded = decode_jwt(jwt);
    if (!decoded)
        return decoded.error();
    auto m = material();
    if (!m)
        return m.error();
    const json& header = decoded->header;
    if (header.value("alg", "") != "RS256")
        return make_error("JWT alg is " + header.value("alg", std::string("(none)")) + ", not RS256");
    if (header.value("kid", "") != (*m)->kid)
        return make_error("JWT kid " + header.value("kid", std::string("(none)")) + " is not this server's key " +
                          (*m)->kid);
    size_t last = jwt.rfind('.');
    auto sig = base64url_decode(jwt.substr(last + 1));
    if (!sig)
        return make_error("JWT signature is not base64url");
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, (*m)->key.get()) != 1)
        return openssl_error("RS256 verify");
    int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                              reinterpret_cast<const unsigned char*>(jwt.data()), last);
    ERR_clear_error();
    if (ok != 1)
        return make_error("JWT signature does not verify with this server's key");
    return std::move(*decoded);
}

}  // namespace podid::test::kube
