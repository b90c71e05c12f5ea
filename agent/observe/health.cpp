#include "observe/health.h"

namespace podid {

int64_t steady_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

Health::Health(HealthSources sources) : s_(std::move(sources)) {
    if (!s_.now_ms)
        s_.now_ms = steady_now_ms;
}

Readiness Health::readiness() const {
    if (s_.retired)
        if (std::string why = s_.retired(); !why.empty())
            return {false, why};
    size_t attached = s_.programs_attached ? s_.programs_attached() : 0;
    if (attached == 0)
        return {false, "BPF programs not attached"};
    if (attached < s_.programs_expected)
        return {false, "only " + std::to_string(attached) + " of " + std::to_string(s_.programs_expected) +
                           " BPF programs attached"};
    if (s_.self_check_enabled) {
        if (!s_.self_check)
            return {false, "self-check not running"};
        auto st = s_.self_check();
        if (st.finished_ms == 0)
            return {false, "self-check has not run yet"};
        if (!st.passed)
            return {false, "self-check failed: " + st.detail};
        if (s_.now_ms() - st.finished_ms > s_.self_check_max_age.count())
            return {false, "self-check result is stale"};
    }
    if (!s_.bindings_ready || !s_.bindings_ready())
        return {false, "bindings not loaded (kubernetes lists not synced or bindings file not read)"};
    return {true, ""};
}

}  // namespace podid
