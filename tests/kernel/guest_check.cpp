// See guest_check.h. Everything here uses plain syscalls and the `ip` command, because the guest has nothing but
// busybox, this program, podid-probe and their shared libraries.
#include "kernel/guest_check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "caller/cgroup_paths.h"
#include "datapath/datapath.h"
#include "datapath/guard.h"
#include "datapath/probe.h"
#include "kernel/agent_check.h"
#include "kernel/guest_support.h"

namespace podid::kernel_check {
namespace {

Fd listen_tcp(const char* ip, uint16_t port) {
    Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd.get(), 64) != 0)
        return Fd();
    return fd;
}

Fd accept_within(int listen_fd, int ms) {
    pollfd p{listen_fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return Fd();
    return Fd(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
}

uint64_t counter(const Datapath& dp, uint64_t cgroup_id, int slot) {
    auto c = dp.counters_of(cgroup_id);
    return c ? (*c)[slot] : 0;
}

// One connection from the pod to 169.254.169.254:80: the app must see the metadata address as its peer and the
// agent must find the record naming the pod's cgroup.
void check_redirect(Reporter& rep, const Datapath& dp, const GuestCheckOptions& o, const PodNetns& pod,
                    const std::string& pod_cgroup, uint64_t pod_id, int agent_fd, int imds_fd, bool v6mapped) {
    const std::string tag = v6mapped ? "connect6-v4mapped" : "connect4";
    std::vector<std::string> argv = {o.probe_bin, "tcp", kMetadataIp, "80"};
    if (v6mapped)
        argv.push_back("--v6mapped");
    const auto r = run(argv, pod.fd(), pod_cgroup);
    rep.check(tag + "-client", r.exit_code == 0, r.out);
    const std::string want_peer = v6mapped ? "peer=[::ffff:169.254.169.254]:80" : "peer=169.254.169.254:80";
    rep.check(tag + "-getpeername", contains(r.out, want_peer), "want " + want_peer + ", got: " + r.out);

    Fd first = accept_within(agent_fd, 2000);
    if (!rep.check(tag + "-redirect", first.valid(), first.valid() ? "agent accepted" : "nothing reached the agent"))
        return;
    first.reset();
    // The origin is looked up while the client still waits for an answer, as the agent does (a closed
    // connection has no peer address to look up by).
    argv = {o.probe_bin, "http", kMetadataIp, "80", "/metadata/identity/oauth2/token"};
    if (v6mapped)
        argv.push_back("--v6mapped");
    Spawned client = spawn(argv, pod.fd(), pod_cgroup);
    Fd conn = accept_within(agent_fd, 5000);
    std::optional<Origin> origin;
    if (conn.valid()) {
        origin = dp.origin_of(conn.get());
        char buf[2048];
        timeval tv{2, 0};
        setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)!recv(conn.get(), buf, sizeof(buf), 0);
        const char res[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nagent";
        (void)!send(conn.get(), res, sizeof(res) - 1, MSG_NOSIGNAL);
        conn.reset();
    }
    auto http = finish(client);
    rep.check(tag + "-http", http.exit_code == 0 && contains(http.out, "status=200 body=agent"), http.out);
    if (!origin) {
        rep.check(tag + "-origin", false, "no origin record for the accepted connection");
    } else {
        bool ok = origin->cgroup_id == pod_id && origin->redirected && origin->orig_dst == "169.254.169.254:80" &&
                  origin->comm == "podid-probe";
        rep.check(tag + "-origin", ok,
                  "cgroup_id=" + std::to_string(origin->cgroup_id) + " (pod cgroup inode " + std::to_string(pod_id) +
                      ") comm=" + origin->comm + " orig_dst=" + origin->orig_dst +
                      " redirected=" + (origin->redirected ? "1" : "0"));
    }
    Fd leaked = accept_within(imds_fd, 0);
    rep.check(tag + "-imds-untouched", !leaked.valid(),
              leaked.valid() ? "a pod connection reached 169.254.169.254" : "nothing reached 169.254.169.254");
    int slot = v6mapped ? PODID_CTR_REDIRECT6 : PODID_CTR_REDIRECT4;
    uint64_t n = counter(dp, pod_id, slot);
    rep.check(tag + "-counter", n == 2, std::string(counter_name(slot)) + "=" + std::to_string(n));
}

// A packet that bypasses the connect hooks must be dropped by the egress filter and counted.
void check_blocked(Reporter& rep, const Datapath& dp, const GuestCheckOptions& o, const PodNetns& pod,
                   const std::string& pod_cgroup, uint64_t pod_id, const std::string& name,
                   const std::vector<std::string>& probe_args, int slot) {
    std::vector<std::string> argv = {o.probe_bin};
    argv.insert(argv.end(), probe_args.begin(), probe_args.end());
    auto r = run(argv, pod.fd(), pod_cgroup);
    uint64_t n = counter(dp, pod_id, slot);
    rep.check(name, r.exit_code != 0 && n == 1,
              "client exit=" + std::to_string(r.exit_code) + " (" + r.out + ") " + counter_name(slot) + "=" +
                  std::to_string(n));
}

bool setup_network(Reporter& rep, const GuestCheckOptions& o, const PodNetns& pod) {
    const std::string& ip = o.ip_bin;
    // Without a name for the peer both iproute2 and busybox call it veth0 (busybox ignores "peer name").
    const std::vector<std::vector<std::string>> node_cmds = {
        {ip, "link", "set", "lo", "up"},
        {ip, "addr", "add", std::string(kMetadataIp) + "/32", "dev", "lo"},
        {ip, "link", "add", "kcnode", "type", "veth"},
        {ip, "link", "set", "dev", "veth0", "netns", std::to_string(pod.pid())},
        {ip, "addr", "add", std::string(kNodeIp) + "/24", "dev", "kcnode"},
        {ip, "link", "set", "kcnode", "up"},
    };
    const std::vector<std::vector<std::string>> pod_cmds = {
        {ip, "link", "set", "lo", "up"},
        {ip, "addr", "add", std::string(kPodIp) + "/24", "dev", "veth0"},
        {ip, "link", "set", "veth0", "up"},
        {ip, "route", "add", "default", "via", kNodeIp},
    };
    for (const auto& cmd : node_cmds) {
        auto r = run(cmd);
        if (r.exit_code != 0)
            return rep.check("network", false, "`" + cmd[1] + " " + cmd[2] + " " + cmd[3] + "...` failed: " + r.out);
    }
    for (const auto& cmd : pod_cmds) {
        auto r = run(cmd, pod.fd());
        if (r.exit_code != 0)
            return rep.check("network", false, "in the pod, `" + cmd[1] + " " + cmd[2] + "...` failed: " + r.out);
    }
    return rep.check("network", true, std::string("pod ") + kPodIp + " -> node " + kNodeIp + " over a veth");
}

// Private bpffs in a private mount namespace: the pins vanish with it even if this process is killed.
std::optional<std::string> private_bpffs(Reporter& rep) {
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        rep.check("bpffs", false, "cannot make / private: " + errno_text());
        return std::nullopt;
    }
    char dir[] = "/tmp/podid-kc-XXXXXX";
    if (!mkdtemp(dir)) {
        rep.check("bpffs", false, std::string("mkdtemp: ") + errno_text());
        return std::nullopt;
    }
    if (mount("bpf", dir, "bpf", 0, nullptr) != 0) {
        rep.check("bpffs", false, std::string("mount -t bpf: ") + errno_text());
        rmdir(dir);
        return std::nullopt;
    }
    rep.check("bpffs", true, dir);
    return std::string(dir);
}

// The interface guard (tc ingress, clsact + cls_bpf) on the node end of the pod's veth: an AF_PACKET frame
// the pod writes to 169.254.169.254 is dropped and counted; uninstall removes the filter.
void check_guard(Reporter& rep, const GuestCheckOptions& o, const PodNetns& pod, const std::string& pin_dir) {
    auto selector = parse_guard_selector("kcnode");
    auto guard = InterfaceGuard::load(pin_dir, *selector);
    if (!rep.check("guard-load", guard.ok(), guard.ok() ? "tc program loaded" : guard.error().message))
        return;
    auto attached = (*guard)->attach_existing();
    if (!rep.check("guard-attach", attached.ok() && *attached == 1,
                   attached.ok() ? std::to_string(*attached) + " interface(s)" : attached.error().message))
        return;
    auto r = run({o.probe_bin, "packet-syn", kMetadataIp, "80", "veth0"}, pod.fd());
    auto dropped = (*guard)->counters()[PODID_GUARD_DROP_V4];
    rep.check("guard-af-packet", r.exit_code == 0 && dropped == 1,
              "frame sent: " + r.out + "dropped=" + std::to_string(dropped));
    auto removed = InterfaceGuard::uninstall(pin_dir);
    rep.check("guard-uninstall", removed.ok() && *removed == 1,
              removed.ok() ? std::to_string(*removed) + " filter(s) removed" : removed.error().message);
}

// The datapath alone (Datapath::install, as the agent does it) at a cgroup of the check's own, on the pod `pod`.
void check_datapath(Reporter& rep, const GuestCheckOptions& o, const std::string& mount, const std::string& bpffs,
                    const PodNetns& pod) {
    Cgroups cgroups;
    const std::string root = mount + "/podid-kc-" + std::to_string(getpid());
    const std::string pod_cgroup = root + "/pod";
    const bool made = cgroups.make(root) && cgroups.make(pod_cgroup);
    if (!rep.check("cgroups", made, made ? pod_cgroup : root + ": " + errno_text()))
        return;
    struct stat st {};
    stat(pod_cgroup.c_str(), &st);
    const uint64_t pod_id = st.st_ino;

    Fd agent = listen_tcp(kNodeIp, kAgentPort);
    Fd imds = listen_tcp(kMetadataIp, 80);
    const bool listening = agent.valid() && imds.valid();
    if (!rep.check("listeners", listening, listening ? "agent and 169.254.169.254:80" : errno_text()))
        return;

    DatapathConfig config;
    config.cgroup_root = root;
    config.pin_dir = bpffs + "/podid";
    config.agent_ip4 = *parse_ip4(kNodeIp);
    config.agent_port = kAgentPort;
    auto start = std::chrono::steady_clock::now();
    auto dp = Datapath::install(config);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (!rep.check("install", dp.ok(),
                   dp.ok() ? "loaded and attached in " + std::to_string(ms.count()) + " ms" : dp.error().message))
        return;
    for (const auto& a : dp->report())
        rep.check("attach:" + a.program, true, a.how);
    // Which way origins are recorded follows from the probe alone (docs/kernels.md lists what each kernel picks).
    const OriginRecording expected =
        sockops_reads_current_task() ? OriginRecording::task : OriginRecording::socket_storage;
    rep.check("origin-recording", dp->origin_recording() == expected,
              std::string(origin_recording_name(dp->origin_recording())) + " (probe says " +
                  origin_recording_name(expected) + ")");

    check_redirect(rep, *dp, o, pod, pod_cgroup, pod_id, agent.get(), imds.get(), false);
    check_redirect(rep, *dp, o, pod, pod_cgroup, pod_id, agent.get(), imds.get(), true);
    check_blocked(rep, *dp, o, pod, pod_cgroup, pod_id, "raw-syn-blocked", {"raw-syn", kMetadataIp, "80"},
                  PODID_CTR_DROP_TCP);
    check_blocked(rep, *dp, o, pod, pod_cgroup, pod_id, "udp-blocked", {"udp", kMetadataIp, "53"}, PODID_CTR_DROP_UDP);
    check_blocked(rep, *dp, o, pod, pod_cgroup, pod_id, "other-port-refused", {"tcp", kMetadataIp, "443"},
                  PODID_CTR_DENY_PORT);

    check_guard(rep, o, pod, config.pin_dir);

    auto u = Datapath::uninstall(config.pin_dir);
    rep.check("uninstall", u.ok(), u.ok() ? "pins removed" : u.error().message);
}

// The node: the cgroup2 mount and a pod network namespace, on which the datapath phase and then the agent phase
// (agent_check.h) run, one after the other.
void check_node(Reporter& rep, const GuestCheckOptions& o, const std::string& bpffs) {
    auto mount = find_cgroup2_mount();
    if (!rep.check("cgroup2", mount.ok(), mount.ok() ? *mount : mount.error().message))
        return;
    PodNetns pod;
    if (!rep.check("pod-netns", pod.valid(), pod.valid() ? "ok" : "unshare(CLONE_NEWNET) failed"))
        return;
    if (!setup_network(rep, o, pod))
        return;
    check_datapath(rep, o, *mount, bpffs, pod);
    AgentCheckEnv env{*mount, bpffs, pod.fd()};
    check_agent(rep, o, env);
}

}  // namespace

int run_guest_check(const GuestCheckOptions& options) {
    Reporter rep;
    struct utsname_holder {
        char release[256] = {};
    } uts;
    if (FILE* f = std::fopen("/proc/sys/kernel/osrelease", "r")) {
        if (!std::fgets(uts.release, sizeof(uts.release), f))
            uts.release[0] = 0;
        std::fclose(f);
        uts.release[strcspn(uts.release, "\n")] = 0;
    }
    rep.check("kernel", true, uts.release);

    for (const auto& r : probe_kernel_features_report())
        rep.check("probe:" + one_token(r.requirement->what), r.ok, r.detail);

    // A node network namespace and a mount namespace of our own; unshare needs a single-threaded process,
    // which this still is.
    const bool unshared = unshare(CLONE_NEWNET | CLONE_NEWNS) == 0;
    if (!rep.check("namespaces", unshared, unshared ? "own netns and mount ns" : "unshare: " + errno_text()))
        return rep.done();
    auto bpffs = private_bpffs(rep);
    if (bpffs) {
        check_node(rep, options, *bpffs);
        umount2(bpffs->c_str(), MNT_DETACH);
        rmdir(bpffs->c_str());
    }
    return rep.done();
}

}  // namespace podid::kernel_check
