// When to call IMDS again after a failed token request, per IMDS's documented guidance:
// retry 404, 410, 429 and 5xx (and transport failures) with exponential backoff
// 0, 2, 6, 14, 30 s, capped at 60 s, and never sooner than the server's Retry-After.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace podid {

// status 0 stands for "no HTTP answer" (connect failure, reset, timeout).
bool is_retryable_status(int status);

// Delay before retry number `retry` (0 = the first retry), honouring `retry_after` when larger.
std::chrono::milliseconds backoff_delay(int retry, std::optional<std::chrono::seconds> retry_after);

// Retry-After as delta-seconds ("3"). The HTTP-date form is not used by IMDS and yields nullopt,
// as does anything malformed; huge values are clamped to the 60 s backoff cap.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value);

}  // namespace podid
