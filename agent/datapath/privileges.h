// The capabilities the datapath needs, checked before anything is loaded, so an agent started without one of them
// (a DaemonSet edited, a runtime that drops an unknown capability name) refuses to start with one sentence naming
// the capability, instead of an EPERM from libbpf, a verifier log, or a caller that can never be resolved.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace podid {

struct CapabilityRequirement {
    int cap;           // CAP_* number
    const char* name;  // "CAP_BPF"
    const char* why;   // what fails without it, as the rest of the sentence
    int implied_by;    // a capability that grants the same (CAP_SYS_ADMIN did before CAP_BPF existed), or -1
};

// CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_DAC_READ_SEARCH: the four the DaemonSet adds (docs/deploy.md).
const std::vector<CapabilityRequirement>& required_capabilities();

// One sentence per capability missing from `effective` (a CapEff bit mask), "; "-separated; empty when none is.
std::string missing_capabilities_message(uint64_t effective);

// The calling thread's effective set (capget(2)).
Result<uint64_t> effective_capabilities();

// Ok when the effective set holds every required capability; otherwise the sentences above.
Result<void> check_privileges();

}  // namespace podid
