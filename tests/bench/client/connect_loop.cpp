// Connections per second to ip:port from the calling process's netns and cgroup. Each connection is
// opened, waited on until the server has accepted and closed it (read returns 0), then reset: the
// loop measures complete connection set-ups and leaves no TIME_WAIT behind (see close_with_reset).
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <thread>
#include <vector>

#include "client/args.h"
#include "client/client.h"

namespace podid::bench {

int run_connect_loop(const std::vector<std::string>& argv) {
    Args args = parse_args(argv);
    if (!args.error.empty()) {
        std::fprintf(stderr, "connect-loop: %s\n", args.error.c_str());
        return 2;
    }
    const std::string ip = args.get("ip");
    const auto port = static_cast<uint16_t>(args.number("port", 80));
    const double seconds = std::stod(args.get("seconds", "1"));
    const long threads = args.number("threads", 1);

    std::atomic<uint64_t> done{0}, errors{0};
    std::atomic<int> first_errno{0};
    const int64_t start = monotonic_ns();
    const int64_t deadline = start + static_cast<int64_t>(seconds * 1e9);
    std::vector<std::thread> workers;
    for (long t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            uint64_t ok = 0, bad = 0;
            char byte;
            while (monotonic_ns() < deadline) {
                int fd = connect_to(ip, port);
                if (fd < 0) {
                    int zero = 0;
                    first_errno.compare_exchange_strong(zero, errno);
                    ++bad;
                    continue;
                }
                while (::read(fd, &byte, 1) < 0 && errno == EINTR) {
                }
                close_with_reset(fd);
                ++ok;
            }
            done += ok;
            errors += bad;
        });
    }
    for (auto& w : workers)
        w.join();
    const double elapsed = static_cast<double>(monotonic_ns() - start) / 1e9;
    std::printf("{\"connections\":%llu,\"errors\":%llu,\"first_errno\":%d,\"seconds\":%.6f}\n",
                static_cast<unsigned long long>(done.load()), static_cast<unsigned long long>(errors.load()),
                first_errno.load(), elapsed);
    return 0;
}

}  // namespace podid::bench
