// Connections per second to ip:port from the calling process's netns and cgroup. Each connection is
// opened, waited on until the server has accepted and closed it (read returns 0), then reset: the
// loop measures complete connection set-ups and leaves no TIME_WAIT behind (see close_with_reset).
//
// connect-loop runs one target for --seconds. connect-alternate runs several targets in short blocks,
// round after round, each from a worker process resident in the target's cgroup: a socket belongs to the
// cgroup its creator was in, so the cgroup programs that run on a block's connections are that target's.
// Rounds of ~0.1 s blocks put every target beside the others within a fraction of a second, so drift of the
// machine's speed over seconds (other tenants, frequency) cancels out of per-round ratios.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "client/args.h"
#include "client/client.h"

namespace podid::bench {

namespace {

struct BlockResult {
    uint64_t connections = 0, errors = 0;
    int first_errno = 0;
    double seconds = 0;
    double busy_seconds = -1;  // CPU time of the whole machine (all CPUs, any task) over the block; -1: unknown
};

// Idle time of all CPUs so far, in µs, from cpuidle's per-state residency (µs resolution, unlike /proc/stat's
// ticks); -1 where the kernel has no cpuidle driver. Busy time over an interval is CPUs x wall time minus its
// growth: everything the machine did, client, server, softirq and the rest, which is what a connection costs.
double idle_microseconds() {
    double total = 0;
    bool any = false;
    for (int cpu = 0;; ++cpu) {
        const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/cpuidle";
        if (::access(dir.c_str(), F_OK) != 0)
            break;
        for (int state = 0;; ++state) {
            std::ifstream in(dir + "/state" + std::to_string(state) + "/time");
            double us = 0;
            if (!(in >> us))
                break;
            total += us;
            any = true;
        }
    }
    return any ? total : -1;
}

// `threads` threads open connections to ip:port until `seconds` have passed.
BlockResult connect_block(const std::string& ip, uint16_t port, double seconds, long threads) {
    std::atomic<uint64_t> done{0}, errors{0};
    std::atomic<int> first_errno{0};
    const double idle_before = idle_microseconds();
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
    const double idle_after = idle_microseconds();
    double busy = -1;
    if (idle_before >= 0 && idle_after >= 0)
        busy = static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN)) * elapsed - (idle_after - idle_before) / 1e6;
    return {done.load(), errors.load(), first_errno.load(), elapsed, busy};
}

struct Target {
    std::string ip;
    uint16_t port = 0;
    std::string cgroup;
};

// "ip:port@cgroup-dir"
bool parse_target(const std::string& text, Target& out) {
    auto at = text.find('@');
    auto colon = text.rfind(':', at);
    if (at == std::string::npos || colon == std::string::npos || colon == 0 || at + 1 >= text.size())
        return false;
    out.ip = text.substr(0, colon);
    long port = std::strtol(text.c_str() + colon + 1, nullptr, 10);
    if (port <= 0 || port > 65535)
        return false;
    out.port = static_cast<uint16_t>(port);
    out.cgroup = text.substr(at + 1);
    return true;
}

}  // namespace

int run_connect_loop(const std::vector<std::string>& argv) {
    Args args = parse_args(argv);
    if (!args.error.empty()) {
        std::fprintf(stderr, "connect-loop: %s\n", args.error.c_str());
        return 2;
    }
    BlockResult r = connect_block(args.get("ip"), static_cast<uint16_t>(args.number("port", 80)),
                                  std::stod(args.get("seconds", "1")), args.number("threads", 1));
    std::printf("{\"connections\":%llu,\"errors\":%llu,\"first_errno\":%d,\"seconds\":%.6f}\n",
                static_cast<unsigned long long>(r.connections), static_cast<unsigned long long>(r.errors),
                r.first_errno, r.seconds);
    return 0;
}

namespace {

// One process per target, resident in the target's cgroup for the whole run: it runs a block each time the
// coordinator writes a byte to `go`, and answers with the block's result on `done`.
struct Worker {
    pid_t pid = -1;
    int go = -1, done = -1;
};

// Runs `io` (::read or ::write) until `size` bytes have moved; false on end of file or an error.
template <typename Io, typename Byte>
bool io_all(Io io, int fd, Byte* p, size_t size) {
    while (size > 0) {
        ssize_t n = io(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        size -= static_cast<size_t>(n);
    }
    return true;
}

// Forks the worker of `target`; returns it with pid -1 on failure (message on stderr). The child closes the
// coordinator's ends of the `earlier` workers' pipes, or those would never see the end of their `go`.
Worker start_worker(const Target& target, double block, long threads, const std::vector<Worker>& earlier) {
    int go[2], done[2];
    if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(done, O_CLOEXEC) != 0) {
        std::perror("connect-alternate: pipe");
        return {};
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        std::perror("connect-alternate: fork");
        return {};
    }
    if (pid == 0) {
        ::close(go[1]);
        ::close(done[0]);
        for (const auto& w : earlier) {
            ::close(w.go);
            ::close(w.done);
        }
        if (auto err = hop_to(target.cgroup); !err.empty()) {
            std::fprintf(stderr, "connect-alternate: %s\n", err.c_str());
            ::_exit(1);
        }
        char command;
        while (io_all(::read, go[0], &command, 1)) {
            BlockResult r = connect_block(target.ip, target.port, block, threads);
            if (!io_all(::write, done[1], reinterpret_cast<const char*>(&r), sizeof(r)))
                break;
        }
        ::_exit(0);  // the coordinator closed `go`: the run is over
    }
    ::close(go[0]);
    ::close(done[1]);
    return {pid, go[1], done[0]};
}

}  // namespace

// --targets ip:port@cgroup,... --block-seconds S --rounds N --threads T
// Prints {"rates":[[conn/s of target 0 per round...], ...], "cpu_us_per_connection":[[...], ...], "errors":E,
// "first_errno":e}.
//
// Each target has a worker process that moves into the target's cgroup once, before the first block: moving a
// process between cgroups before every block made the block after a move ~1-2 % slower than a block after none,
// which, with the order of a round fixed, tilted the ratios by position. Round r runs the targets rotated by r,
// every other sweep of n rounds reversed, so each target runs in each position, and right before and after each
// other one, equally often.
int run_connect_alternate(const std::vector<std::string>& argv) {
    Args args = parse_args(argv);
    if (!args.error.empty()) {
        std::fprintf(stderr, "connect-alternate: %s\n", args.error.c_str());
        return 2;
    }
    std::vector<Target> targets;
    std::stringstream list(args.get("targets"));
    for (std::string item; std::getline(list, item, ',');) {
        Target t;
        if (!parse_target(item, t)) {
            std::fprintf(stderr, "connect-alternate: bad target '%s' (want ip:port@cgroup-dir)\n", item.c_str());
            return 2;
        }
        targets.push_back(t);
    }
    if (targets.size() < 2) {
        std::fprintf(stderr, "connect-alternate: --targets needs at least two ip:port@cgroup-dir entries\n");
        return 2;
    }
    const double block = std::stod(args.get("block-seconds", "0.1"));
    const long rounds = args.number("rounds", 10);
    const long threads = args.number("threads", 1);

    std::signal(SIGPIPE, SIG_IGN);  // a worker that exited is reported, not a reason to die writing to it
    std::vector<Worker> workers;
    bool failed = false;
    for (const auto& t : targets) {
        workers.push_back(start_worker(t, block, threads, workers));
        failed = failed || workers.back().pid < 0;
    }
    const size_t n = targets.size();
    std::vector<std::vector<double>> rates(n), cpu(n);
    uint64_t errors = 0;
    int first_errno = 0;
    for (long round = 0; round < rounds && !failed; ++round) {
        const bool reversed = (round / static_cast<long>(n)) % 2 == 1;
        for (size_t i = 0; i < n && !failed; ++i) {
            size_t k = (static_cast<size_t>(round) + (reversed ? n - 1 - i : i)) % n;
            BlockResult r;
            if (!io_all(::write, workers[k].go, "g", 1) ||
                !io_all(::read, workers[k].done, reinterpret_cast<char*>(&r), sizeof(r))) {
                std::fprintf(stderr, "connect-alternate: the worker for %s:%u@%s exited\n", targets[k].ip.c_str(),
                             targets[k].port, targets[k].cgroup.c_str());
                failed = true;
                break;
            }
            rates[k].push_back(static_cast<double>(r.connections) / r.seconds);
            if (r.busy_seconds >= 0 && r.connections > 0)
                cpu[k].push_back(r.busy_seconds * 1e6 / static_cast<double>(r.connections));
            errors += r.errors;
            if (first_errno == 0)
                first_errno = r.first_errno;
        }
    }
    for (auto& w : workers) {
        if (w.pid < 0)
            continue;
        ::close(w.go);
        ::close(w.done);
        int status = 0;
        while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (failed)
        return 1;
    auto print_series = [](const char* name, const std::vector<std::vector<double>>& series) {
        std::printf("\"%s\":[", name);
        for (size_t k = 0; k < series.size(); ++k) {
            std::printf("%s[", k ? "," : "");
            for (size_t i = 0; i < series[k].size(); ++i)
                std::printf("%s%.2f", i ? "," : "", series[k][i]);
            std::printf("]");
        }
        std::printf("],");
    };
    std::printf("{");
    print_series("rates", rates);
    print_series("cpu_us_per_connection", cpu);  // empty lists without cpuidle
    std::printf("\"errors\":%llu,\"first_errno\":%d}\n", static_cast<unsigned long long>(errors), first_errno);
    return 0;
}

}  // namespace podid::bench
