// The self-check: proves the redirect works end to end from a pod's point of view, for /readyz and podid_ready.
//
// A process is started inside a cgroup of its own below the cgroup the programs attach to
// (<cgroup_root>/podid-selfcheck.scope), so the kernel treats it exactly like a container. It connects to
// 169.254.169.254:80 and sends `GET /_podid/selfcheck HTTP/1.1`. The agent's server answers that path with 200 and
// the body `podid-selfcheck cgroup=<origin cgroup id>`, the id the connect hook recorded. The check passes only
// when that id is the self-check cgroup's: the connection was redirected (else IMDS or nobody answers) and its
// origin was recorded and found (else the id would be missing or another cgroup's).
//
// Where the kernel refuses to place a process there, the check moves once, for good, to a cgroup below the agent's
// own (<own cgroup>/podid-selfcheck), when that lies below the cgroup root. That is the DaemonSet on a node whose
// cgroup2 is mounted with nsdelegate (systemd's default: AKS's Ubuntu and Azure Linux): the agent's container has a
// private cgroup namespace rooted at its own cgroup, and the kernel lets a process move only between cgroups inside
// that namespace (ENOENT otherwise). Its own cgroup is exempt, but the exemption is by exact cgroup id, so a child
// cgroup of it is redirected like any pod's.
//
// The child starts directly in the cgroup with clone3(CLONE_INTO_CGROUP) (kernel >= 5.7); on older kernels, or
// where a seccomp profile refuses clone3, it forks and moves itself by writing "0" to cgroup.procs before
// connecting. Between fork and _exit the child makes only async-signal-safe system calls on buffers prepared
// before the fork (the agent is multi-threaded; malloc or locks in the child could deadlock).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "http/selfcheck_route.h"
#include "observe/health.h"

namespace podid {

struct SelfCheckOptions {
    std::string cgroup_root;  // absolute: where the programs attach
    std::string cgroup_name = "podid-selfcheck.scope";
    std::string target_ip = "169.254.169.254";  // what a pod would dial
    uint16_t target_port = 80;
    std::chrono::milliseconds timeout{3000};     // connect + answer
    std::chrono::milliseconds interval{30'000};  // between runs when start()ed
    bool use_clone3 = true;                      // false: always fork + cgroup.procs (older kernels)
    // The agent's own cgroup (absolute path) when it lies below cgroup_root, else "": where the check moves when the
    // kernel refuses to place a process below cgroup_root. Asked only then (the agent may find its cgroup late).
    std::function<std::string()> own_cgroup;
    std::string fallback_name = "podid-selfcheck";
    std::function<void(const SelfCheckStatus&)> on_result;  // after every run (logging on change)
};

// The request the child sends, byte for byte.
std::string selfcheck_request();

// Judges the raw HTTP answer the child read: passed when it is a 200 whose body names `cgroup_id`.
SelfCheckStatus judge_selfcheck_response(std::string_view raw, uint64_t cgroup_id);

class SelfCheck {
public:
    explicit SelfCheck(SelfCheckOptions options);
    ~SelfCheck();  // stop(), then removes the cgroup (best effort)
    SelfCheck(const SelfCheck&) = delete;
    SelfCheck& operator=(const SelfCheck&) = delete;

    // One check, blocking for up to timeout (+ child reaping). Creates the cgroup on first use.
    SelfCheckStatus run_once();

    // Runs now and then every interval on a thread of its own (never on the io threads: run_once blocks).
    void start();
    void stop();

    SelfCheckStatus status() const;
    std::string cgroup_path() const;  // where the check runs: below cgroup_root, or below the agent's own cgroup
    uint64_t cgroup_id() const;       // inode of the cgroup directory; 0 until created

private:
    SelfCheckStatus check();
    // One run in the cgroup at `path`. `refused` is set when the process could not be placed there.
    SelfCheckStatus check_in(const std::string& path, bool& refused);

    SelfCheckOptions o_;
    std::string cgroup_path_;  // written by runs only (run_mu_), read under mu_
    uint64_t cgroup_id_ = 0;
    bool created_ = false;
    bool moved_ = false;  // running below the agent's own cgroup

    mutable std::mutex mu_;  // guards status_, stopping_, cgroup_path_ (for readers), cgroup_id_
    std::condition_variable cv_;
    SelfCheckStatus status_;
    bool stopping_ = false;
    std::mutex run_mu_;  // one run at a time
    std::thread thread_;
};

}  // namespace podid
