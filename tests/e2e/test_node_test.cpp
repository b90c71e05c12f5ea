// The test node itself, checked against the kernel: cgroup shapes and ids, process placement, pod-to-node
// connectivity, namespace isolation, and that nothing survives teardown or a SIGKILLed test run.
// Privileged: needs root, cgroup2 and iproute2; without them every test fails with the reason.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "support/mountinfo.h"
#include "support/netns.h"
#include "support/node_fixture.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;

// A TCP listener whose socket lives in another netns; records the peer address of each accepted connection.
class NetnsListener {
public:
    NetnsListener(const std::string& netns, const std::string& ip) {
        fd_ = socket_in_netns(netns, AF_INET, SOCK_STREAM);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
        if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 64) != 0)
            throw std::runtime_error("listen on " + ip + " in " + netns + ": " + std::strerror(errno));
        socklen_t len = sizeof addr;
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { accept_loop(); });
    }
    ~NetnsListener() {
        stop_ = true;
        thread_.join();
        close(fd_);
    }
    uint16_t port() const { return port_; }
    bool wait_for_peer(const std::string& ip, std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            {
                std::lock_guard lock(mu_);
                if (std::count(peers_.begin(), peers_.end(), ip))
                    return true;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

private:
    void accept_loop() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 20) <= 0)
                continue;
            sockaddr_in peer{};
            socklen_t len = sizeof peer;
            int c = accept(fd_, reinterpret_cast<sockaddr*>(&peer), &len);
            if (c < 0)
                continue;
            char buf[INET_ADDRSTRLEN] = {};
            inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof buf);
            close(c);
            std::lock_guard lock(mu_);
            peers_.emplace_back(buf);
        }
    }
    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<std::string> peers_;
    std::thread thread_;
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty())
            out.push_back(line);
    return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    return s;
}

// The kernel's own cgroup id, from the file handle of the cgroup2 directory (kernfs puts the 64-bit id there),
// so the inode-based cgroup_id_of is checked against an independent source.
uint64_t kernel_cgroup_id(const std::string& dir) {
    alignas(file_handle) unsigned char storage[sizeof(file_handle) + 64] = {};
    auto* fh = reinterpret_cast<file_handle*>(storage);
    fh->handle_bytes = 64;
    int mount_id = 0;
    if (name_to_handle_at(AT_FDCWD, dir.c_str(), fh, &mount_id, 0) != 0 || fh->handle_bytes < 8)
        return 0;
    uint64_t id = 0;
    std::memcpy(&id, fh->f_handle, sizeof id);
    return id;
}

uint64_t netns_inode(const std::string& name) {
    struct stat st {};
    return stat(("/run/netns/" + name).c_str(), &st) == 0 ? st.st_ino : 0;
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Gone or a zombie awaiting its (new) parent's reap: either way it no longer runs.
bool process_dead(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        if (!std::getline(stat, line))
            return true;
        auto close_paren = line.rfind(')');
        if (close_paren != std::string::npos && close_paren + 2 < line.size() && line[close_paren + 2] == 'Z')
            return true;
        std::this_thread::sleep_for(10ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

class TestNodeTest : public NodeFixture {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        build_test_node();
    }
};

// The four pods the brief asks for: three with their own netns, one on the host network.
void add_standard_pods(TestNode& node) {
    node.add_pod({"burst", "burstable", "systemd", "containerd", false});
    node.add_pod({"best", "besteffort", "cgroupfs", "containerd", false});
    node.add_pod({"guar", "guaranteed", "systemd", "crio", false});
    node.add_pod({"host", "burstable", "systemd", "containerd", true});
}

struct ShapeCase {
    PodSpec spec;
    std::string shape;  // relative to the node's cgroup root; {uid}, {uid_} (dashes as '_'), {id} filled in
};

TEST_F(TestNodeTest, PodCgroupsHaveKubeletShapes) {
    const std::vector<ShapeCase> cases = {
        {{"a", "burstable", "systemd", "containerd"},
         "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{id}.scope"},
        {{"b", "besteffort", "cgroupfs", "containerd"}, "kubepods/besteffort/pod{uid}/{id}"},
        {{"c", "guaranteed", "systemd", "crio"}, "kubepods.slice/kubepods-pod{uid_}.slice/crio-{id}.scope"},
        {{"d", "besteffort", "systemd", "docker"},
         "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/docker-{id}.scope"},
        {{"e", "burstable", "cgroupfs", "crio"}, "kubepods/burstable/pod{uid}/{id}"},
        {{"f", "guaranteed", "cgroupfs", "docker"}, "kubepods/pod{uid}/{id}"},
        {{"g", "burstable", "systemd", "containerd", true},
         "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{id}.scope"},
    };
    const std::regex uid_re("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    const std::regex id_re("[0-9a-f]{64}");
    for (const auto& c : cases) {
        SCOPED_TRACE(c.shape);
        const Pod& pod = node_->add_pod(c.spec);
        EXPECT_TRUE(std::regex_match(pod.uid, uid_re)) << pod.uid;
        EXPECT_TRUE(std::regex_match(pod.container_id, id_re)) << pod.container_id;
        std::string uid_ = pod.uid;
        std::replace(uid_.begin(), uid_.end(), '-', '_');
        std::string rel =
            replace_all(replace_all(replace_all(c.shape, "{uid_}", uid_), "{uid}", pod.uid), "{id}", pod.container_id);
        EXPECT_EQ(pod.cgroup_dir, node_->cgroup_root() + "/" + rel);
        EXPECT_EQ(pod.cgroup_path, "/" + node_->prefix() + "/" + rel);
        EXPECT_EQ(node_->cgroup2_mount() + pod.cgroup_path, pod.cgroup_dir);
        EXPECT_EQ(pod.pod_cgroup_dir, pod.cgroup_dir.substr(0, pod.cgroup_dir.rfind('/')));
        EXPECT_TRUE(exists(pod.cgroup_dir + "/cgroup.procs"));
        EXPECT_EQ(pod.cgroup_id, cgroup_id_of(pod.cgroup_dir));
        EXPECT_EQ(pod.cgroup_id, kernel_cgroup_id(pod.cgroup_dir));
        EXPECT_EQ(pod.netns, c.spec.host_network ? node_->node_netns() : pod.netns);
        EXPECT_EQ(pod.ip == node_->node_ip(), c.spec.host_network);
    }
    EXPECT_THROW(node_->add_pod({"x", "platinum"}), std::invalid_argument);
    EXPECT_THROW(node_->add_pod({"y", "burstable", "openrc"}), std::invalid_argument);
    EXPECT_THROW(node_->add_pod({"z", "burstable", "systemd", "rkt"}), std::invalid_argument);
    EXPECT_THROW(node_->add_pod({"a"}), std::invalid_argument);  // duplicate name
}

TEST_F(TestNodeTest, ProcessesRunInTheirPodsCgroupAndNetns) {
    add_standard_pods(*node_);
    for (const char* name : {"burst", "best", "guar", "host"}) {
        SCOPED_TRACE(name);
        const Pod& pod = node_->pod(name);
        RunResult r = node_->run_in_pod(name, {"cat", "/proc/self/cgroup"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        std::vector<std::string> lines = lines_of(r.out);
        auto v2 = std::find_if(lines.begin(), lines.end(), [](const auto& l) { return l.rfind("0::", 0) == 0; });
        ASSERT_NE(v2, lines.end()) << r.out;
        EXPECT_EQ(*v2, "0::" + pod.cgroup_path);

        r = node_->run_in_pod(name, {"readlink", "/proc/self/ns/net"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out, "net:[" + std::to_string(netns_inode(pod.netns)) + "]\n");
    }
}

TEST_F(TestNodeTest, PodsReachTheNodeIp) {
    add_standard_pods(*node_);
    NetnsListener listener(node_->node_netns(), node_->node_ip());
    for (const char* name : {"burst", "best", "guar", "host"}) {
        SCOPED_TRACE(name);
        std::string script = "exec 3<>/dev/tcp/" + node_->node_ip() + "/" + std::to_string(listener.port());
        RunResult r = node_->run_in_pod(name, {"bash", "-c", script}, 10s);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        // The node sees the pod's own address: pods are on the bridge, not NATed.
        EXPECT_TRUE(listener.wait_for_peer(node_->pod(name).ip, 5s));
    }
}

TEST_F(TestNodeTest, MetadataAddressIsLocalToTheNodeNetns) {
    RunResult route = node_->run_in_node({"ip", "-o", "route", "get", "169.254.169.254"});
    ASSERT_EQ(route.exit_code, 0) << route.err;
    EXPECT_NE(route.out.find("local 169.254.169.254 dev lo"), std::string::npos) << route.out;

    NetnsListener listener(node_->node_netns(), "169.254.169.254");
    std::string script = "exec 3<>/dev/tcp/169.254.169.254/" + std::to_string(listener.port());
    RunResult r = node_->run_in_node({"bash", "-c", script}, "", 10s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(listener.wait_for_peer("169.254.169.254", 5s));
}

TEST_F(TestNodeTest, PodsSeeOnlyTheirOwnInterfaces) {
    add_standard_pods(*node_);
    for (const char* name : {"burst", "best", "guar"}) {
        SCOPED_TRACE(name);
        RunResult r = node_->run_in_pod(name, {"ip", "-o", "-4", "addr", "show"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        std::set<std::string> seen;
        for (const auto& line : lines_of(r.out)) {
            std::istringstream words(line);
            std::string index, ifname, family, addr;
            words >> index >> ifname >> family >> addr;
            seen.insert(ifname + " " + addr);
        }
        EXPECT_EQ(seen, (std::set<std::string>{"lo 127.0.0.1/8", "eth0 " + node_->pod(name).ip + "/24"}));

        r = node_->run_in_pod(name, {"ip", "-o", "link", "show"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(lines_of(r.out).size(), 2u) << r.out;
    }
    // The node netns holds the bridge, both addresses, and one port per pod with a netns.
    RunResult r = node_->run_in_node({"ip", "-o", "link", "show", "master", "br0"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(lines_of(r.out).size(), 3u) << r.out;
}

TEST_F(TestNodeTest, RemovePodKillsItsProcessesAndRemovesItsObjects) {
    add_standard_pods(*node_);
    const Pod pod = node_->pod("best");
    const Pod host = node_->pod("host");
    Process sleeper = node_->spawn_in_pod("best", {"sleep", "1000"});
    Process host_sleeper = node_->spawn_in_pod("host", {"sleep", "1000"});
    ASSERT_TRUE(sleeper.running());

    node_->remove_pod("best");
    EXPECT_FALSE(exists(pod.pod_cgroup_dir));
    EXPECT_FALSE(exists("/run/netns/" + pod.netns));
    EXPECT_TRUE(process_dead(sleeper.pid(), 2s));
    EXPECT_THROW(node_->pod("best"), std::invalid_argument);
    RunResult ports = node_->run_in_node({"ip", "-o", "link", "show", "master", "br0"});
    EXPECT_EQ(lines_of(ports.out).size(), 2u) << ports.out;

    // A hostNetwork pod shares the node netns: removing it must leave that netns alone.
    node_->remove_pod("host");
    EXPECT_FALSE(exists(host.pod_cgroup_dir));
    EXPECT_TRUE(exists("/run/netns/" + node_->node_netns()));
    EXPECT_TRUE(process_dead(host_sleeper.pid(), 2s));
    EXPECT_EQ(node_->run_in_pod("burst", {"true"}).exit_code, 0);
}

struct SpawnCase {
    std::vector<std::string> argv;
    std::map<std::string, std::string> env;
    std::chrono::milliseconds timeout;
    int exit_code;
    bool timed_out;
    std::string out;  // expected stdout
    std::string err_contains;
};

TEST_F(TestNodeTest, SpawnReportsExitCodesOutputAndFailures) {
    const std::vector<SpawnCase> cases = {
        {{"sh", "-c", "echo out; echo err >&2; exit 3"}, {}, 5s, 3, false, "out\n", "err"},
        {{"sh", "-c", "printf %s \"$PODID_X\""}, {{"PODID_X", "v 1"}}, 5s, 0, false, "v 1", ""},
        {{"/nonexistent/podid-binary"}, {}, 5s, 127, false, "", "cannot exec /nonexistent/podid-binary"},
        {{"sleep", "10"}, {}, 200ms, -1, true, "", ""},
        {{"sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x; echo"},
         {},
         5s,
         0,
         false,
         std::string(200000, 'x') + "\n",
         ""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.argv.back());
        RunResult r = node_->spawn_in_node(c.argv, "", c.env).wait(c.timeout);
        EXPECT_EQ(r.exit_code, c.exit_code);
        EXPECT_EQ(r.timed_out, c.timed_out);
        EXPECT_EQ(r.out, c.out);
        EXPECT_NE(r.err.find(c.err_contains), std::string::npos) << r.err;
    }
    EXPECT_THROW(node_->spawn({"true"}, "podid-no-such-netns", ""), std::runtime_error);
    EXPECT_THROW(node_->spawn({"true"}, "", node_->cgroup_root() + "/no/such/cgroup"), std::runtime_error);

    Process daemon = node_->spawn_in_node({"sh", "-c", "echo ready >&2; exec sleep 1000"});
    EXPECT_TRUE(daemon.wait_for_output("ready", 5s));
    EXPECT_TRUE(daemon.running());
}

TEST_F(TestNodeTest, SystemAndCustomCgroupsStayUnderTheNodeRoot) {
    std::string svc = node_->system_cgroup("podid");
    EXPECT_EQ(svc, node_->cgroup_root() + "/system.slice/podid.service");
    EXPECT_TRUE(exists(svc + "/cgroup.procs"));
    EXPECT_EQ(node_->make_cgroup("a/b/"), node_->cgroup_root() + "/a/b");
    EXPECT_THROW(node_->make_cgroup("../escape"), std::invalid_argument);
    EXPECT_THROW(node_->make_cgroup("/abs"), std::invalid_argument);
    EXPECT_TRUE(exists(node_->kubepods_dir() + "/kubepods-burstable.slice"));
    EXPECT_TRUE(exists(node_->kubepods_cgroupfs_dir() + "/besteffort"));
}

TEST(TestNodeLifecycle, DestroyLeavesNothingBehind) {
    std::unique_ptr<TestNode> node;
    try {
        node = TestNode::create();
    } catch (const std::exception& e) {
        FAIL() << "cannot build the test node: " << e.what();
    }
    EXPECT_THROW(TestNode::create(), std::runtime_error);  // one node per process at a time
    add_standard_pods(*node);
    const std::string prefix = node->prefix();

    const std::vector<MountEntry> mounts = read_mountinfo();
    auto bpf_mount = std::count_if(mounts.begin(), mounts.end(), [&](const MountEntry& m) {
        return m.mount_point == node->bpffs() && m.fs_type == "bpf";
    });
    EXPECT_EQ(bpf_mount, 1);

    // Processes that escape their parent: backgrounded grandchildren in a pod cgroup, and in the node netns
    // outside any node cgroup (only the netns scan finds those).
    Process in_pod = node->spawn_in_pod("burst", {"bash", "-c", "sleep 1000 & echo $!; wait"});
    Process in_node = node->spawn_in_node({"bash", "-c", "sleep 1000 & echo $!; wait"});
    ASSERT_TRUE(in_pod.wait_for_output("\n", 5s));
    ASSERT_TRUE(in_node.wait_for_output("\n", 5s));
    pid_t grandchildren[] = {std::stoi(in_pod.read_out()), std::stoi(in_node.read_out())};

    std::vector<std::string> alive = TestNode::leftovers(prefix);
    EXPECT_GE(alive.size(), 6u);  // 4 netns (node + 3 pods), cgroup, mount, directory
    for (const auto& item : alive)
        EXPECT_EQ(item.rfind("link", 0), std::string::npos) << item;

    node.reset();
    EXPECT_EQ(TestNode::leftovers(prefix), std::vector<std::string>{});
    for (pid_t pid : grandchildren)
        EXPECT_TRUE(process_dead(pid, 2s)) << pid;
    EXPECT_FALSE(in_pod.running());
}

TEST(TestNodeLifecycle, CreateSweepsLeftoversOfAKilledRun) {
    int pipefd[2];
    ASSERT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // A test run that builds a node, starts a daemon that outlives its parent, and is then SIGKILLed.
        close(pipefd[0]);
        std::string report;
        try {
            auto node = TestNode::create();
            node->add_pod({"victim"});
            node->add_pod({"hostnet", "besteffort", "cgroupfs", "docker", true});
            Process p = node->spawn_in_pod("victim", {"bash", "-c", "sleep 1000 & echo $!; wait"});
            if (!p.wait_for_output("\n", 5s))
                _exit(2);
            report = node->prefix() + " " + p.read_out();
            if (write(pipefd[1], report.data(), report.size()) != static_cast<ssize_t>(report.size()))
                _exit(3);
            close(pipefd[1]);
            pause();
        } catch (const std::exception& e) {
            std::string msg = std::string("ERROR ") + e.what() + "\n";
            [[maybe_unused]] auto n = write(pipefd[1], msg.data(), msg.size());
        }
        _exit(1);
    }
    close(pipefd[1]);
    std::string report;
    char buf[256];
    for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;) {
        report.append(buf, static_cast<size_t>(n));
        if (report.find('\n') != std::string::npos)
            break;
    }
    close(pipefd[0]);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);  // reaped: until then the pid counts as alive and is left alone
    ASSERT_EQ(report.rfind("podid-t", 0), 0u) << report;

    std::istringstream words(report);
    std::string prefix;
    pid_t daemon = 0;
    words >> prefix >> daemon;
    EXPECT_EQ(prefix, "podid-t" + std::to_string(child));
    EXPECT_GE(TestNode::leftovers(prefix).size(), 4u);  // what a killed run leaves: netns, cgroup, mount, dir

    std::unique_ptr<TestNode> node;
    try {
        node = TestNode::create();
    } catch (const std::exception& e) {
        FAIL() << "cannot build the test node: " << e.what();
    }
    EXPECT_EQ(TestNode::leftovers(prefix), std::vector<std::string>{});
    EXPECT_TRUE(process_dead(daemon, 2s)) << daemon;
    // Our own node was not swept along with it.
    EXPECT_TRUE(exists("/run/netns/" + node->node_netns()));
    EXPECT_TRUE(exists(node->cgroup_root()));
}

}  // namespace
}  // namespace podid::test
