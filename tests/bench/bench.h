// The benchmarks of podid-bench, one file each; run by main.cpp in this order.
#pragma once

#include <string>

#include "report.h"

namespace podid::bench {

struct BenchOptions {
    bool quick = false;  // a few seconds in all: keeps the suite from rotting, proves nothing about speed
    // token_serving and connect_path: once the node (and agent, nginx) is up, print how to reach it and wait for
    // Enter before measuring, so perf/strace/bpftool can be pointed at a live setup.
    bool hold = false;
    // connect_path only: rounds of 0.1 s blocks per variant (0: 320, or 4 with quick). More rounds narrow the
    // confidence interval of the ratios as 1/sqrt(rounds): 320 take ~3 min, 1,280 about 11.
    int connect_rounds = 0;
};

// Each fills `out` (figures, targets, notes); a harness failure is thrown and recorded by the caller.
void bench_token_serving(const BenchOptions& options, Section& out);
void bench_connect_path(const BenchOptions& options, Section& out);
void bench_upstream_amplification(const BenchOptions& options, Section& out);
void bench_footprint(const BenchOptions& options, Section& out);
void bench_cold_paths(const BenchOptions& options, Section& out);
void bench_upgrades(const BenchOptions& options, Section& out);

}  // namespace podid::bench
