// What the kernel recorded about a connection when its process called connect(): the first stage of the
// request pipeline (kernel -> origin -> caller -> binding -> token -> response).
#pragma once

#include <cstdint>
#include <string>

namespace podid {

// The origin record the connect hook stored for a connection (see include/podid/abi.h).
struct Origin {
    uint64_t cgroup_id = 0;
    uint32_t pid = 0;         // tgid of the connecting process
    std::string comm;         // its command name (16 bytes max)
    std::string orig_dst;     // "169.254.169.254:80" as the application asked
    bool redirected = false;  // true when the hook rewrote the destination
    uint64_t connect_ns = 0;  // CLOCK_MONOTONIC when the process called connect() (bpf_ktime_get_ns); 0: unknown
};

}  // namespace podid
