// TestNode: assembles the node (netns, bridge, pods, kubelet-shaped cgroups, bpffs) from the pieces in
// spawn/netns/cgroup_tree/pod_layout, and takes it all down again.
#include "test_node.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "cgroup_tree.h"
#include "netns.h"
#include "pod_layout.h"
#include "spawn.h"
#include "sweep.h"

namespace podid::test {
namespace fs = std::filesystem;
namespace {

// Every object is named after the pid, so two live nodes in one process would collide.
std::atomic<bool> g_node_alive{false};

constexpr int kMaxPods = 245;  // pod IPs 10.77.0.10 .. 10.77.0.254

std::vector<std::string> ip_in(const std::string& netns, std::initializer_list<std::string> args) {
    std::vector<std::string> argv{"ip", "-n", netns};
    argv.insert(argv.end(), args);
    return argv;
}

// The bridge port of pod netns "<prefix>-p<i>" is "vp<i>" in the node netns (IFNAMSIZ allows 15 chars).
std::string bridge_port_of(const std::string& pod_netns) { return "vp" + pod_netns.substr(pod_netns.rfind("-p") + 2); }

}  // namespace

bool is_root() { return ::geteuid() == 0; }

std::unique_ptr<TestNode> TestNode::create() {
    if (!is_root())
        throw std::runtime_error("the test node needs root (netns, veth, cgroups, bpffs): run the e2e tests as root");
    std::string mount = find_cgroup2_mount();
    if (mount.empty())
        throw std::runtime_error(
            "no cgroup2 filesystem in /proc/self/mountinfo: mount one (mount -t cgroup2 none /sys/fs/cgroup)");
    if (!on_path("ip"))
        throw std::runtime_error("the `ip` command is not on PATH: install iproute2");

    bool expected = false;
    if (!g_node_alive.compare_exchange_strong(expected, true))
        throw std::runtime_error("a TestNode already exists in this process: destroy it before creating another");

    std::unique_ptr<TestNode> node;
    try {
        sweep_dead_nodes(mount, ::getpid());
        node.reset(new TestNode());
        node->cgroup2_mount_ = mount;
        node->build();  // on a throw, ~TestNode removes whatever was built
    } catch (...) {
        if (!node)
            g_node_alive = false;
        throw;
    }
    return node;
}

void TestNode::build() {
    prefix_ = "podid-t" + std::to_string(::getpid());
    node_netns_ = prefix_ + "-node";
    cgroup_root_ = cgroup2_mount_ + "/" + prefix_;
    workdir_ = "/tmp/" + prefix_;
    bpffs_ = workdir_ + "/bpffs";

    std::error_code ec;
    fs::create_directories(bpffs_, ec);
    if (ec)
        throw std::runtime_error("cannot create " + bpffs_ + ": " + ec.message());
    if (::mount("bpf", bpffs_.c_str(), "bpf", 0, nullptr) != 0)
        throw std::runtime_error("cannot mount a bpf filesystem at " + bpffs_ + ": " + std::strerror(errno));

    add_netns(node_netns_);
    run_checked(ip_in(node_netns_, {"link", "set", "lo", "up"}));
    run_checked(ip_in(node_netns_, {"addr", "add", "169.254.169.254/32", "dev", "lo"}));
    run_checked(ip_in(node_netns_, {"link", "add", "br0", "type", "bridge"}));
    run_checked(ip_in(node_netns_, {"addr", "add", node_ip_ + "/24", "dev", "br0"}));
    run_checked(ip_in(node_netns_, {"link", "set", "br0", "up"}));

    // What kubelet creates at start-up for either driver, before any pod exists.
    for (const char* dir : {"kubepods.slice/kubepods-burstable.slice", "kubepods.slice/kubepods-besteffort.slice",
                            "kubepods/burstable", "kubepods/besteffort", "system.slice"})
        make_cgroup_dirs(cgroup_root_ + "/" + dir);
}

TestNode::~TestNode() { teardown(); }

void TestNode::teardown() noexcept {
    try {
        // Children spawned outside any node cgroup are out of cgroup.kill's reach.
        for (pid_t pid : spawned_) {
            if (!is_unreaped_child(pid))
                continue;
            ::kill(pid, SIGKILL);
            int status = 0;
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
        spawned_.clear();
        pods_.clear();
        if (!prefix_.empty() && !remove_node_objects(prefix_, cgroup2_mount_))
            std::cerr << "podid test node: teardown of " << prefix_ << " left objects behind\n";
    } catch (const std::exception& e) {
        std::cerr << "podid test node: teardown: " << e.what() << "\n";
    } catch (...) {
        std::cerr << "podid test node: teardown: unknown error\n";
    }
    g_node_alive = false;
}

Pod& TestNode::add_pod(const PodSpec& spec) {
    if (spec.name.empty())
        throw std::invalid_argument("add_pod: the pod needs a name");
    if (pods_.count(spec.name))
        throw std::invalid_argument("add_pod: pod " + spec.name + " already exists");
    if (next_pod_ >= kMaxPods)
        throw std::invalid_argument("add_pod: the node's /24 has no pod IPs left");

    Pod pod;
    pod.spec = spec;
    pod.uid = random_pod_uid();
    pod.container_id = random_container_id();
    PodCgroupLayout layout = kubelet_cgroup_layout(spec, pod.uid, pod.container_id);  // validates the spec
    int index = next_pod_++;

    pod.pod_cgroup_dir = cgroup_root_ + "/" + layout.pod_dir;
    pod.cgroup_dir = cgroup_root_ + "/" + layout.container_dir;
    pod.cgroup_path = pod.cgroup_dir.substr(cgroup2_mount_.size());
    pod.netns = spec.host_network ? node_netns_ : prefix_ + "-p" + std::to_string(index);
    pod.ip = spec.host_network ? node_ip_ : "10.77.0." + std::to_string(10 + index);

    try {
        make_cgroup_dirs(pod.cgroup_dir);
        pod.cgroup_id = cgroup_id_of(pod.cgroup_dir);
        if (!spec.host_network) {
            std::string port = bridge_port_of(pod.netns);
            add_netns(pod.netns);
            // Made inside the node netns with the pod end moved straight to the pod: no veth ever
            // appears in the root netns.
            run_checked(
                ip_in(node_netns_, {"link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", pod.netns}));
            run_checked(ip_in(node_netns_, {"link", "set", port, "master", "br0"}));
            run_checked(ip_in(node_netns_, {"link", "set", port, "up"}));
            run_checked(ip_in(pod.netns, {"link", "set", "lo", "up"}));
            run_checked(ip_in(pod.netns, {"addr", "add", pod.ip + "/24", "dev", "eth0"}));
            run_checked(ip_in(pod.netns, {"link", "set", "eth0", "up"}));
            run_checked(ip_in(pod.netns, {"route", "add", "default", "via", node_ip_}));
        }
    } catch (...) {
        remove_cgroup_tree(pod.pod_cgroup_dir);
        if (!spec.host_network) {
            try {
                run_checked(ip_in(node_netns_, {"link", "del", bridge_port_of(pod.netns)}));
            } catch (const std::exception&) {  // not created yet, or gone with the pod netns
            }
            delete_netns(pod.netns);
        }
        throw;
    }
    return pods_[spec.name] = std::move(pod);
}

void TestNode::remove_pod(const std::string& name) {
    auto it = pods_.find(name);
    if (it == pods_.end())
        throw std::invalid_argument("remove_pod: no pod " + name);
    Pod pod = std::move(it->second);
    pods_.erase(it);

    bool clean = remove_cgroup_tree(pod.pod_cgroup_dir);
    if (!pod.spec.host_network) {
        // The netns going away would delete the veth pair too, but asynchronously; tests check at once.
        try {
            run_checked(ip_in(node_netns_, {"link", "del", bridge_port_of(pod.netns)}));
        } catch (const std::exception& e) {
            std::cerr << "podid test node: " << e.what() << "\n";
        }
        clean &= delete_netns(pod.netns);
    }
    if (!clean)
        throw std::runtime_error("remove_pod " + name + ": its cgroup or netns could not be removed");
}

Pod& TestNode::pod(const std::string& name) {
    auto it = pods_.find(name);
    if (it == pods_.end())
        throw std::invalid_argument("no pod " + name + " on the test node");
    return it->second;
}

std::string TestNode::system_cgroup(const std::string& name) {
    return make_cgroup("system.slice/" + name + ".service");
}

std::string TestNode::make_cgroup(const std::string& relative) {
    fs::path rel(relative);
    bool escapes = rel.is_absolute() || relative.empty() ||
                   std::any_of(rel.begin(), rel.end(), [](const fs::path& part) { return part == ".."; });
    if (escapes)
        throw std::invalid_argument("make_cgroup: '" + relative + "' must stay below the node's cgroup root");
    std::string dir = cgroup_root_ + "/" + rel.lexically_normal().string();
    while (!dir.empty() && dir.back() == '/')
        dir.pop_back();
    make_cgroup_dirs(dir);
    return dir;
}

Process TestNode::spawn(const std::vector<std::string>& argv, const std::string& netns, const std::string& cgroup_dir,
                        const std::map<std::string, std::string>& env) {
    // Forget children already reaped, so teardown never signals a recycled pid.
    spawned_.erase(std::remove_if(spawned_.begin(), spawned_.end(), [](pid_t p) { return !is_unreaped_child(p); }),
                   spawned_.end());
    Process p = spawn_process(SpawnRequest{argv, cgroup_dir, netns, env});
    spawned_.push_back(p.pid());
    return p;
}

RunResult TestNode::run(const std::vector<std::string>& argv, const std::string& netns, const std::string& cgroup_dir,
                        std::chrono::milliseconds timeout) {
    return spawn(argv, netns, cgroup_dir).wait(timeout);
}

Process TestNode::spawn_in_pod(const std::string& name, const std::vector<std::string>& argv) {
    const Pod& p = pod(name);
    return spawn(argv, p.netns, p.cgroup_dir);
}

RunResult TestNode::run_in_pod(const std::string& name, const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout) {
    return spawn_in_pod(name, argv).wait(timeout);
}

Process TestNode::spawn_in_node(const std::vector<std::string>& argv, const std::string& cgroup_dir,
                                const std::map<std::string, std::string>& env) {
    return spawn(argv, node_netns_, cgroup_dir, env);
}

RunResult TestNode::run_in_node(const std::vector<std::string>& argv, const std::string& cgroup_dir,
                                std::chrono::milliseconds timeout) {
    return spawn_in_node(argv, cgroup_dir).wait(timeout);
}

std::string TestNode::kubepods_dir() const { return cgroup_root_ + "/kubepods.slice"; }

std::string TestNode::kubepods_cgroupfs_dir() const { return cgroup_root_ + "/kubepods"; }

std::vector<std::string> TestNode::leftovers(const std::string& prefix) { return list_leftovers(prefix); }

}  // namespace podid::test
