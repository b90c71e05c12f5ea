// The emulator's own endpoints under /_emulator/ (never a real IMDS path): faults, statistics, JWKS.
#pragma once

#include "faults.h"
#include "http_types.h"
#include "jwt.h"
#include "stats.h"

namespace podid::emulator {

struct AdminState {
    Stats& stats;
    FaultState& faults;
    const TokenSigner& signer;
};

//   GET  /_emulator/stats    counters and the last requests
//   POST /_emulator/reset    zero the counters (faults stay as they are)
//   GET  /_emulator/faults   the current fault;  POST /_emulator/faults  set it (JSON body, see faults.h)
//   GET  /_emulator/jwks     the token signing key as a JWKS
HttpResponse answer_admin(const HttpRequest& req, AdminState& state);

}  // namespace podid::emulator
