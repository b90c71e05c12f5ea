// What the phases of the guest check share (guest_check.cpp: the datapath; agent_check.cpp: the real agent): the
// PODID-KERNEL-CHECK reporter, starting commands in a network namespace and cgroup, the pod's network namespace and
// the cgroups made for the check. Plain syscalls only: the guest has busybox, the check and the binaries under test.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/fd.h"

namespace podid::kernel_check {

// The node the check builds: a "node" network namespace holding the node IP and 169.254.169.254 (on its loopback),
// and a pod network namespace behind a veth.
constexpr const char* kNodeIp = "10.77.0.1";
constexpr const char* kPodIp = "10.77.0.2";
constexpr const char* kMetadataIp = "169.254.169.254";
constexpr uint16_t kAgentPort = 2579;  // the agent's default --port

class Reporter {
public:
    bool check(const std::string& name, bool ok, const std::string& detail) {
        std::printf("PODID-KERNEL-CHECK %s %s %s\n", name.c_str(), ok ? "PASS" : "FAIL", detail.c_str());
        std::fflush(stdout);
        (ok ? pass_ : fail_)++;
        return ok;
    }
    int done() {
        std::printf("PODID-KERNEL-DONE pass=%d fail=%d\n", pass_, fail_);
        std::fflush(stdout);
        return fail_ == 0 ? 0 : 1;
    }
    int failures() const { return fail_; }

private:
    int pass_ = 0;
    int fail_ = 0;
};

inline std::string one_token(std::string s) {
    for (char& c : s)
        if (c == ' ')
            c = '_';
    return s;
}

inline std::string errno_text() { return std::strerror(errno); }

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct RunResult {
    int exit_code = -1;
    std::string out;
};

// Starts argv, optionally inside a network namespace and a cgroup: the child joins the cgroup first (its pid
// written to cgroup.procs), then the netns, so the connect hooks see the pod's cgroup.
struct Spawned {
    pid_t pid = -1;
    int out = -1;
};

inline Spawned spawn(const std::vector<std::string>& argv, int netns_fd, const std::string& cgroup) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return {};
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(out[1], 2);
        if (!cgroup.empty()) {
            int fd = open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
            if (fd < 0 || write(fd, "0", 1) != 1)
                _exit(126);
            close(fd);
        }
        if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0)
            _exit(126);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(out[1]);
    return {pid, out[0]};
}

inline RunResult finish(const Spawned& s) {
    RunResult r;
    if (s.pid < 0)
        return r;
    char buf[4096];
    ssize_t n;
    while ((n = read(s.out, buf, sizeof(buf))) > 0)
        r.out.append(buf, static_cast<size_t>(n));
    close(s.out);
    int status = 0;
    waitpid(s.pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    while (!r.out.empty() && r.out.back() == '\n')
        r.out.pop_back();
    return r;
}

inline RunResult run(const std::vector<std::string>& argv, int netns_fd = -1, const std::string& cgroup = {}) {
    return finish(spawn(argv, netns_fd, cgroup));
}

// A process that only holds the pod's network namespace open; killed at the end.
class PodNetns {
public:
    PodNetns() {
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) != 0)
            return;
        pid_ = fork();
        if (pid_ == 0) {
            char ok = unshare(CLONE_NEWNET) == 0 ? '1' : '0';
            (void)!write(ready[1], &ok, 1);
            for (;;)
                pause();
        }
        close(ready[1]);
        char ok = '0';
        (void)!read(ready[0], &ok, 1);
        close(ready[0]);
        if (ok == '1')
            fd_ = Fd(open(("/proc/" + std::to_string(pid_) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
    }
    ~PodNetns() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    PodNetns(const PodNetns&) = delete;
    PodNetns& operator=(const PodNetns&) = delete;
    bool valid() const { return fd_.valid(); }
    int fd() const { return fd_.get(); }
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    Fd fd_;
};

// Cgroups made for the check, removed (children first) at the end.
class Cgroups {
public:
    ~Cgroups() {
        for (auto it = made_.rbegin(); it != made_.rend(); ++it)
            rmdir(it->c_str());
    }
    bool make(const std::string& path) {
        if (mkdir(path.c_str(), 0755) != 0)
            return false;
        made_.push_back(path);
        return true;
    }

private:
    std::vector<std::string> made_;
};

}  // namespace podid::kernel_check
