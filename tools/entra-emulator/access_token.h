// The access token the emulator issues for an app, shaped like Entra's client-credentials tokens: v1 claims
// (iss https://sts.windows.net/{tid}/, appid, appidacr) for resources that accept v1 tokens (most Azure APIs),
// v2 claims (iss .../{tid}/v2.0, azp, azpacr) otherwise; and the token endpoint's JSON answer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "directory.h"

namespace podid::entra_emulator {

enum class CredentialKind { secret, certificate, federated };
const char* credential_name(CredentialKind kind);

// "https://vault.azure.net/.default" -> "https://vault.azure.net"; nullopt when the scope lacks "/.default".
std::optional<std::string> resource_of_scope(std::string_view scope);

nlohmann::json access_token_claims(const App& app, const std::string& resource, CredentialKind kind, int64_t now,
                                   int64_t lifetime, const std::string& token_id);

// {"token_type":"Bearer","expires_in":N,"ext_expires_in":N,"access_token":"..."}: numbers, in Entra's order.
nlohmann::ordered_json token_response_body(const std::string& access_token, int64_t expires_in);

}  // namespace podid::entra_emulator
