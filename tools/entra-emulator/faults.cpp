#include "faults.h"

namespace podid::entra_emulator {
namespace {

Result<int> fault_int(const nlohmann::json& json, const char* name, int fallback) {
    if (!json.contains(name))
        return fallback;
    if (!json[name].is_number_integer())
        return make_error(std::string("fault field '") + name + "' must be an integer");
    return json[name].get<int>();
}

}  // namespace

Result<FaultSpec> parse_fault(const nlohmann::json& json) {
    if (!json.is_object() || !json.contains("mode") || !json["mode"].is_string())
        return make_error("a fault is a JSON object with \"mode\": none, status or latency");
    FaultSpec spec;
    std::string mode = json["mode"].get<std::string>();
    if (mode == "none")
        return spec;
    if (mode == "status")
        spec.mode = FaultMode::status;
    else if (mode == "latency")
        spec.mode = FaultMode::latency;
    else
        return make_error("unknown fault mode '" + mode + "' (none, status, latency)");

    auto status = fault_int(json, "status", 503);
    auto retry_after = fault_int(json, "retry_after", -1);
    auto latency = fault_int(json, "latency_ms", 0);
    auto count = fault_int(json, "count", -1);
    auto duration = fault_int(json, "duration_ms", -1);
    for (const auto* r : {&status, &retry_after, &latency, &count, &duration}) {
        if (!*r)
            return r->error();
    }
    if (spec.mode == FaultMode::status && *status != 429 && (*status < 500 || *status > 599))
        return make_error("a status fault answers 429 or a 5xx status");
    if (*latency < 0 || *count < -1 || *duration < -1 || *retry_after < -1)
        return make_error("fault latency_ms, count, duration_ms and retry_after must not be negative");
    if (spec.mode == FaultMode::latency && *latency == 0)
        return make_error("a latency fault needs latency_ms > 0");
    spec.status = static_cast<unsigned>(*status);
    spec.retry_after = *retry_after;
    spec.latency_ms = *latency;
    spec.count = *count;
    spec.duration_ms = *duration;
    if (spec.count == 0 || spec.duration_ms == 0)
        spec = FaultSpec{};
    return spec;
}

Result<FaultSpec> parse_fault(std::string_view text) {
    auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded())
        return make_error("a fault must be JSON");
    return parse_fault(json);
}

nlohmann::json to_json(const FaultSpec& spec) {
    const char* mode = spec.mode == FaultMode::status ? "status" : spec.mode == FaultMode::latency ? "latency" : "none";
    return {{"mode", mode},
            {"status", spec.status},
            {"retry_after", spec.retry_after},
            {"latency_ms", spec.latency_ms},
            {"count", spec.count},
            {"duration_ms", spec.duration_ms}};
}

void FaultState::set(const FaultSpec& spec, Clock::time_point now) {
    std::lock_guard lock(mu_);
    spec_ = spec;
    until_ = now + std::chrono::milliseconds(spec.duration_ms);
}

bool FaultState::expired_locked(Clock::time_point now) const { return spec_.duration_ms >= 0 && now >= until_; }

FaultSpec FaultState::current(Clock::time_point now) const {
    std::lock_guard lock(mu_);
    if (spec_.mode == FaultMode::none || expired_locked(now))
        return FaultSpec{};
    FaultSpec left = spec_;
    if (left.duration_ms >= 0)
        left.duration_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(until_ - now).count());
    return left;
}

FaultAction FaultState::take(Clock::time_point now) {
    std::lock_guard lock(mu_);
    if (spec_.mode == FaultMode::none)
        return {};
    if (expired_locked(now)) {
        spec_ = FaultSpec{};
        return {};
    }
    FaultAction action{spec_.mode, spec_.status, spec_.retry_after, spec_.latency_ms};
    if (spec_.count > 0 && --spec_.count == 0)
        spec_ = FaultSpec{};
    return action;
}

}  // namespace podid::entra_emulator
