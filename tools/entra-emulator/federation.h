// Workload identity federation as Entra checks it: the external token's (iss, sub, aud) must match one of the
// app's federated identity credentials exactly; its RS256 signature must verify with the issuer's published
// key named by its kid; exp/nbf must hold, and Entra refuses lifetimes over a day and an hour.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "directory.h"
#include "errors.h"
#include "imds-emulator/jwt.h"

namespace podid::entra_emulator {

// nullopt when a credential of `app` matches; else AADSTS70021 naming the token's issuer, subject, audience.
std::optional<EntraError> match_federated_credential(const App& app, const nlohmann::json& claims);

bool jwks_has_kid(const nlohmann::json& jwks, std::string_view kid);

// Signature (by kid, against `jwks`), lifetime and time window. Call match_federated_credential first.
std::optional<EntraError> check_federated_token(std::string_view token, const emulator::DecodedJwt& jwt,
                                                const nlohmann::json& jwks, int64_t now, int64_t clock_skew);

}  // namespace podid::entra_emulator
