#include "faults.h"

#include <array>

namespace podid::emulator {
namespace {

struct ModeName {
    FaultMode mode;
    const char* name;
};
constexpr std::array<ModeName, 7> kModes = {{
    {FaultMode::none, "none"},
    {FaultMode::status, "status"},
    {FaultMode::latency, "latency"},
    {FaultMode::reset, "reset"},
    {FaultMode::hang, "hang"},
    {FaultMode::slow_body, "slow_body"},
    {FaultMode::html, "html"},
}};

Result<int> int_field(const nlohmann::json& json, const char* name, int fallback) {
    if (!json.contains(name))
        return fallback;
    const auto& v = json[name];
    if (!v.is_number_integer())
        return make_error(std::string("fault field '") + name + "' must be an integer");
    return v.get<int>();
}

}  // namespace

Result<FaultSpec> parse_fault(const nlohmann::json& json) {
    if (!json.is_object())
        return make_error("fault must be a JSON object");
    if (!json.contains("mode") || !json["mode"].is_string()) {
        return make_error("fault needs \"mode\": none, status, latency, reset, hang, slow_body or html");
    }
    FaultSpec spec;
    std::string mode = json["mode"].get<std::string>();
    bool known = false;
    for (const auto& m : kModes) {
        if (mode == m.name) {
            spec.mode = m.mode;
            known = true;
        }
    }
    if (!known) {
        return make_error("unknown fault mode '" + mode + "' (none, status, latency, reset, hang, slow_body, html)");
    }

    auto status = int_field(json, "status", 500);
    auto retry_after = int_field(json, "retry_after", -1);
    auto latency = int_field(json, "latency_ms", 0);
    auto count = int_field(json, "count", -1);
    for (const auto* r : {&status, &retry_after, &latency, &count}) {
        if (!*r)
            return r->error();
    }
    if (*status < 100 || *status > 599)
        return make_error("fault status must be an HTTP status (100-599)");
    if (*latency < 0)
        return make_error("fault latency_ms must not be negative");
    if (*count < -1)
        return make_error("fault count must be -1 (until cleared) or a number of requests");
    if (spec.mode == FaultMode::latency && *latency == 0)
        return make_error("latency fault needs latency_ms > 0");
    if (spec.mode == FaultMode::slow_body && *latency == 0)
        return make_error("slow_body fault needs latency_ms > 0");
    spec.status = static_cast<unsigned>(*status);
    spec.retry_after = *retry_after;
    spec.latency_ms = *latency;
    spec.count = *count;
    if (spec.count == 0)
        spec.mode = FaultMode::none;
    return spec;
}

Result<FaultSpec> parse_fault(std::string_view text) {
    auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded())
        return make_error("fault is not valid JSON");
    return parse_fault(json);
}

nlohmann::json to_json(const FaultSpec& spec) {
    const char* mode = "none";
    for (const auto& m : kModes) {
        if (m.mode == spec.mode)
            mode = m.name;
    }
    return {{"mode", mode},
            {"status", spec.status},
            {"retry_after", spec.retry_after},
            {"latency_ms", spec.latency_ms},
            {"count", spec.count}};
}

void FaultState::set(FaultSpec spec) {
    std::lock_guard lock(mu_);
    spec_ = spec;
}

FaultSpec FaultState::current() const {
    std::lock_guard lock(mu_);
    return spec_;
}

FaultAction FaultState::take() {
    std::lock_guard lock(mu_);
    if (spec_.mode == FaultMode::none)
        return {};
    FaultAction action{spec_.mode, spec_.status, spec_.retry_after, spec_.latency_ms};
    if (spec_.count > 0 && --spec_.count == 0)
        spec_ = FaultSpec{};
    return action;
}

HttpResponse fault_response(const HttpRequest& req, unsigned status, int retry_after) {
    HttpResponse res = [&] {
        if (status == 429)
            return imds_error(req, status, "too_many_requests", "Too many requests (injected fault)");
        if (status >= 500)
            return imds_error(req, status, "server_error", "Internal server error (injected fault)");
        if (status == 404 || status == 410) {
            return imds_error(req, status, "unknown", "IMDS is updating, retry later (injected fault)");
        }
        return imds_error(req, status, "invalid_request", "Injected fault");
    }();
    if (retry_after >= 0)
        res.set(boost::beast::http::field::retry_after, std::to_string(retry_after));
    return res;
}

HttpResponse html_fault_response(const HttpRequest& req, unsigned status, int retry_after) {
    namespace http = boost::beast::http;
    HttpResponse res{static_cast<http::status>(status), req.version()};
    res.set(http::field::content_type, "text/html");
    res.set(http::field::server, "podid-imds-emulator");
    res.keep_alive(req.keep_alive());
    if (retry_after >= 0)
        res.set(http::field::retry_after, std::to_string(retry_after));
    res.body() = "<html><head><title>" + std::to_string(status) + "</title></head><body><h1>" + std::to_string(status) +
                 " (injected fault)</h1></body></html>\n";
    res.prepare_payload();
    return res;
}

}  // namespace podid::emulator
