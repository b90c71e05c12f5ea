#include "observe/selfcheck.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fd.h"
#include "common/log.h"

namespace podid {

namespace {

// What the child reports when the kernel refuses to move it into the cgroup.
constexpr std::string_view kJoinFailed = "!join cgroup";

// Everything the child needs, prepared before the fork so that the child allocates nothing.
struct ChildPlan {
    sockaddr_in addr{};
    const char* request = nullptr;
    size_t request_len = 0;
    int out_fd = -1;    // pipe write end: the raw answer, or "!<step>" on failure
    int procs_fd = -1;  // fork fallback: the cgroup's cgroup.procs, written with "0" (this process)
    unsigned timeout_s = 3;
};

void write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= static_cast<size_t>(w);
    }
}

// Runs in the child: async-signal-safe calls only. The exit status carries errno of the failed step.
[[noreturn]] void child_main(const ChildPlan& p) {
    auto fail = [&](const char* step, size_t len) {
        int e = errno;
        write_all(p.out_fd, step, len);
        _exit(e > 0 && e < 256 ? e : 255);
    };
    if (p.procs_fd >= 0 && write(p.procs_fd, "0", 1) != 1)
        fail(kJoinFailed.data(), kJoinFailed.size());
    alarm(p.timeout_s);  // SIGALRM's default action ends a child stuck in connect or read
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        fail("!socket", 7);
    if (connect(s, reinterpret_cast<const sockaddr*>(&p.addr), sizeof(p.addr)) != 0)
        fail("!connect", 8);
    for (size_t off = 0; off < p.request_len;) {
        ssize_t w = write(s, p.request + off, p.request_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            fail("!send", 5);
        off += static_cast<size_t>(w);
    }
    char buf[2048];
    for (;;) {
        ssize_t r = read(s, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        write_all(p.out_fd, buf, static_cast<size_t>(r));
    }
    _exit(0);
}

// clone3 with CLONE_INTO_CGROUP: the child never runs outside the cgroup. -1 with errno when refused.
pid_t spawn_into_cgroup(int cgroup_fd) {
    clone_args args{};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
    return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
}

int64_t remaining_ms(std::chrono::steady_clock::time_point deadline) {
    return std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
}

}  // namespace

std::string selfcheck_request() {
    return "GET " + std::string(kSelfCheckTarget) +
           " HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: podid-selfcheck\r\n"
           "Connection: close\r\n\r\n";
}

SelfCheckStatus judge_selfcheck_response(std::string_view raw, uint64_t cgroup_id) {
    SelfCheckStatus st;
    if (raw.empty()) {
        st.detail = "no answer (connection closed or timed out)";
        return st;
    }
    if (raw.front() == '!') {
        st.detail = std::string(raw.substr(1)) + " failed";
        return st;
    }
    auto line_end = raw.find("\r\n");
    std::string_view status_line = raw.substr(0, line_end);
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line.substr(8, 4) != " 200") {
        st.detail = "answered \"" + std::string(status_line.substr(0, 80)) + "\" (not redirected to podid?)";
        return st;
    }
    auto header_end = raw.find("\r\n\r\n");
    if (header_end == std::string_view::npos) {
        st.detail = "truncated answer";
        return st;
    }
    std::string_view body = raw.substr(header_end + 4);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' '))
        body.remove_suffix(1);
    if (body.substr(0, kSelfCheckBodyPrefix.size()) != kSelfCheckBodyPrefix) {
        st.detail = "unexpected answer body (an agent without the self-check route?)";
        return st;
    }
    std::string_view got = body.substr(kSelfCheckBodyPrefix.size());
    if (got != std::to_string(cgroup_id)) {
        st.detail =
            "origin recorded as cgroup " + std::string(got.substr(0, 24)) + ", expected " + std::to_string(cgroup_id);
        return st;
    }
    st.passed = true;
    st.detail = "redirected, origin cgroup " + std::to_string(cgroup_id);
    return st;
}

SelfCheck::SelfCheck(SelfCheckOptions options)
    : o_(std::move(options)), cgroup_path_(o_.cgroup_root + "/" + o_.cgroup_name) {}

SelfCheck::~SelfCheck() {
    stop();
    // Best effort: the cgroup is empty once the last child was reaped; a crash leaves it for the next agent.
    if (created_)
        rmdir(cgroup_path_.c_str());
}

std::string SelfCheck::cgroup_path() const {
    std::lock_guard lock(mu_);
    return cgroup_path_;
}

uint64_t SelfCheck::cgroup_id() const {
    std::lock_guard lock(mu_);
    return cgroup_id_;
}

SelfCheckStatus SelfCheck::status() const {
    std::lock_guard lock(mu_);
    return status_;
}

SelfCheckStatus SelfCheck::run_once() {
    std::lock_guard run(run_mu_);
    SelfCheckStatus st = check();
    st.finished_ms = steady_now_ms();
    {
        std::lock_guard lock(mu_);
        status_ = st;
    }
    if (o_.on_result)
        o_.on_result(st);
    return st;
}

SelfCheckStatus SelfCheck::check() {
    bool refused = false;
    SelfCheckStatus st = check_in(cgroup_path_, refused);
    if (!refused || moved_ || !o_.own_cgroup)
        return st;
    const std::string own = o_.own_cgroup();
    if (own.empty()) {
        st.detail += " (the agent's own cgroup is not below the cgroup root, so the check cannot run there instead)";
        return st;
    }
    // Once, for good: the kernel will refuse the same move next time too.
    const std::string moved_to = own + "/" + o_.fallback_name;
    log_info("the self-check runs below the agent's own cgroup",
             kv("refused", cgroup_path_) + kv("reason", st.detail) + kv("cgroup", moved_to) +
                 kv("usual_cause",
                    "cgroup2 nsdelegate: the kernel moves processes only inside the agent's cgroup namespace"));
    if (created_)
        rmdir(cgroup_path_.c_str());
    created_ = false;
    moved_ = true;
    {
        std::lock_guard lock(mu_);
        cgroup_path_ = moved_to;
        cgroup_id_ = 0;
    }
    return check_in(moved_to, refused);
}

SelfCheckStatus SelfCheck::check_in(const std::string& path, bool& refused) {
    SelfCheckStatus st;
    auto fail = [&](std::string what, int err) {
        st.detail = std::move(what) + (err ? std::string(": ") + std::strerror(err) : "");
        return st;
    };
    // The directory may exist from an agent that died before cleaning up; reusing it is fine.
    if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
        return fail("cannot create " + path, errno);
    created_ = true;
    struct stat sb {};
    if (stat(path.c_str(), &sb) != 0)
        return fail("cannot stat " + path, errno);
    {
        std::lock_guard lock(mu_);
        cgroup_id_ = sb.st_ino;  // a cgroup2 directory's inode number is its cgroup id
    }

    ChildPlan plan;
    plan.addr.sin_family = AF_INET;
    plan.addr.sin_port = htons(o_.target_port);
    if (inet_pton(AF_INET, o_.target_ip.c_str(), &plan.addr.sin_addr) != 1)
        return fail("bad self-check target " + o_.target_ip, 0);
    const std::string request = selfcheck_request();
    plan.request = request.data();
    plan.request_len = request.size();
    plan.timeout_s = static_cast<unsigned>(std::max<int64_t>(1, (o_.timeout.count() + 999) / 1000));

    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return fail("pipe", errno);
    Fd read_end(pipe_fds[0]);
    Fd write_end(pipe_fds[1]);
    plan.out_fd = write_end.get();

    pid_t pid = -1;
    Fd cgroup_fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (o_.use_clone3 && cgroup_fd.valid()) {
        pid = spawn_into_cgroup(cgroup_fd.get());
        if (pid == 0)
            child_main(plan);
        // ENOSYS: no clone3 (< 5.3); E2BIG/EINVAL: no CLONE_INTO_CGROUP (< 5.7); EPERM: seccomp. Fall back.
        // Anything else is the kernel refusing the cgroup (ENOENT: outside the cgroup namespace, with nsdelegate).
        if (pid < 0 && errno != ENOSYS && errno != E2BIG && errno != EINVAL && errno != EPERM) {
            refused = true;
            return fail("clone3 into " + path, errno);
        }
    }
    Fd procs_fd;
    if (pid < 0) {
        procs_fd = Fd(open((path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
        if (!procs_fd.valid()) {
            refused = true;
            return fail("cannot open " + path + "/cgroup.procs", errno);
        }
        plan.procs_fd = procs_fd.get();
        pid = fork();
        if (pid == 0)
            child_main(plan);
        if (pid < 0)
            return fail("fork", errno);
    }
    write_end = Fd();  // the child holds the only write end now: EOF when it exits

    std::string raw;
    auto deadline = std::chrono::steady_clock::now() + o_.timeout + std::chrono::milliseconds(500);
    char buf[2048];
    for (;;) {
        pollfd p{read_end.get(), POLLIN, 0};
        int n = poll(&p, 1, static_cast<int>(remaining_ms(deadline)));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        ssize_t r = read(read_end.get(), buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (raw.size() < 64 * 1024)
            raw.append(buf, static_cast<size_t>(r));
    }
    kill(pid, SIGKILL);  // harmless when it already exited: it stays a zombie until reaped below
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    st = judge_selfcheck_response(raw, sb.st_ino);
    if (!st.passed && !raw.empty() && raw.front() == '!' && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0 &&
        WEXITSTATUS(wstatus) != 255)
        st.detail += std::string(": ") + std::strerror(WEXITSTATUS(wstatus));
    if (raw.rfind(kJoinFailed, 0) == 0)
        refused = true;  // the child could not write itself into cgroup.procs
    return st;
}

void SelfCheck::start() {
    if (thread_.joinable())
        return;
    {
        std::lock_guard lock(mu_);
        stopping_ = false;
    }
    thread_ = std::thread([this] {
        for (;;) {
            run_once();
            std::unique_lock lock(mu_);
            if (cv_.wait_for(lock, o_.interval, [this] { return stopping_; }))
                return;
        }
    });
}

void SelfCheck::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

}  // namespace podid
