// The image on the test node, with exactly the DaemonSet's pod and security context as the rendered manifest says
// (`kubectl kustomize deploy/base`, translated by daemonset_container.h): the capabilities it adds and no others,
// its seccomp setting, a read-only root, no privilege escalation, hostNetwork (the node's netns), a private cgroup
// namespace, its mounts (emptyDir as tmpfs; hostPath as the test node's own directories: its cgroup root, made mode
// 0555 like a host's cgroup2 root, its bpffs, a log directory) and its env (the downward API filled with the test
// node's values), plus what kubelet adds to a pod: the API server's address and the service account's token
// volume. The agent finds everything itself, as in a cluster: no flag beyond the manifest's args.
//
// Not part of ctest: tests/run.sh runs it after the image stage built the image of this commit
// (tests/image/build.sh). It skips, saying why, only when podman cannot run at all or the image is absent; an image
// of another commit fails it.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "image/daemonset_container.h"
#include "support/kube_apiserver.h"
#include "support/kube_node.h"
#include "support/node_fixture.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kSource = PODID_SOURCE_DIR;
const std::string kPodman = kSource + "/tests/image/podman.sh";
const std::string kVoteId = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
const std::string kNodeId = "99999999-9999-4999-8999-999999999999";
const std::string kNodeName = "aks-nodepool1-0";
const std::string kVault =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

std::string image() {
    const char* e = std::getenv("PODID_IMAGE");
    return e && *e ? e : "localhost/podid:ci";
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

// The capability numbers of the names a securityContext may add (linux/capability.h).
int cap_number(const std::string& name) {
    static const std::map<std::string, int> numbers = {
        {"CAP_CHOWN", 0},      {"CAP_DAC_OVERRIDE", 1},  {"CAP_DAC_READ_SEARCH", 2}, {"CAP_FOWNER", 3},
        {"CAP_KILL", 5},       {"CAP_SETGID", 6},        {"CAP_SETUID", 7},          {"CAP_NET_BIND_SERVICE", 10},
        {"CAP_NET_ADMIN", 12}, {"CAP_NET_RAW", 13},      {"CAP_IPC_LOCK", 14},       {"CAP_SYS_PTRACE", 19},
        {"CAP_SYS_ADMIN", 21}, {"CAP_SYS_RESOURCE", 24}, {"CAP_PERFMON", 38},        {"CAP_BPF", 39}};
    auto it = numbers.find(name);
    return it == numbers.end() ? -1 : it->second;
}

class ImageTest : public NodeFixture {
protected:
    static void SetUpTestSuite() {
        skip_.clear();
        auto info = run_host({kPodman, "info", "--format", "{{.Host.OCIRuntime.Name}}"}, 60s);
        if (info.exit_code != 0) {
            skip_ = "podman cannot run here (" + trim(info.err) + "); tools/install-deps.sh installs it";
            return;
        }
        if (run_host({kPodman, "image", "exists", image()}, 30s).exit_code != 0) {
            skip_ = "the image " + image() + " is absent: build it with tests/image/build.sh";
            return;
        }
        // Containers of an earlier run that was killed ("podid-t<pid>-agent-<n>", that pid gone), which would keep
        // their test node's cgroups busy.
        auto names = run_host({kPodman, "ps", "--all", "--filter", "name=^podid-t", "--format", "{{.Names}}"}, 30s);
        std::istringstream lines(names.out);
        for (std::string name; std::getline(lines, name);) {
            pid_t owner = std::atoi(name.c_str() + std::strlen("podid-t"));
            if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH)
                run_host({kPodman, "rm", "--force", "--time", "0", name}, 60s);
        }
    }

    static RunResult run_host(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
        std::string cmd;
        for (const auto& a : argv)
            cmd += "'" + a + "' ";
        RunResult r;
        std::string err_path = "/tmp/podid-image-test-err." + std::to_string(getpid());
        if (FILE* p = ::popen(
                ("timeout " + std::to_string(timeout.count() / 1000) + " " + cmd + " 2>" + err_path).c_str(), "r")) {
            char buf[65536];
            size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
                r.out.append(buf, n);
            int status = ::pclose(p);
            r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        std::ifstream err(err_path);
        r.err = std::string(std::istreambuf_iterator<char>(err), {});
        ::unlink(err_path.c_str());
        return r;
    }

    RunResult podman(std::vector<std::string> args, std::chrono::milliseconds timeout = 60s) {
        args.insert(args.begin(), kPodman);
        return run_host(args, timeout);
    }

    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        if (!skip_.empty())
            GTEST_SKIP() << skip_;

        // The image must be of the commit under test, or every check below is about other code.
        auto head = run_host({"git", "-C", kSource, "rev-parse", "HEAD"}, 10s);
        auto label = podman(
            {"image", "inspect", "--format", "{{index .Labels \"org.opencontainers.image.revision\"}}", image()});
        if (head.exit_code == 0) {
            ASSERT_EQ(trim(label.out), trim(head.out))
                << image() << " was built from another commit: rebuild it with tests/image/build.sh";
        }

        // PODID_IMAGE_MANIFEST: another kustomization to read the DaemonSet from (an overlay, a changed base).
        const char* manifest_env = std::getenv("PODID_IMAGE_MANIFEST");
        const std::string manifest = manifest_env && *manifest_env ? manifest_env : kSource + "/deploy/base";
        auto rendered = run_host({"sh", "-c", "kubectl kustomize '" + manifest + "' | yq -s ."}, 60s);
        ASSERT_EQ(rendered.exit_code, 0) << "kubectl kustomize " << manifest << " | yq -s . failed: " << rendered.err;
        auto spec = daemonset_container(json::parse(rendered.out), "podid-agent");
        ASSERT_TRUE(spec.ok()) << spec.error().message;
        spec_ = *spec;

        PodidNodeOptions o;
        o.vm_identities = {kVoteId};
        o.system_identity = kNodeId;
        build_podid_node(o);
        serve_api();
        create("AzureIdentity", {{"metadata", {{"name", "azure-vote"}, {"namespace", "default"}}},
                                 {"spec", {{"type", 0}, {"clientID", kVoteId}}}});
        create("AzureIdentityBinding", {{"metadata", {{"name", "azure-vote-binding"}, {"namespace", "default"}}},
                                        {"spec", {{"azureIdentity", "azure-vote"}, {"selector", "azure-vote"}}}});

        TestNode& n = node();
        // A node's kubelet uses one cgroup driver: keep the systemd driver's kubepods.slice, which the agent then finds
        // by itself, and drop the cgroupfs driver's (empty) kubepods tree the test node also makes.
        for (const char* dir : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods"})
            ASSERT_EQ(::rmdir((n.cgroup_root() + dir).c_str()), 0) << dir << ": " << std::strerror(errno);
        // The host's cgroup2 root is mode 0555: only CAP_DAC_OVERRIDE, which the agent lacks, may create there.
        ASSERT_EQ(::chmod(n.cgroup_root().c_str(), 0555), 0);
        const std::string log_dir = n.workdir() + "/var-log-podid";
        std::filesystem::create_directories(log_dir);
        sa_dir_ = n.workdir() + "/serviceaccount";
        std::filesystem::create_directories(sa_dir_);
        auto sa = api_->write_service_account_dir(sa_dir_, kAgentToken, "podid-system");
        ASSERT_TRUE(sa.ok()) << sa.error().message;

        host_.node_netns = "/run/netns/" + n.node_netns();
        // A pod cgroup under kubepods, as the agent's own pod has (podman's cgroupfs manager refuses *.slice names).
        host_.cgroup_parent = n.kubepods_dir().substr(n.cgroup2_mount().size()) + "/podid-agent-pod";
        host_.host_paths = {
            {"/sys/fs/cgroup", n.cgroup_root()}, {"/sys/fs/bpf", n.bpffs()}, {"/var/log/podid", log_dir}};
        host_.scratch = n.workdir();
        host_.fields = {{"spec.nodeName", kNodeName},           {"status.hostIP", n.node_ip()},
                        {"status.podIP", n.node_ip()},          {"metadata.name", "podid-agent-x7k2p"},
                        {"metadata.namespace", "podid-system"}, {"spec.serviceAccountName", "podid-agent"}};
        host_.kubelet_env = {{"KUBERNETES_SERVICE_HOST", n.node_ip()}, {"KUBERNETES_SERVICE_PORT", "6443"}};
        host_.service_account_dir = sa_dir_;
        audit_path_ = log_dir + "/audit.log";
    }

    void TearDown() override {
        for (const auto& name : containers_) {
            if (HasFailure())
                std::cerr << "--- podman logs " << name << "\n" << podman({"logs", name}).out << "\n";
            podman({"rm", "--force", "--time", "0", name});
        }
        if (pn_) {
            ::chmod(node().cgroup_root().c_str(), 0755);
            remove_v1_cgroups();
        }
        NodeFixture::TearDown();
    }

    // podman's cgroupfs manager also makes the container's cgroup in every cgroup v1 hierarchy of a hybrid host
    // (and conmon's beside it); the test node only cleans its cgroup2 tree.
    void remove_v1_cgroups() {
        namespace fs = std::filesystem;
        std::error_code ec;
        for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
            fs::path top = h.path() / node().prefix();
            if (!fs::is_directory(top, ec) || h.path() == node().cgroup2_mount())
                continue;
            std::vector<std::string> dirs;
            for (const auto& d : fs::recursive_directory_iterator(top, ec))
                if (d.is_directory())
                    dirs.push_back(d.path());
            std::sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
            for (const auto& d : dirs)
                ::rmdir(d.c_str());
            ::rmdir(top.c_str());
        }
    }

    // Starts the agent's container (detached) with the manifest's settings, less `drop` ("CAP_BPF") when set.
    std::string start_container(const std::string& drop = "") {
        auto run = podman_run_args(spec_, host_, drop);
        if (!run.ok()) {
            ADD_FAILURE() << run.error().message;
            return "";
        }
        std::string name = node().prefix() + "-agent-" + std::to_string(containers_.size());
        std::vector<std::string> argv = {"run", "--detach", "--name", name};
        argv.insert(argv.end(), run->options.begin(), run->options.end());
        argv.push_back(image());
        argv.insert(argv.end(), run->args.begin(), run->args.end());
        containers_.push_back(name);
        auto r = podman(argv);
        EXPECT_EQ(r.exit_code, 0) << "podman run failed: " << r.err;
        return name;
    }

    std::string logs(const std::string& name) {
        auto r = podman({"logs", name});
        return r.out + r.err;
    }

    bool running(const std::string& name) {
        return trim(podman({"inspect", "--format", "{{.State.Running}}", name}).out) == "true";
    }

    // Waits for the agent's "podid-agent ready" line; false (with the log in the failure) when it exits first.
    bool wait_ready(const std::string& name, std::chrono::seconds limit = 40s) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            if (logs(name).find("podid-agent ready") != std::string::npos)
                return true;
            if (!running(name))
                break;
            std::this_thread::sleep_for(250ms);
        }
        ADD_FAILURE() << name << " did not become ready:\n" << logs(name);
        return false;
    }

    // Waits until the container has exited; its exit code.
    int wait_exit(const std::string& name, std::chrono::seconds limit = 40s) {
        auto r = podman({"wait", name}, limit);
        return r.exit_code == 0 ? std::atoi(r.out.c_str()) : -1;
    }

    Pod& add_pod(const std::string& test_name, const std::string& name, json labels) {
        Pod& p = pn_->add_pod({.name = test_name});
        create("Pod", kube_pod_object(p, "default", name, std::move(labels), kNodeName));
        return p;
    }

    static inline std::string skip_;
    ContainerSpec spec_;
    ContainerHost host_;
    std::string sa_dir_, audit_path_;
    std::vector<std::string> containers_;
};

TEST_F(ImageTest, ServesPodsWithTheDaemonSetsSecurityContextAndFailsClosedWhenKilled) {
    add_pod("vote", "azure-vote-front", {{"aadpodidbinding", "azure-vote"}});
    add_pod("plain", "redis", {{"app", "redis"}});
    pn_->start_emulator();
    const std::string first = start_container();
    ASSERT_TRUE(wait_ready(first));
    const std::string log = logs(first);

    // The container runs with the manifest's settings and nothing more.
    uint64_t want = 0;
    for (const auto& c : spec_.capabilities) {
        ASSERT_GE(cap_number(c), 0) << c;
        want |= uint64_t{1} << cap_number(c);
    }
    auto status = podman({"exec", first, "cat", "/proc/1/status"});
    ASSERT_EQ(status.exit_code, 0) << status.err;
    // A field of /proc/1/status, without the tab after the colon.
    auto field = [&](const std::string& key) {
        auto at = status.out.find("\n" + key + ":");
        if (at == std::string::npos)
            return std::string();
        auto begin = status.out.find_first_not_of(" \t", at + key.size() + 2);
        return status.out.substr(begin, status.out.find('\n', begin) - begin);
    };
    auto hex = [](const std::string& s) { return s.empty() ? ~uint64_t{0} : std::stoull(s, nullptr, 16); };
    EXPECT_EQ(hex(field("CapEff")), want) << "effective capabilities: exactly the manifest's";
    EXPECT_EQ(hex(field("CapBnd")), want) << "bounding set: exactly the manifest's";
    const std::string seccomp = spec_.container["securityContext"]["seccompProfile"].value("type", "");
    EXPECT_EQ(field("Seccomp"), seccomp == "Unconfined" ? "0" : "2") << "seccomp mode (0: none, 2: filter)";
    EXPECT_EQ(field("NoNewPrivs"), "1");
    auto write_root = podman({"exec", first, "sh", "-c", "echo x > /podid-write-test"});
    EXPECT_NE(write_root.exit_code, 0) << "the root filesystem must be read-only";
    EXPECT_NE(write_root.err.find("Read-only file system"), std::string::npos) << write_root.err;
    auto cgroup = podman({"exec", first, "cat", "/proc/1/cgroup"});
    EXPECT_NE(cgroup.out.find("0::/\n"), std::string::npos) << "a private cgroup namespace: " << cgroup.out;

    // The probes ran (no "kernel feature not probed"), below the kubepods cgroup the agent found itself.
    EXPECT_EQ(log.find("not probed"), std::string::npos) << log;
    EXPECT_NE(log.find("program attached"), std::string::npos) << log;
    EXPECT_NE(log.find("agent cgroup found through the redirect"), std::string::npos) << log;

    // Pods get their own tokens; the agent's own upstream calls reach IMDS (its cgroup is exempt).
    auto vote = pn_->curl("vote", kVault);
    EXPECT_EQ(vote.status, 200) << vote.body << vote.err;
    EXPECT_EQ(vote.json().value("client_id", ""), kVoteId);
    auto plain = pn_->curl("plain", kVault);
    EXPECT_EQ(plain.status, 400) << plain.body;
    EXPECT_EQ(plain.json().value("error_description", ""), "Identity not found");
    for (const auto& peer : pn_->emulator_peers())
        EXPECT_EQ(peer.rfind(node().pod("vote").ip + ":", 0), std::string::npos) << "a pod reached IMDS: " << peer;
    // The audit log reached the hostPath.
    std::string audit_text;
    for (int i = 0; i < 50 && audit_text.find("azure-vote-front") == std::string::npos; ++i) {
        std::this_thread::sleep_for(100ms);
        std::ifstream audit(audit_path_);
        audit_text.assign(std::istreambuf_iterator<char>(audit), {});
    }
    EXPECT_NE(audit_text.find("azure-vote-front"), std::string::npos) << audit_text;

    // podidctl through podman exec (kubectl exec's counterpart), with the manifest's PODID_BPFFS.
    auto ctl = podman({"exec", first, "podidctl", "status"});
    EXPECT_EQ(ctl.exit_code, 0) << ctl.out << ctl.err;
    EXPECT_NE(ctl.out.find("running, ready"), std::string::npos) << ctl.out;
    EXPECT_NE(ctl.out.find("pins present"), std::string::npos) << ctl.out;

    // SIGKILL: the pins stay, pods are refused and never reach IMDS as the node.
    auto kill = podman({"kill", "--signal", "KILL", first});
    ASSERT_EQ(kill.exit_code, 0) << kill.err;
    wait_exit(first);
    const auto before = pn_->emulator_peers().size();
    auto down = pn_->curl("vote", kVault);
    EXPECT_EQ(down.status, 0) << "with the agent killed a pod must get no answer: " << down.body;
    auto down_plain = pn_->curl("plain", kVault);
    EXPECT_EQ(down_plain.status, 0) << down_plain.body;
    EXPECT_EQ(pn_->emulator_peers().size(), before) << "a pod reached IMDS while the agent was down";
    EXPECT_TRUE(std::filesystem::exists(pn_->pin_dir())) << "the pins must outlive the container";

    // A new container takes the pins over, and pods are served again.
    const std::string second = start_container();
    ASSERT_TRUE(wait_ready(second));
    EXPECT_NE(logs(second).find("updated pinned link"), std::string::npos) << logs(second);
    auto again = pn_->curl_until_ok("vote", kVault, 20s);
    EXPECT_EQ(again.status, 200);
    auto ctl2 = podman({"exec", second, "podidctl", "status"});
    EXPECT_EQ(ctl2.exit_code, 0) << ctl2.out << ctl2.err;
}

// Every capability the manifest adds is needed: without any one, the agent refuses to start with one sentence
// naming it.
TEST_F(ImageTest, EachCapabilityIsNecessary) {
    pn_->start_emulator();
    ASSERT_FALSE(spec_.capabilities.empty());
    for (const auto& cap : spec_.capabilities) {
        SCOPED_TRACE("without " + cap);
        const std::string name = start_container(cap);
        const int code = wait_exit(name);
        const std::string log = logs(name);
        EXPECT_NE(code, 0) << log;
        EXPECT_EQ(log.find("podid-agent ready"), std::string::npos) << log;
        EXPECT_NE(log.find("podid-agent lacks " + cap + ","), std::string::npos) << log;
        std::cout << "without " << cap << ": " << log.substr(log.rfind('\n', log.size() - 2) + 1);
    }
    EXPECT_FALSE(std::filesystem::exists(pn_->pin_dir() + "/link_connect4"))
        << "an agent that refused to start must not have pinned anything";
}

}  // namespace
}  // namespace podid::test
