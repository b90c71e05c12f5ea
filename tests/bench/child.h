// A helper process the benchmark talks to line by line (stdin/stdout pipes), started in a netns.
// test::Process only reads a child's output; the cold-path benchmark must also tell the client when
// to go, at the moment it takes its start time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace podid::bench {

class LineChild {
public:
    // argv runs under `nsenter --net=/run/netns/<netns>` (only the netns: cgroupfs stays visible).
    // Throws std::runtime_error when it cannot be started.
    LineChild(const std::string& netns, const std::vector<std::string>& argv);
    ~LineChild();  // SIGKILL and reap
    LineChild(const LineChild&) = delete;
    LineChild& operator=(const LineChild&) = delete;

    bool write_line(const std::string& line);
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int in_ = -1, out_ = -1;
    std::string buffer_;
};

}  // namespace podid::bench
