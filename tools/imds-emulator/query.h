// Request-target parsing as IMDS clients use it: some encode the resource (`https%3A%2F%2Fvault.azure.net`),
// some send it raw (`https://storage.azure.com`), so decoding must accept both.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podid::emulator {

struct Target {
    std::string path;       // before '?', not decoded
    std::string raw_query;  // after '?', as sent
    std::vector<std::pair<std::string, std::string>> params;  // decoded, in order, duplicates kept
};

Target split_target(std::string_view target);

// %XX escapes and '+' (form encoding, as .NET and Go servers treat it) are decoded; a malformed escape
// is kept literally rather than rejected, since no SDK sends one.
std::string percent_decode(std::string_view text);

// The first parameter name that occurs more than once, if any.
std::optional<std::string> duplicate_param(const Target& target);

// Value of the first parameter called `name`.
std::optional<std::string> param(const Target& target, std::string_view name);

}  // namespace podid::emulator
