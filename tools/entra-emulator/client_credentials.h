// An app's own credentials, judged as Entra judges them: a client secret, or a client assertion the app signed
// with one of its certificates (RS256 or PS256, x5t#S256 or legacy x5t header, aud = the token endpoint,
// iss = sub = client id, exp/nbf window, jti). Pure functions: the answer is nullopt (accepted) or the error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "directory.h"
#include "errors.h"
#include "imds-emulator/jwt.h"

namespace podid::entra_emulator {

std::optional<EntraError> check_client_secret(const App& app, std::string_view secret);

struct AssertionRules {
    std::vector<std::string> audiences;  // token endpoint URLs the assertion may name (compared ignoring case)
    int64_t now = 0;
    int64_t clock_skew = 300;  // seconds of tolerance on nbf and exp
};

std::optional<EntraError> check_certificate_assertion(const App& app, std::string_view assertion,
                                                      const emulator::DecodedJwt& jwt, const AssertionRules& rules);

// A time claim as Entra reads it: integer or fractional seconds (MSAL Python sends floats).
std::optional<int64_t> time_claim(const nlohmann::json& claims, const char* name);
// `aud` as a string or an array of strings.
std::vector<std::string> audience_list(const nlohmann::json& claims);
// nbf (when present) and exp against now with skew; exp is required.
std::optional<EntraError> check_time_window(const nlohmann::json& claims, int64_t now, int64_t skew);

// Whether an assertion is the app's own (a certificate credential) rather than a federated token: Entra tells
// them apart by the issuer; a sub naming the client counts too, so an assertion with only a wrong iss gets
// AADSTS700021 rather than a federation error.
bool is_own_assertion(const nlohmann::json& claims, std::string_view client_id);

}  // namespace podid::entra_emulator
