// The emulator's admin API, served on its own plain-HTTP loopback port (never on the Entra listener, so no
// Entra client can reach it by accident):
//   GET    /stats                       token-call counters (stats.h);  POST /reset  zeroes them
//   GET    /faults                      the current fault;  POST /faults  sets one (faults.h)
//   GET    /directory                   tenants and apps (secrets counted, never shown)
//   POST   /tenants                     add a tenant      {"id":"...","names":[...]}
//   POST   /apps                        add or replace an app (directory.h)
//   DELETE /apps/{tenant}/{client_id}   remove an app
//   GET    /ca.pem                      the CA that signed the HTTPS certificate (when generated)
//   GET    /keys                        the access-token signing keys (JWKS)
//   GET    /issuers                     hosted test issuers;  POST /issuers {"name":"..."}  adds one
//   POST   /issuers/{name}/token        mints a token: {"sub","aud","lifetime","issued_offset","with_iat",
//                                       "extra_claims"} -> {"token":"..."}
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "directory.h"
#include "faults.h"
#include "http.h"
#include "imds-emulator/jwt.h"
#include "issuer_double.h"
#include "stats.h"

namespace podid::entra_emulator {

struct AdminContext {
    Directory& directory;
    Stats& stats;
    FaultState& faults;
    IssuerRegistry& issuers;
    const emulator::TokenSigner& signer;
    const std::string& ca_pem;
    std::string origin;  // the Entra listener's origin, for new issuers' URLs
    int64_t now = 0;
};

HttpResponse answer_admin(const HttpRequest& req, AdminContext& ctx);

}  // namespace podid::entra_emulator
