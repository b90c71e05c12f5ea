// Liveness and readiness of the agent, as answered on /healthz and /readyz and exported as podid_ready.
//
// Ready means a pod asking for a token right now would be served correctly: the BPF programs are attached, the
// self-check proved recently that a connection from a pod cgroup reaches this agent with its origin recorded, and
// the bindings source has loaded (file parsed, Kubernetes lists synced). Each condition comes from a provider so
// that this file depends on none of those parts; an empty provider means "not wired" and fails readiness, except
// the self-check, which may be switched off on purpose (self_check_enabled = false).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace podid {

// The latest self-check outcome (selfcheck.h fills it in).
struct SelfCheckStatus {
    bool passed = false;
    int64_t finished_ms = 0;  // steady-clock milliseconds of the last run's end; 0 = never ran
    std::string detail;       // why it failed, or what it saw
};

struct HealthSources {
    std::function<size_t()> programs_attached;    // Datapath::report().size()
    size_t programs_expected = 1;                 // fewer attached programs is not ready
    std::function<SelfCheckStatus()> self_check;  // SelfCheck::status
    bool self_check_enabled = true;
    std::chrono::milliseconds self_check_max_age{90'000};  // a pass older than this no longer counts
    std::function<bool()> bindings_ready;                  // BindingSource::ready
    // Non-empty once this agent has handed its listeners to the next one (admin/handover.h): it serves nobody new,
    // so it is not ready, whatever else holds. Optional.
    std::function<std::string()> retired;
    std::function<int64_t()> now_ms;  // steady clock; default: std::chrono::steady_clock
};

struct Readiness {
    bool ready = false;
    std::string reason;  // "" when ready, else one short line such as "kubernetes lists not synced"
};

class Health {
public:
    explicit Health(HealthSources sources);
    Readiness readiness() const;

private:
    HealthSources s_;
};

int64_t steady_now_ms();

}  // namespace podid
