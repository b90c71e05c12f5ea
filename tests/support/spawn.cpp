#include "spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

extern char** environ;

namespace podid::test {
namespace {

// Closes an fd on scope exit; the spawn path has several early throws.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0)
            ::close(fd);
        fd = -1;
    }
    int release() { return std::exchange(fd, -1); }
};

// What the child reports through the status pipe when setup fails before exec.
struct SetupFailure {
    int stage;  // 1 = cgroup, 2 = netns
    int err;
};

// Everything below runs in the forked child of a possibly multi-threaded parent: only async-signal-safe
// calls (no allocation), so all strings were prepared by the parent.
[[noreturn]] void child_fail_setup(int status_fd, int stage, int err) {
    SetupFailure f{stage, err};
    [[maybe_unused]] auto n = ::write(status_fd, &f, sizeof f);
    ::_exit(126);
}

void child_write_all(int fd, const char* s) {
    size_t len = std::strlen(s);
    while (len > 0) {
        ssize_t n = ::write(fd, s, len);
        if (n <= 0)
            return;
        s += n;
        len -= static_cast<size_t>(n);
    }
}

[[noreturn]] void child_main(pid_t parent, int status_fd, int cgroup_fd, int netns_fd, int out_fd, int err_fd,
                             char* const* argv, char* const* envp) {
    // Die with the test (PR_SET_PDEATHSIG fires when the forking thread exits); if the parent is already
    // gone the signal would never come.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
        ::_exit(126);

    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    ::signal(SIGPIPE, SIG_DFL);

    // The cgroup first: joining it needs the cgroupfs view of the mount namespace, which setns(CLONE_NEWNET)
    // leaves alone, but doing it first means the process is never observable in the netns without its cgroup.
    if (cgroup_fd >= 0) {
        // "0" names the writing process itself.
        if (::write(cgroup_fd, "0", 1) != 1)
            child_fail_setup(status_fd, 1, errno);
    }
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0)
        child_fail_setup(status_fd, 2, errno);

    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0)
        child_fail_setup(status_fd, 3, errno);
    // Nothing but stdio crosses exec: a descriptor the test process opened without O_CLOEXEC (a server's
    // accepted socket, between accept and fcntl) would keep that connection alive in the child.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

    ::execvpe(argv[0], argv, envp);
    int err = errno;
    child_write_all(2, "podid test node: cannot exec ");
    child_write_all(2, argv[0]);
    child_write_all(2, ": ");
    child_write_all(2, ::strerrordesc_np(err) ? ::strerrordesc_np(err) : "unknown error");
    child_write_all(2, "\n");
    ::_exit(127);
}

std::vector<std::string> merged_env(const std::map<std::string, std::string>& extra) {
    std::map<std::string, std::string> vars;
    for (char** e = environ; e && *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq == std::string::npos)
            continue;
        vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : extra)
        vars[k] = v;
    std::vector<std::string> out;
    out.reserve(vars.size());
    for (const auto& [k, v] : vars)
        out.push_back(k + "=" + v);
    return out;
}

std::vector<char*> c_array(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

}  // namespace

std::string join_argv(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty())
            out += ' ';
        out += a;
    }
    return out;
}

bool is_unreaped_child(pid_t pid) {
    siginfo_t info{};
    return pid > 0 && ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

bool on_path(const std::string& program) {
    if (program.find('/') != std::string::npos)
        return ::access(program.c_str(), X_OK) == 0;
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos)
            end = dirs.size();
        std::string dir = dirs.substr(start, end - start);
        if (dir.empty())
            dir = ".";
        if (::access((dir + "/" + program).c_str(), X_OK) == 0)
            return true;
        start = end + 1;
    }
    return false;
}

Process spawn_process(const SpawnRequest& request) {
    if (request.argv.empty())
        throw std::invalid_argument("spawn: empty argv");

    Fd cgroup_fd, netns_fd;
    if (!request.cgroup_dir.empty()) {
        std::string procs = request.cgroup_dir + "/cgroup.procs";
        cgroup_fd.fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
        if (cgroup_fd.fd < 0)
            throw std::runtime_error("spawn " + request.argv[0] + ": cannot open " + procs + ": " +
                                     std::strerror(errno));
    }
    if (!request.netns.empty()) {
        std::string path = "/run/netns/" + request.netns;
        netns_fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (netns_fd.fd < 0)
            throw std::runtime_error("spawn " + request.argv[0] + ": cannot open network namespace " + path + ": " +
                                     std::strerror(errno));
    }

    // O_CLOEXEC on every pipe: a concurrently spawned child must not inherit another child's write end,
    // or that pipe never reaches EOF.
    int out_pipe[2], err_pipe[2], status_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    Fd err_r(err_pipe[0]), err_w(err_pipe[1]);
    if (::pipe2(status_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    Fd status_r(status_pipe[0]), status_w(status_pipe[1]);

    std::vector<std::string> argv_s = request.argv;
    std::vector<std::string> env_s = merged_env(request.env);
    std::vector<char*> argv = c_array(argv_s);
    std::vector<char*> envp = c_array(env_s);
    pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0)
        child_main(parent, status_w.fd, cgroup_fd.fd, netns_fd.fd, out_w.fd, err_w.fd, argv.data(), envp.data());

    status_w.reset();
    out_w.reset();
    err_w.reset();

    // EOF (exec closed the CLOEXEC write end) means setup succeeded; a record means it failed.
    SetupFailure failure{};
    ssize_t n;
    do {
        n = ::read(status_r.fd, &failure, sizeof failure);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof failure)) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        const char* what = failure.stage == 1   ? "joining cgroup "
                           : failure.stage == 2 ? "entering network namespace "
                                                : "redirecting stdio";
        std::string target = failure.stage == 1 ? request.cgroup_dir : failure.stage == 2 ? request.netns : "";
        throw std::runtime_error("spawn " + request.argv[0] + ": " + what + target +
                                 " failed: " + std::strerror(failure.err));
    }

    for (int fd : {out_r.fd, err_r.fd})
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return Process(pid, out_r.release(), err_r.release());
}

std::string run_checked(const std::vector<std::string>& argv) {
    RunResult r = spawn_process(SpawnRequest{argv, "", "", {}}).wait(std::chrono::seconds(30));
    if (r.exit_code != 0) {
        std::string err = r.err;
        while (!err.empty() && (err.back() == '\n' || err.back() == ' '))
            err.pop_back();
        std::string how = r.timed_out ? "timed out" : "exited with " + std::to_string(r.exit_code);
        throw std::runtime_error("`" + join_argv(argv) + "` " + how + (err.empty() ? "" : ": " + err));
    }
    return r.out;
}

}  // namespace podid::test
