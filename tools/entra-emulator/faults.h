// Injected token-endpoint faults: what podid must survive from Entra (throttling with Retry-After, 5xx, slow
// answers), for the next `count` token calls and/or for `duration_ms`, set by --fault, the admin API or a test.
//   {"mode":"status","status":429,"retry_after":3,"count":2}
//   {"mode":"status","status":503,"duration_ms":2000}
//   {"mode":"latency","latency_ms":500,"count":1}
#pragma once

#include <chrono>
#include <mutex>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace podid::entra_emulator {

// status: answer `status` (429: Entra's throttling body; 5xx: a transient-error body), after latency_ms if set.
// latency: wait latency_ms, then answer normally.
enum class FaultMode { none, status, latency };

struct FaultSpec {
    FaultMode mode = FaultMode::none;
    unsigned status = 503;
    int retry_after = -1;  // seconds for a Retry-After header; -1: none
    int latency_ms = 0;
    int count = -1;        // token calls still to affect; -1: not limited by count
    int duration_ms = -1;  // how long the fault lasts from when it is set; -1: not limited by time
};

Result<FaultSpec> parse_fault(const nlohmann::json& json);
Result<FaultSpec> parse_fault(std::string_view text);
nlohmann::json to_json(const FaultSpec& spec);

struct FaultAction {
    FaultMode mode = FaultMode::none;
    unsigned status = 0;
    int retry_after = -1;
    int latency_ms = 0;
};

// Thread-safe; each token call takes one unit of `count`; the fault clears itself when count or time runs out.
class FaultState {
public:
    using Clock = std::chrono::steady_clock;
    void set(const FaultSpec& spec, Clock::time_point now = Clock::now());
    FaultSpec current(Clock::time_point now = Clock::now()) const;
    FaultAction take(Clock::time_point now = Clock::now());

private:
    bool expired_locked(Clock::time_point now) const;

    mutable std::mutex mu_;
    FaultSpec spec_;
    Clock::time_point until_{};
};

}  // namespace podid::entra_emulator
