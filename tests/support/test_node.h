// The test node: a realistic Kubernetes node built inside this machine, isolated from its network.
//
//   node netns  "podid-t<pid>-node": bridge br0 with the node IP (10.77.0.1/24), 169.254.169.254/32 on lo
//   pod netns   "podid-t<pid>-p<i>": veth eth0 10.77.0.<10+i>/24, default route via the node IP;
//               the peer end sits in the node netns on br0
//   cgroups     <cgroup2 mount>/podid-t<pid>/kubepods.slice/... shaped exactly as kubelet makes them
//               (systemd driver: kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/cri-containerd-<64hex>.scope;
//                cgroupfs driver: kubepods/<qos>/pod<uid>/<64hex>), plus <root>/system.slice for node daemons
//   bpffs       a private bpf filesystem mounted at <workdir>/bpffs
//
// Nothing is created in the root network namespace. Every object carries the "podid-t<pid>" prefix;
// the destructor removes them all (killing processes it spawned first), and create() first sweeps
// objects left by test processes that no longer exist (a killed test run).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace podid::test {

struct PodSpec {
    std::string name;                    // "pod-a": used in the netns name suffix and logs
    std::string qos = "burstable";       // guaranteed | burstable | besteffort
    std::string driver = "systemd";      // systemd | cgroupfs
    std::string runtime = "containerd";  // containerd | crio | docker (systemd scope prefix)
    bool host_network = false;           // true: no netns of its own, processes run in the node netns
};

struct Pod {
    PodSpec spec;
    std::string uid;             // random pod UID (8-4-4-4-12)
    std::string container_id;    // random 64 hex
    std::string netns;           // netns name (node's netns name when host_network)
    std::string ip;              // pod IP (node IP when host_network)
    std::string cgroup_dir;      // absolute path of the container's leaf cgroup
    std::string cgroup_path;     // the same, relative to the cgroup2 mount ("/podid-t123/kubepods.slice/...")
    std::string pod_cgroup_dir;  // absolute path of the pod-level cgroup (parent of the container's)
    uint64_t cgroup_id = 0;      // inode of cgroup_dir
};

struct RunResult {
    int exit_code = -1;  // -1 when killed by a signal or timed out
    bool timed_out = false;
    std::string out;
    std::string err;
};

// A process the node spawned; killed (SIGKILL) and reaped on destruction unless waited for.
class Process {
public:
    Process() = default;
    Process(pid_t pid, int out_fd, int err_fd);
    Process(Process&&) noexcept;
    Process& operator=(Process&&) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process();

    pid_t pid() const { return pid_; }
    bool running();  // not yet exited (reaps if it has)
    void signal(int sig);
    // Wait for exit; returns the collected result. Kills it at the deadline.
    RunResult wait(std::chrono::milliseconds timeout);
    // Output so far (non-blocking read of the pipes); useful for daemons that log readiness.
    std::string read_out();
    std::string read_err();
    // Poll read_err()/read_out() until `needle` appears or timeout; returns whether it did.
    bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout);

private:
    pid_t pid_ = -1;
    int out_fd_ = -1, err_fd_ = -1;
    std::string out_, err_;
    std::optional<int> status_;
    void drain();
};

class TestNode {
public:
    // Throws std::runtime_error with a one-sentence reason (e.g. "not root", "no cgroup2 mount").
    static std::unique_ptr<TestNode> create();
    ~TestNode();
    TestNode(const TestNode&) = delete;
    TestNode& operator=(const TestNode&) = delete;

    Pod& add_pod(const PodSpec& spec);
    void remove_pod(const std::string& name);  // kills its processes, removes its cgroups and netns
    Pod& pod(const std::string& name);

    // A leaf cgroup outside kubepods for node daemons ("<root>/system.slice/<name>.service"), created on demand.
    std::string system_cgroup(const std::string& name);
    // Create an arbitrary cgroup (relative to this node's cgroup root), returns its absolute path.
    std::string make_cgroup(const std::string& relative);

    // Spawn argv with its pid placed into `cgroup_dir` (absolute; empty = stay in the caller's cgroup)
    // and its network namespace set to `netns` (name under /run/netns). The mount namespace is untouched,
    // so cgroupfs and bpffs stay visible. `env` entries are added to the environment.
    Process spawn(const std::vector<std::string>& argv, const std::string& netns, const std::string& cgroup_dir,
                  const std::map<std::string, std::string>& env = {});
    RunResult run(const std::vector<std::string>& argv, const std::string& netns, const std::string& cgroup_dir,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));

    Process spawn_in_pod(const std::string& pod, const std::vector<std::string>& argv);
    RunResult run_in_pod(const std::string& pod, const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // In the node netns; cgroup_dir empty = a fresh system.slice cgroup is NOT used, the caller's cgroup is kept.
    Process spawn_in_node(const std::vector<std::string>& argv, const std::string& cgroup_dir = "",
                          const std::map<std::string, std::string>& env = {});
    RunResult run_in_node(const std::vector<std::string>& argv, const std::string& cgroup_dir = "",
                          std::chrono::milliseconds timeout = std::chrono::seconds(20));

    const std::string& node_netns() const { return node_netns_; }
    const std::string& node_ip() const { return node_ip_; }              // "10.77.0.1"
    const std::string& cgroup2_mount() const { return cgroup2_mount_; }  // from /proc/self/mountinfo
    const std::string& cgroup_root() const { return cgroup_root_; }      // absolute "<mount>/podid-t<pid>"
    std::string kubepods_dir() const;                                    // "<cgroup_root>/kubepods.slice" (systemd)
    std::string kubepods_cgroupfs_dir() const;                           // "<cgroup_root>/kubepods"
    const std::string& bpffs() const { return bpffs_; }                  // private bpffs mount
    const std::string& workdir() const { return workdir_; }              // scratch dir, removed on teardown
    const std::string& prefix() const { return prefix_; }                // "podid-t<pid>"

    // Objects with this node's prefix that still exist (netns, links in the root netns, cgroups, mounts).
    // After destruction this must be empty: static so tests can check it after the node is gone.
    static std::vector<std::string> leftovers(const std::string& prefix);

private:
    TestNode() = default;
    void build();
    void teardown() noexcept;

    std::string prefix_, node_netns_, node_ip_ = "10.77.0.1", cgroup2_mount_, cgroup_root_, bpffs_, workdir_;
    std::map<std::string, Pod> pods_;
    std::vector<pid_t> spawned_;
    int next_pod_ = 0;
};

// Small helpers shared by tests.
uint64_t cgroup_id_of(const std::string& cgroup_dir);  // inode number
std::string find_cgroup2_mount();                      // from /proc/self/mountinfo, "" if none
bool is_root();

}  // namespace podid::test
