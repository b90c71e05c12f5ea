// See agent_check.h. Plain syscalls, as in guest_check.cpp: the guest has busybox and the binaries under test only.
#include "kernel/agent_check.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "datapath/datapath.h"
#include "datapath/guard.h"

namespace podid::kernel_check {
namespace {

// An identity the emulator knows, bound to the pod cgroup in the agent's bindings file.
constexpr const char* kPodClientId = "6f0e2a51-3b7c-4d8e-9f10-a2b3c4d5e6f7";
constexpr uint16_t kMetricsPort = 9090;
constexpr const char* kTokenPath =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/";
// TCG emulates every instruction: the agent's probes and program loads take seconds there (docs/kernels.md).
constexpr auto kStartLimit = std::chrono::seconds(90);

using Clock = std::chrono::steady_clock;

std::string seconds_text(Clock::duration d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(d).count());
    return buf;
}

std::string read_text(const std::string& path) {
    std::string out;
    Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid())
        return out;
    char buf[8192];
    ssize_t n;
    while ((n = read(fd.get(), buf, sizeof buf)) > 0)
        out.append(buf, static_cast<size_t>(n));
    return out;
}

// 0, or the errno of the open or the write.
int write_text(const std::string& path, const std::string& text) {
    Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid())
        return errno;
    if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return errno;
    return 0;
}

std::string errno_name(int err) {
    if (err == 0)
        return "ok";
    return std::string(err == ENOENT ? "ENOENT" : "errno " + std::to_string(err)) + " (" + std::strerror(err) + ")";
}

// The first log line holding `part`, without its newline; "" when none does.
std::string line_with(const std::string& log, const std::string& part) {
    auto at = log.find(part);
    if (at == std::string::npos)
        return "";
    auto begin = log.rfind('\n', at);
    begin = begin == std::string::npos ? 0 : begin + 1;
    auto end = log.find('\n', at);
    return log.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

uint64_t inode_of(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// The super options of the cgroup2 mount at `mount` in /proc/self/mountinfo ("rw,nsdelegate,..."), where the kernel
// shows nsdelegate; "" when no such mount.
std::string cgroup2_super_options(const std::string& mount) {
    std::istringstream in(read_text("/proc/self/mountinfo"));
    for (std::string line; std::getline(in, line);) {
        auto dash = line.find(" - ");
        if (dash == std::string::npos)
            continue;
        std::istringstream left(line.substr(0, dash)), right(line.substr(dash + 3));
        std::string id, parent, dev, root, mount_point, fstype, source, options;
        left >> id >> parent >> dev >> root >> mount_point;
        right >> fstype >> source >> options;
        if (fstype == "cgroup2" && mount_point == mount)
            return options;
    }
    return "";
}

bool has_option(const std::string& options, const std::string& option) {
    std::istringstream in(options);
    for (std::string o; std::getline(in, o, ',');)
        if (o == option)
            return true;
    return false;
}

// Removes a cgroup and every cgroup below it, children first (the agent makes its own: probe and self-check
// cgroups, which it removes itself unless it was killed).
void remove_cgroup_tree(const std::string& path) {
    if (DIR* d = opendir(path.c_str())) {
        while (dirent* e = readdir(d))
            if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
                remove_cgroup_tree(path + "/" + e->d_name);
        closedir(d);
    }
    rmdir(path.c_str());
}

class CgroupTree {
public:
    explicit CgroupTree(std::string root) : root_(std::move(root)) {}
    ~CgroupTree() { remove(); }
    CgroupTree(const CgroupTree&) = delete;
    CgroupTree& operator=(const CgroupTree&) = delete;
    // True when nothing is left.
    bool remove() {
        remove_cgroup_tree(root_);
        return access(root_.c_str(), F_OK) != 0;
    }

private:
    std::string root_;
};

// A directory for the agent's files (log, bindings, sockets, token cache), removed with what it holds.
class TempDir {
public:
    TempDir() {
        char dir[] = "/tmp/podid-kc-agent-XXXXXX";
        if (mkdtemp(dir))
            path_ = dir;
    }
    ~TempDir() {
        if (path_.empty())
            return;
        if (DIR* d = opendir(path_.c_str())) {
            while (dirent* e = readdir(d))
                if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
                    unlink((path_ + "/" + e->d_name).c_str());
            closedir(d);
        }
        rmdir(path_.c_str());
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// A daemon of the phase (the emulator, the agent) with its output in a file; killed and reaped at the end whatever
// happened.
class Daemon {
public:
    struct Where {
        std::string join_cgroup;            // "" stays in this process's cgroup
        bool new_cgroup_namespace = false;  // after joining: its namespace root is then that cgroup
    };
    Daemon(const std::vector<std::string>& argv, const std::string& log, const Where& where) {
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        // A clean environment: no $KUBERNETES_SERVICE_HOST (Kubernetes mode) or $NODE_IP from the caller's.
        char path_env[] = "PATH=/bin:/sbin:/usr/bin:/usr/sbin";
        char* env[] = {path_env, nullptr};
        const std::string procs = where.join_cgroup + "/cgroup.procs";
        pid_ = fork();
        if (pid_ != 0)
            return;
        int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (out < 0 || null < 0)
            _exit(126);
        dup2(null, 0);
        dup2(out, 1);
        dup2(out, 2);
        if (!where.join_cgroup.empty()) {
            if (int err = write_text(procs, "0"); err != 0) {
                std::fprintf(stderr, "check: cannot join %s: %s\n", where.join_cgroup.c_str(), std::strerror(err));
                _exit(126);
            }
        }
        if (where.new_cgroup_namespace && unshare(CLONE_NEWCGROUP) != 0) {
            std::fprintf(stderr, "check: unshare(CLONE_NEWCGROUP): %s\n", std::strerror(errno));
            _exit(126);
        }
        execve(args[0], args.data(), env);
        std::fprintf(stderr, "check: exec %s: %s\n", args[0], std::strerror(errno));
        _exit(127);
    }
    ~Daemon() {
        if (running()) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    bool started() const { return pid_ > 0; }
    bool running() {
        if (pid_ <= 0 || exited_)
            return false;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            exited_ = true;
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        return !exited_;
    }
    // Sends `signo` and waits up to `limit` (then SIGKILL); the exit code, 128+signal when killed.
    int stop(int signo, std::chrono::milliseconds limit) {
        if (!running())
            return exit_code_;
        kill(pid_, signo);
        const auto deadline = Clock::now() + limit;
        while (running() && Clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (running()) {
            kill(pid_, SIGKILL);
            int status = 0;
            waitpid(pid_, &status, 0);
            exited_ = true;
            exit_code_ = 128 + SIGKILL;
        }
        return exit_code_;
    }
    int exit_code() const { return exit_code_; }

private:
    pid_t pid_ = -1;
    bool exited_ = false;
    int exit_code_ = -1;
};

// The agent's pins (links, maps, the guard's counters) and tc filters, which stay after it stops by design.
class AgentPins {
public:
    explicit AgentPins(std::string dir) : dir_(std::move(dir)) {}
    ~AgentPins() {
        if (!removed_)
            (void)remove();
    }
    AgentPins(const AgentPins&) = delete;
    AgentPins& operator=(const AgentPins&) = delete;
    const std::string& dir() const { return dir_; }
    // "" on success, else what failed.
    std::string remove() {
        removed_ = true;
        std::string failed;
        if (auto g = InterfaceGuard::uninstall(dir_); !g.ok())
            failed += "guard: " + g.error().message + "; ";
        if (auto d = Datapath::uninstall(dir_); !d.ok())
            failed += "datapath: " + d.error().message;
        rmdir(dir_.c_str());
        return failed;
    }

private:
    std::string dir_;
    bool removed_ = false;
};

struct HttpAnswer {
    int status = 0;  // 0: no answer (error says why)
    std::string body;
    std::string error;
};

// One GET on a fresh connection from this process: the node network namespace, outside the cgroup root, so never
// redirected.
HttpAnswer http_get(const char* ip, uint16_t port, const std::string& path) {
    HttpAnswer a;
    Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    timeval tv{5, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, ip, &to.sin_addr);
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        a.error = std::string("connect: ") + errno_text();
        return a;
    }
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + ip + "\r\nConnection: close\r\n\r\n";
    if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        a.error = std::string("send: ") + errno_text();
        return a;
    }
    std::string raw;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd.get(), buf, sizeof buf, 0)) > 0)
        raw.append(buf, static_cast<size_t>(n));
    if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) {
        a.error = "no HTTP answer (" + std::to_string(raw.size()) + " bytes)";
        return a;
    }
    a.status = std::atoi(raw.c_str() + 9);
    if (auto body = raw.find("\r\n\r\n"); body != std::string::npos)
        a.body = raw.substr(body + 4);
    return a;
}

// What a process inside the agent's kind of cgroup namespace meets when it tries to place a process in another
// cgroup: from a child that joined `agent_cgroup` and unshared its cgroup namespace there, a cgroup.procs write and a
// clone3(CLONE_INTO_CGROUP) into `outside` (below the cgroup root, outside the namespace), then a cgroup.procs write
// into `inside` (below the namespace root). The three errnos (0: allowed) and /proc/self/cgroup at the end.
struct Moves {
    int procs = -1;
    int clone3 = -1;
    int inside = -1;
    std::string own_cgroup;
    std::string setup_error;
};

Moves try_moves(const std::string& agent_cgroup, const std::string& outside, const std::string& inside) {
    Moves m;
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        m.setup_error = "pipe: " + errno_text();
        return m;
    }
    const pid_t pid = fork();
    if (pid == 0) {
        std::string report;
        if (int err = write_text(agent_cgroup + "/cgroup.procs", "0"); err != 0) {
            report = "setup cannot join the agent cgroup: " + std::string(std::strerror(err));
        } else if (unshare(CLONE_NEWCGROUP) != 0) {
            report = "setup unshare(CLONE_NEWCGROUP): " + errno_text();
        } else {
            const int procs = write_text(outside + "/cgroup.procs", "0");
            int clone3_err = 0;
            Fd dir(open(outside.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            clone_args args{};
            args.flags = CLONE_INTO_CGROUP;
            args.exit_signal = SIGCHLD;
            args.cgroup = static_cast<uint64_t>(dir.get());
            const long child = syscall(SYS_clone3, &args, sizeof args);
            if (child == 0)
                _exit(0);
            if (child < 0)
                clone3_err = errno;
            else
                waitpid(static_cast<pid_t>(child), nullptr, 0);
            const int in = write_text(inside + "/cgroup.procs", "0");
            std::string own = read_text("/proc/self/cgroup");
            while (!own.empty() && own.back() == '\n')
                own.pop_back();
            report = std::to_string(procs) + " " + std::to_string(clone3_err) + " " + std::to_string(in) + " " + own;
        }
        (void)!write(pipe_fds[1], report.data(), report.size());
        _exit(0);
    }
    close(pipe_fds[1]);
    std::string report;
    char buf[512];
    ssize_t n;
    while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0)
        report.append(buf, static_cast<size_t>(n));
    close(pipe_fds[0]);
    waitpid(pid, nullptr, 0);
    if (report.rfind("setup ", 0) == 0 || report.empty()) {
        m.setup_error = report.empty() ? "the child reported nothing" : report.substr(6);
        return m;
    }
    std::istringstream in(report);
    in >> m.procs >> m.clone3 >> m.inside >> m.own_cgroup;
    return m;
}

void check_refused_moves(Reporter& rep, const std::string& kubepods, const std::string& agent_cgroup) {
    Cgroups cgroups;
    const std::string outside = kubepods + "/nsdelegate-target";
    const std::string inside = agent_cgroup + "/nsdelegate-inside";
    if (!cgroups.make(outside) || !cgroups.make(inside)) {
        rep.check("nsdelegate-move-refused", false, "cannot make the target cgroups: " + errno_text());
        return;
    }
    const Moves m = try_moves(agent_cgroup, outside, inside);
    if (!m.setup_error.empty()) {
        rep.check("nsdelegate-move-refused", false, m.setup_error);
        return;
    }
    rep.check("nsdelegate-move-refused", m.procs == ENOENT && m.clone3 == ENOENT && m.inside == 0,
              "in a cgroup namespace rooted at kubepods/podid-agent: cgroup.procs write into kubepods/" +
                  outside.substr(kubepods.size() + 1) + ": " + errno_name(m.procs) + "; clone3(CLONE_INTO_CGROUP) " +
                  "there: " + errno_name(m.clone3) + "; a move below the namespace root: " + errno_name(m.inside) +
                  " (/proc/self/cgroup then " + m.own_cgroup + ")");
}

void dump_log(const std::string& name, const std::string& text) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        std::printf("%s| %s\n", name.c_str(), line.c_str());
    std::fflush(stdout);
}

}  // namespace

void check_agent(Reporter& rep, const GuestCheckOptions& o, const AgentCheckEnv& env) {
    const auto t0 = Clock::now();
    const int failures_before = rep.failures();
    if (o.agent_bin.empty() || o.emulator_bin.empty()) {
        rep.check("agent-cgroups", false, "no --agent-bin or --emulator-bin given: the agent phase cannot run");
        return;
    }
    if (o.expect_nsdelegate) {
        // Without it the phase would pass vacuously: nothing would refuse the self-check's first cgroup.
        const std::string options = cgroup2_super_options(env.cgroup2);
        rep.check("nsdelegate-mount", has_option(options, "nsdelegate"),
                  "cgroup2 at " + env.cgroup2 + " super options: " + (options.empty() ? "(mount not found)" : options));
    }

    // The node's kubepods cgroup: exactly <cgroup2>/kubepods in the guest (a VM of ours); on the build machine one
    // of the check's own, since the machine may run a kubelet.
    const std::string kubepods = o.expect_nsdelegate
                                     ? env.cgroup2 + "/kubepods"
                                     : env.cgroup2 + "/podid-kc-" + std::to_string(getpid()) + "-kubepods";
    const std::string agent_cgroup = kubepods + "/podid-agent";
    const std::string pod_cgroup = kubepods + "/pod-a";
    if (mkdir(kubepods.c_str(), 0755) != 0) {
        rep.check("agent-cgroups", false, kubepods + ": " + errno_text());
        return;
    }
    CgroupTree tree(kubepods);
    const bool made = mkdir(agent_cgroup.c_str(), 0755) == 0 && mkdir(pod_cgroup.c_str(), 0755) == 0;
    if (!rep.check("agent-cgroups", made, made ? agent_cgroup + ", " + pod_cgroup : errno_text()))
        return;
    if (o.expect_nsdelegate)
        check_refused_moves(rep, kubepods, agent_cgroup);

    TempDir tmp;
    if (tmp.path().empty()) {
        rep.check("agent-emulator", false, "mkdtemp: " + errno_text());
        return;
    }
    // The node's IMDS: the emulator on 169.254.169.254:80 in this (node) network namespace, outside the cgroup root.
    std::vector<std::string> emulator_argv = {o.emulator_bin, "--listen", std::string(kMetadataIp) + ":80"};
    emulator_argv.insert(emulator_argv.end(), {"--identity", kPodClientId, "--ready-file", tmp / "emulator.ready"});
    if (!o.emulator_key.empty())
        emulator_argv.insert(emulator_argv.end(), {"--key-file", o.emulator_key});
    Daemon emulator(emulator_argv, tmp / "emulator.log", {});
    while (emulator.running() && access((tmp / "emulator.ready").c_str(), F_OK) != 0 &&
           Clock::now() - t0 < std::chrono::seconds(30))
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto t_emulator = Clock::now();
    const bool emulator_up = access((tmp / "emulator.ready").c_str(), F_OK) == 0;
    std::string listening = read_text(tmp / "emulator.ready");
    while (!listening.empty() && listening.back() == '\n')
        listening.pop_back();
    if (!rep.check("agent-emulator", emulator_up,
                   emulator_up ? "listening on " + listening + " after " + seconds_text(t_emulator - t0)
                               : "did not start: " + read_text(tmp / "emulator.log"))) {
        return;
    }

    // The pod cgroup, as the agent's resolver names it: its path below the cgroup2 mount.
    const std::string bindings = R"({"bindings": [{"cgroup": ")" + pod_cgroup.substr(env.cgroup2.size()) +
                                 R"(", "identities": [{"client_id": ")" + kPodClientId + R"("}]}]})";
    if (int err = write_text(tmp / "bindings.json", bindings); err != 0) {
        rep.check("agent-probes", false, "cannot write the bindings file: " + std::string(std::strerror(err)));
        return;
    }

    // The DaemonSet's agent, standalone: its production flags but for paths that would be the node's.
    AgentPins pins(env.bpffs + "/agent");
    const std::string metrics = std::string(kNodeIp) + ":" + std::to_string(kMetricsPort);
    const std::string log_path = tmp / "agent.log";
    const auto t_start = Clock::now();
    Daemon agent({o.agent_bin, "--node-ip", kNodeIp, "--cgroup-root", kubepods, "--bpffs", pins.dir(), "--bindings",
                  tmp / "bindings.json", "--metrics-addr", metrics, "--admin-socket", tmp / "admin.sock",
                  "--handover-socket", tmp / "handover.sock", "--token-cache-file", tmp / "token-cache.json"},
                 log_path, {agent_cgroup, true});
    // Until the first self-check result (logged on every change, so the first one always), or the agent's end.
    std::string log;
    Clock::time_point t_ready{}, t_selfcheck{};
    while (Clock::now() - t_start < kStartLimit) {
        const bool alive = agent.running();
        log = read_text(log_path);
        if (t_ready == Clock::time_point{} && contains(log, "podid-agent ready"))
            t_ready = Clock::now();
        if (contains(log, "self-check passed") || contains(log, "self-check failed")) {
            t_selfcheck = Clock::now();
            break;
        }
        if (!alive)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const std::string state =
        agent.running() ? "" : " (the agent exited with " + std::to_string(agent.exit_code()) + ")";

    // It refuses to start unless every probe passed, and says which failed; attaching comes after the probes.
    const std::string refused = line_with(log, "this kernel cannot run podid") + line_with(log, "lacks a privilege");
    const std::string probed = line_with(log, "kernel features probed: all present");
    const bool attached = contains(log, "program attached");
    rep.check("agent-probes", refused.empty() && !probed.empty() && attached,
              !refused.empty() ? refused
              : probed.empty() ? "no \"kernel features probed\" line" + state
              : attached       ? probed + "; programs attached at " + kubepods
                               : "the agent never attached its programs" + state);

    const std::string found = line_with(log, "agent cgroup found through the redirect");
    const std::string want_id = "cgroup_id=\"" + std::to_string(inode_of(agent_cgroup)) + "\"";
    rep.check("agent-own-cgroup", contains(found, want_id),
              found.empty() ? "no \"agent cgroup found through the redirect\" line" + state
                            : found + " (kubepods/podid-agent: " + want_id + ")");

    const std::string self_check = line_with(log, "self-check passed") + line_with(log, "self-check failed");
    const std::string moved = line_with(log, "the self-check runs below the agent's own cgroup");
    rep.check(
        "agent-selfcheck", contains(self_check, "self-check passed"),
        (self_check.empty() ? "no self-check result" + (state.empty() ? " in " + seconds_text(kStartLimit) : state)
                            : self_check) +
            (moved.empty() ? "" : " || " + moved));

    // Readiness follows the self-check; a failed self-check is retried only after its interval (30 s), so one
    // answer tells.
    HttpAnswer ready = http_get(kNodeIp, kMetricsPort, "/readyz");
    const auto readyz_deadline = Clock::now() + std::chrono::seconds(10);
    while (ready.status != 200 && contains(self_check, "self-check passed") && Clock::now() < readyz_deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        ready = http_get(kNodeIp, kMetricsPort, "/readyz");
    }
    while (!ready.body.empty() && (ready.body.back() == '\n' || ready.body.back() == '\r'))
        ready.body.pop_back();
    rep.check("agent-readyz", ready.status == 200,
              "GET http://" + metrics + "/readyz: " +
                  (ready.status ? std::to_string(ready.status) + " " + ready.body.substr(0, 300) : ready.error));

    // The pod: its own network namespace and cgroup, asking IMDS as any SDK does, naming no identity. Had the request
    // reached the emulator unredirected, it would answer 400 (it has no system-assigned identity): a token for the
    // bound client id came through the agent.
    const auto t_token = Clock::now();
    const RunResult token =
        run({o.probe_bin, "http", kMetadataIp, "80", kTokenPath, "-H", "Metadata: true"}, env.pod_netns, pod_cgroup);
    const std::string want_client = "\"client_id\":\"" + std::string(kPodClientId) + "\"";
    const bool got = token.exit_code == 0 && contains(token.out, "status=200") && contains(token.out, want_client);
    const auto status_at = token.out.find("status=");
    rep.check("agent-token", got,
              got ? "pod got a token for " + want_client + " in " + seconds_text(Clock::now() - t_token)
                  : "exit " + std::to_string(token.exit_code) + ": " +
                        (status_at == std::string::npos ? token.out : token.out.substr(status_at, 400)));

    const auto t_stop = Clock::now();
    const int code = agent.stop(SIGTERM, std::chrono::seconds(20));
    log = read_text(log_path);
    const std::string stopped = line_with(log, "stopped; BPF programs stay pinned");
    rep.check("agent-sigterm", code == 0 && !stopped.empty(),
              "exit " + std::to_string(code) + " after " + seconds_text(Clock::now() - t_stop) +
                  (stopped.empty() ? ", no \"stopped\" line" : ": " + stopped));
    const auto t_end = Clock::now();

    emulator.stop(SIGTERM, std::chrono::seconds(5));
    const std::string pins_left = pins.remove();
    const bool cgroups_gone = tree.remove();
    rep.check("agent-cleanup", pins_left.empty() && cgroups_gone,
              (pins_left.empty() ? "pins and tc filters removed" : pins_left) +
                  (cgroups_gone ? ", cgroups removed" : ", " + kubepods + " is still there"));

    auto since_start = [&](Clock::time_point t) {
        return t == Clock::time_point{} ? std::string("-") : seconds_text(t - t_start);
    };
    rep.check("agent-timing", true,
              "emulator " + seconds_text(t_emulator - t0) + ", agent ready " + since_start(t_ready) +
                  " and self-check " + since_start(t_selfcheck) + " after its start, token " +
                  seconds_text(t_stop - t_token) + ", stop " + seconds_text(t_end - t_stop) + "; phase " +
                  seconds_text(Clock::now() - t0));
    if (rep.failures() > failures_before) {
        dump_log("podid-agent", log);
        dump_log("podid-imds-emulator", read_text(tmp / "emulator.log"));
    }
}

}  // namespace podid::kernel_check
