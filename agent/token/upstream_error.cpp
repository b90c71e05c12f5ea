#include "token/upstream_error.h"

#include <string>

#include <nlohmann/json.hpp>

namespace podid {

namespace {

const char* error_name(int status) {
    switch (status) {
    case 400: return "invalid_request";
    case 404: return "not_found";
    case 410: return "gone";  // IMDS is being updated
    case 429: return "too_many_requests";
    case 502: return "bad_gateway";
    case 503: return "service_unavailable";
    case 504: return "gateway_timeout";
    default: return status >= 500 ? "server_error" : "invalid_request";
    }
}

std::string error_body(int status, const std::string& description) {
    return nlohmann::json{{"error", error_name(status)}, {"error_description", description}}.dump();
}

bool is_imds_error_body(const std::string& body) {
    auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    return doc.is_object() && doc.contains("error") && doc["error"].is_string();
}

}  // namespace

TokenOutcome upstream_error_outcome(const UpstreamResult& result) {
    TokenOutcome out;
    out.reason = result.reason;
    // An upstream that explains its failure in IMDS's shape (Entra ID's mapped errors) is passed on as it said it.
    if (result.status == 0 && is_imds_error_body(result.body)) {
        out.status = result.timed_out ? 504 : 503;
        out.error_body = result.body;
        return out;
    }
    if (result.status == 0) {
        out.status = result.timed_out ? 504 : 503;
        out.error_body = error_body(
            out.status, result.timed_out ? "IMDS did not answer in time" : "IMDS is unreachable from this node");
        return out;
    }
    out.status = result.status;
    out.error_body = is_imds_error_body(result.body)
                         ? result.body
                         : error_body(result.status, "IMDS answered " + std::to_string(result.status));
    return out;
}

}  // namespace podid
