// A process's memory and CPU from /proc, for the footprint benchmark.
#pragma once

#include <sys/types.h>

namespace podid::bench {

struct ProcUsage {
    double rss_mib = 0;      // VmRSS
    double hwm_mib = 0;      // VmHWM (peak RSS)
    double cpu_seconds = 0;  // utime + stime
    bool ok = false;
};

ProcUsage read_proc_usage(pid_t pid);

}  // namespace podid::bench
