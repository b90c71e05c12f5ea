#include "client_credentials.h"

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "crypto.h"
#include "imds-emulator/base64url.h"

namespace podid::entra_emulator {
namespace {

bool same_text_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::string claim_text(const nlohmann::json& claims, const char* name) {
    auto it = claims.find(name);
    return it != claims.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// x5t values as sent: base64url, sometimes with '=' padding (MSAL Python pads).
std::optional<std::string> thumbprint_header(const nlohmann::json& header, const char* name) {
    auto it = header.find(name);
    if (it == header.end() || !it->is_string())
        return std::nullopt;
    std::string_view text = it->get_ref<const std::string&>();
    while (!text.empty() && text.back() == '=')
        text.remove_suffix(1);
    return emulator::base64url_decode(text);
}

// The public key of the certificate in the x5c header, when its digest is `sha256` or `sha1`.
SharedPkey key_from_x5c(const nlohmann::json& header, const CertificateCredential& cred) {
    auto it = header.find("x5c");
    if (it == header.end() || !it->is_array() || it->empty() || !(*it)[0].is_string())
        return nullptr;
    auto der = base64_decode((*it)[0].get<std::string>());
    if (!der)
        return nullptr;
    bool matches = (!cred.sha256.empty() && sha256_digest(*der) == cred.sha256) ||
                   (!cred.sha1.empty() && sha1_digest(*der) == cred.sha1);
    if (!matches)
        return nullptr;
    const auto* p = reinterpret_cast<const unsigned char*>(der->data());
    X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
    EVP_PKEY* key = cert ? X509_get_pubkey(cert.get()) : nullptr;
    return key ? SharedPkey(key, PkeyFree{}) : nullptr;
}

}  // namespace

std::optional<EntraError> check_client_secret(const App& app, std::string_view secret) {
    for (const auto& s : app.secrets) {
        // Constant time, like any secret comparison (the lengths alone may differ early).
        if (s.size() == secret.size() && CRYPTO_memcmp(s.data(), secret.data(), s.size()) == 0)
            return std::nullopt;
    }
    return errors::invalid_client_secret(app.client_id);
}

std::optional<int64_t> time_claim(const nlohmann::json& claims, const char* name) {
    auto it = claims.find(name);
    if (it == claims.end() || !it->is_number())
        return std::nullopt;
    if (it->is_number_float())
        return static_cast<int64_t>(std::floor(it->get<double>()));
    return it->get<int64_t>();
}

std::vector<std::string> audience_list(const nlohmann::json& claims) {
    std::vector<std::string> out;
    auto it = claims.find("aud");
    if (it == claims.end())
        return out;
    if (it->is_string())
        out.push_back(it->get<std::string>());
    else if (it->is_array())
        for (const auto& a : *it)
            if (a.is_string())
                out.push_back(a.get<std::string>());
    return out;
}

std::optional<EntraError> check_time_window(const nlohmann::json& claims, int64_t now, int64_t skew) {
    auto exp = time_claim(claims, "exp");
    if (!exp)
        return errors::malformed_assertion("The token does not contain an 'exp' claim.");
    auto nbf = time_claim(claims, "nbf");
    if (*exp + skew <= now || (nbf && *nbf - skew > now))
        return errors::assertion_time_range(now, nbf.value_or(0), *exp);
    return std::nullopt;
}

bool is_own_assertion(const nlohmann::json& claims, std::string_view client_id) {
    return same_text_ignoring_case(claim_text(claims, "iss"), client_id) ||
           same_text_ignoring_case(claim_text(claims, "sub"), client_id);
}

std::optional<EntraError> check_certificate_assertion(const App& app, std::string_view assertion,
                                                      const emulator::DecodedJwt& jwt, const AssertionRules& rules) {
    std::string alg_name = jwt.header.value("alg", "");
    auto alg = jws_alg_from_name(alg_name);
    if (!alg)
        return errors::unsupported_assertion_alg(alg_name);

    auto s256 = thumbprint_header(jwt.header, "x5t#S256");
    auto s1 = thumbprint_header(jwt.header, "x5t");
    if (!s256 && !s1)
        return errors::no_thumbprint();
    const std::string& sent = s256 ? *s256 : *s1;
    const CertificateCredential* cred = nullptr;
    for (const auto& c : app.certificates) {
        if ((s256 && !c.sha256.empty() && c.sha256 == *s256) || (s1 && !c.sha1.empty() && c.sha1 == *s1))
            cred = &c;
    }
    if (!cred)
        return errors::certificate_key_not_found(hex_upper(sent), app.client_id);
    SharedPkey key = cred->key ? cred->key : key_from_x5c(jwt.header, *cred);
    if (!key)
        return errors::certificate_key_not_found(hex_upper(sent), app.client_id);
    if (!verify_jws_signature(assertion, key.get(), *alg))
        return errors::certificate_signature_mismatch(hex_upper(sent), cred->validity);

    if (!same_text_ignoring_case(claim_text(jwt.claims, "iss"), app.client_id) ||
        !same_text_ignoring_case(claim_text(jwt.claims, "sub"), app.client_id))
        return errors::assertion_client_mismatch();
    auto auds = audience_list(jwt.claims);
    bool aud_ok = std::any_of(auds.begin(), auds.end(), [&](const std::string& a) {
        return std::any_of(rules.audiences.begin(), rules.audiences.end(),
                           [&](const std::string& want) { return same_text_ignoring_case(a, want); });
    });
    if (!aud_ok)
        return errors::assertion_audience_mismatch();
    if (auto err = check_time_window(jwt.claims, rules.now, rules.clock_skew))
        return err;
    if (claim_text(jwt.claims, "jti").empty())
        return errors::malformed_assertion("The token does not contain a 'jti' claim.");
    return std::nullopt;
}

}  // namespace podid::entra_emulator
