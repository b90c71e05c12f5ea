// One redirected connection from each listed cgroup, so the BPF per-cgroup counter map gets an entry
// for every one of them (the footprint benchmark's "cgroups tracked").
#include <cstdio>

#include "client/args.h"
#include "client/client.h"

namespace podid::bench {

int run_touch(const std::vector<std::string>& argv) {
    Args args = parse_args(argv);
    if (!args.error.empty()) {
        std::fprintf(stderr, "touch: %s\n", args.error.c_str());
        return 2;
    }
    long touched = 0, errors = 0;
    for (const auto& cgroup : read_lines(args.get("cgroups"))) {
        if (!hop_to(cgroup).empty()) {
            ++errors;
            continue;
        }
        int fd = connect_to("169.254.169.254", 80);
        if (fd < 0) {
            ++errors;
            continue;
        }
        close_with_reset(fd);
        ++touched;
    }
    std::printf("{\"touched\":%ld,\"errors\":%ld}\n", touched, errors);
    return 0;
}

}  // namespace podid::bench
