// Concurrent bursts from many pods at once: for every (cgroup, request) line the client hops into the
// cgroup and opens `per-cgroup` connections to 169.254.169.254:80; only when every connection is open
// does it write all the requests, back to back, so the agent sees them all in flight together.
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "client/args.h"
#include "client/client.h"

namespace podid::bench {
namespace {

struct Line {
    std::string cgroup;
    std::string path;
};

// One burst: returns status -> count (0: no answer).
std::map<int, int> one_burst(const std::vector<Line>& lines, long per_cgroup) {
    std::map<int, int> statuses;
    std::vector<std::pair<int, std::string>> conns;  // fd, request
    for (const auto& l : lines) {
        if (auto err = hop_to(l.cgroup); !err.empty()) {
            std::fprintf(stderr, "burst: %s\n", err.c_str());
            statuses[0] += static_cast<int>(per_cgroup);
            continue;
        }
        for (long i = 0; i < per_cgroup; ++i) {
            int fd = connect_to("169.254.169.254", 80);
            if (fd < 0)
                ++statuses[0];
            else
                conns.emplace_back(fd, token_request(l.path));
        }
    }
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    std::map<int, std::string> received;
    for (auto& [fd, req] : conns) {
        ssize_t n = ::write(fd, req.data(), req.size());  // small enough for one write on a fresh socket
        if (n != static_cast<ssize_t>(req.size())) {
            ++statuses[0];
            ::close(fd);
            continue;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        received[fd];
    }
    std::vector<epoll_event> events(256);
    char buf[16384];
    while (!received.empty()) {
        int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 60'000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;  // a minute without progress: count the rest as unanswered
        for (int i = 0; i < n; ++i) {
            int fd = events[static_cast<size_t>(i)].data.fd;
            ssize_t got = ::read(fd, buf, sizeof(buf));
            if (got > 0) {
                received[fd].append(buf, static_cast<size_t>(got));
                continue;
            }
            if (got < 0 && errno == EINTR)
                continue;
            ++statuses[parse_status(received[fd])];
            received.erase(fd);
            ::close(fd);
        }
    }
    for (auto& [fd, data] : received) {
        ++statuses[0];
        ::close(fd);
    }
    ::close(ep);
    return statuses;
}

}  // namespace

int run_burst(const std::vector<std::string>& argv) {
    Args args = parse_args(argv);
    if (!args.error.empty()) {
        std::fprintf(stderr, "burst: %s\n", args.error.c_str());
        return 2;
    }
    std::vector<Line> lines;
    for (const auto& raw : read_lines(args.get("lines"))) {
        auto tab = raw.find('\t');
        if (tab != std::string::npos)
            lines.push_back({raw.substr(0, tab), raw.substr(tab + 1)});
    }
    const long per_cgroup = args.number("per-cgroup", 1);
    const long rounds = args.number("rounds", 1);
    const long pause_ms = args.number("pause-ms", 0);
    rlimit nofile{65536, 65536};
    ::setrlimit(RLIMIT_NOFILE, &nofile);

    std::ostringstream out;
    out << "{\"rounds\":[";
    for (long r = 0; r < rounds; ++r) {
        int64_t start = monotonic_ns();
        auto statuses = one_burst(lines, per_cgroup);
        out << (r ? "," : "") << "{\"seconds\":" << static_cast<double>(monotonic_ns() - start) / 1e9
            << ",\"status\":{";
        bool first = true;
        for (auto& [status, count] : statuses) {
            out << (first ? "" : ",") << "\"" << status << "\":" << count;
            first = false;
        }
        out << "}}";
        if (pause_ms > 0 && r + 1 < rounds)
            std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
    out << "]}";
    std::printf("%s\n", out.str().c_str());
    return 0;
}

}  // namespace podid::bench
