// Fault injection for token requests: what podid must survive from the real IMDS (throttling, 5xx, slowness,
// dropped connections, an IMDS that accepts and never answers, an answer whose body trickles, a proxy's HTML
// error page), switched on and off by tests through the admin API or --fault.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "http_types.h"

namespace podid::emulator {

// hang: read the request, never answer, close only when the client does (what a client's timeout is for).
// slow_body: the normal answer's head at once, its body spread over latency_ms.
// html: `status` with a text/html body, as a proxy or load balancer in front of a service answers.
enum class FaultMode { none, status, latency, reset, hang, slow_body, html };

struct FaultSpec {
    FaultMode mode = FaultMode::none;
    unsigned status = 500;  // mode status: the HTTP status to answer with
    int retry_after = -1;   // seconds for a Retry-After header; -1 = none
    int latency_ms = 0;     // delay before answering (mode latency; also honoured before a status fault);
                            // mode slow_body: how long the body takes to arrive
    int count = -1;         // token requests still to affect; -1 = until cleared
};

// {"mode":"none|status|latency|reset|hang|slow_body|html","status":429,"retry_after":2,"latency_ms":500,"count":N}
Result<FaultSpec> parse_fault(const nlohmann::json& json);
Result<FaultSpec> parse_fault(std::string_view text);
nlohmann::json to_json(const FaultSpec& spec);

// What one token request gets; mode none means "answer normally".
struct FaultAction {
    FaultMode mode = FaultMode::none;
    unsigned status = 0;
    int retry_after = -1;
    int latency_ms = 0;
};

// Thread-safe holder of the current fault; each token request takes one unit of `count`.
class FaultState {
public:
    void set(FaultSpec spec);
    FaultSpec current() const;
    FaultAction take();

private:
    mutable std::mutex mu_;
    FaultSpec spec_;
};

// IMDS-shaped error for an injected status: 429 too_many_requests, 5xx server_error, ...
HttpResponse fault_response(const HttpRequest& req, unsigned status, int retry_after);
// Not IMDS-shaped: an HTML error page with the injected status.
HttpResponse html_fault_response(const HttpRequest& req, unsigned status, int retry_after);

}  // namespace podid::emulator
