// What a client is told when IMDS gave no token: IMDS's own status and body when it answered,
// otherwise an IMDS-shaped error of our own.
#pragma once

#include "token/token.h"
#include "token/token_upstream.h"

namespace podid {

// `result` must be a failure (no token). Status 0 becomes 503 service_unavailable, or
// 504 gateway_timeout when the attempt timed out. A body that is not an IMDS-style JSON error is
// replaced by one.
TokenOutcome upstream_error_outcome(const UpstreamResult& result);

}  // namespace podid
