// IMDS's token response body <-> Token.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"
#include "token/token.h"

namespace podid {

// IMDS sends every field as a JSON string; numbers are accepted as well. `now` (epoch seconds)
// fills expires_on from expires_in when only the latter is present. Error messages never quote
// the body, which may hold a token.
Result<Token> parse_token_json(std::string_view body, int64_t now);

}  // namespace podid
