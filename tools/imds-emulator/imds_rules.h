// What Azure IMDS answers, as a pure function: request + the emulated VM's identities + the time → response.
// No sockets, clocks, randomness or counters here; the server supplies `now` and a fresh token id and
// applies faults, limits and statistics around it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http_types.h"
#include "identity_store.h"
#include "jwt.h"

namespace podid::emulator {

enum class Route { token, identity_info, instance, versions, admin, not_found };
const char* to_string(Route route);

// Classifies by path alone. The "/metadata" segment is case-insensitive, as on IMDS.
Route route_of(std::string_view target);

struct ImdsContext {
    const IdentityStore& identities;
    const TokenSigner& signer;
    std::string tenant_id;
    int64_t token_lifetime = 86400;  // seconds
    int64_t now = 0;                 // epoch seconds
    std::string token_id;            // random bytes from the caller: makes uti/jti unique per token
};

struct ImdsOutcome {
    HttpResponse response;
    Route route = Route::not_found;
    std::string client_id;  // the identity served, else the client_id asked for, else ""
    std::string resource;   // decoded resource, if any
};

// Answers every non-admin path (admin paths get 404 here: they are the server's business).
ImdsOutcome answer_imds(const HttpRequest& req, const ImdsContext& ctx);

// The JWT claims IMDS's tokens carry for `identity` (exposed for tests that predict them).
nlohmann::json token_claims(const EmulatedIdentity& identity, std::string_view resource, const ImdsContext& ctx);

}  // namespace podid::emulator
