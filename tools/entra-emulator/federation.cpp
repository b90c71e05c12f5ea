#include "federation.h"

#include <algorithm>

#include "client_credentials.h"

namespace podid::entra_emulator {
namespace {

// Entra accepts external tokens living at most 1 day and 1 hour (its message prints "1.01:00:00").
constexpr int64_t kMaxFederatedLifetime = 25 * 3600;

std::string text_claim(const nlohmann::json& claims, const char* name) {
    auto it = claims.find(name);
    return it != claims.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::optional<EntraError> match_federated_credential(const App& app, const nlohmann::json& claims) {
    std::string iss = text_claim(claims, "iss");
    std::string sub = text_claim(claims, "sub");
    std::vector<std::string> auds = audience_list(claims);
    for (const auto& fic : app.federated_credentials) {
        if (fic.issuer != iss || fic.subject != sub)
            continue;
        for (const auto& aud : auds) {
            if (std::find(fic.audiences.begin(), fic.audiences.end(), aud) != fic.audiences.end())
                return std::nullopt;
        }
    }
    std::string shown_aud;
    for (const auto& aud : auds)
        shown_aud += (shown_aud.empty() ? "" : ",") + aud;
    return errors::no_federated_match(iss, sub, shown_aud);
}

bool jwks_has_kid(const nlohmann::json& jwks, std::string_view kid) {
    if (!jwks.contains("keys") || !jwks["keys"].is_array())
        return false;
    return std::any_of(jwks["keys"].begin(), jwks["keys"].end(),
                       [&](const nlohmann::json& k) { return k.is_object() && k.value("kid", "") == kid; });
}

std::optional<EntraError> check_federated_token(std::string_view token, const emulator::DecodedJwt& jwt,
                                                const nlohmann::json& jwks, int64_t now, int64_t clock_skew) {
    std::string alg = jwt.header.value("alg", "");
    if (alg != "RS256")
        return errors::unsupported_assertion_alg(alg);
    std::string kid = jwt.header.value("kid", "");
    if (!jwks_has_kid(jwks, kid))
        return errors::federated_key_not_found(kid, text_claim(jwt.claims, "iss"));
    if (!emulator::verify_jwt(token, jwks))
        return errors::federated_signature_invalid();
    auto iat = time_claim(jwt.claims, "iat");
    auto exp = time_claim(jwt.claims, "exp");
    if (exp && (!iat || *exp - *iat > kMaxFederatedLifetime))
        return errors::federated_lifetime_too_long(iat.value_or(0), *exp);
    return check_time_window(jwt.claims, now, clock_skew);
}

}  // namespace podid::entra_emulator
