// podidctl against the real agent on the test node: status (agent + pins read from bpffs, also with the agent
// killed), pods, explain and conns, in standalone and Kubernetes mode, table and JSON output, and the admin
// socket's root-only rule (file mode and SO_PEERCRED).
//
// The unprivileged user is this same binary in a helper mode (`--podid-helper podidctl-as-nobody ARGS...`,
// handled before GoogleTest starts): started as root, so that it loads from a build tree other users cannot
// enter, it drops to uid 65534 and then runs podidctl's own code as podidctl's main() does.
#include <gtest/gtest.h>

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "cli.h"
#include "datapath/probe.h"
#include "support/kube_apiserver.h"
#include "support/kube_node.h"
#include "support/node_fixture.h"
#include "support/self_helper.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kIdA = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa";
const std::string kIdVote = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
const std::string kNodeId = "99999999-9999-4999-8999-999999999999";
const std::string kNodeName = "aks-nodepool1-0";
const std::string kToken =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

// podidctl as nobody (uid and gid 65534, no supplementary groups), as `setpriv --reuid=65534 --regid=65534
// --clear-groups podidctl ARGS...` runs it. Exec'ing podidctl as nobody would test where the build tree lives
// instead: in a checkout under a directory only root can enter, the dynamic loader, already nobody, cannot open the
// tree's shared libraries (sanitizer builds link podid's libraries shared) and podidctl exits 127.
int helper_podidctl_as_nobody(const std::vector<std::string>& args) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
        std::perror("podidctl-as-nobody: dropping to uid 65534");
        return 125;
    }
    auto env = [](const char* name) {
        const char* v = std::getenv(name);
        return std::string(v ? v : "");
    };
    auto options = ctl::parse_ctl_options(args, env("PODID_ADMIN_SOCKET"), env("PODID_BPFFS"));
    if (!options) {
        std::cerr << "podidctl: " << options.error().message << "\n";
        return 2;
    }
    return ctl::run_ctl(*options, std::cout, std::cerr);
}

// Runs before main(): a helper invocation never reaches GoogleTest.
const int kHelper = [] {
    std::vector<std::string> args = self_cmdline();
    if (args.size() < 3 || args[1] != "--podid-helper")
        return 0;
    int rc = 2;
    if (args[2] == "podidctl-as-nobody")
        rc = helper_podidctl_as_nobody(std::vector<std::string>(args.begin() + 3, args.end()));
    std::cout.flush();
    std::fflush(stdout);
    std::_Exit(rc);
}();

class PodidctlTest : public NodeFixture {
protected:
    // podidctl as root on the host (it needs the socket and bpffs only, no namespace).
    RunResult ctl(const std::vector<std::string>& args) { return run_with_node_paths({PODIDCTL_BIN}, args); }

    // The same podidctl command as nobody (see helper_podidctl_as_nobody).
    RunResult ctl_as_nobody(const std::vector<std::string>& args) {
        return run_with_node_paths({self_exe(), "--podid-helper", "podidctl-as-nobody"}, args);
    }

    RunResult run_with_node_paths(std::vector<std::string> argv, const std::vector<std::string>& args) {
        argv.insert(argv.end(), {"--socket", pn_->admin_socket_path(), "--bpffs", pn_->pin_dir()});
        argv.insert(argv.end(), args.begin(), args.end());
        return pn_->node().run(argv, "", "", 20s);
    }

    json ctl_json(std::vector<std::string> args, int expected_exit = 0) {
        args.push_back("-o");
        args.push_back("json");
        RunResult r = ctl(args);
        EXPECT_EQ(r.exit_code, expected_exit) << r.err << r.out;
        json j = json::parse(r.out, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << r.out;
        return j;
    }
};

TEST_F(PodidctlTest, StandaloneStatusPodsExplainConns) {
    PodidNodeOptions o;
    o.vm_identities = {kIdA};
    build_podid_node(o);
    Pod& a = pn_->add_pod({.name = "a"});
    Pod& b = pn_->add_pod({.name = "b"});
    pn_->write_bindings({{"bindings", json::array({{{"cgroup", a.cgroup_path.substr(0, a.cgroup_path.rfind('/'))},
                                                    {"identities", json::array({{{"client_id", kIdA}}})}}})}});
    pn_->set_agent_args({"--bindings", pn_->bindings_path(), "--metrics-addr", ""});
    pn_->start_emulator();
    pn_->start_agent();
    // Readiness needs the self-check's first pass.
    for (int i = 0; i < 100 && ctl({"status"}).exit_code != 0; ++i)
        std::this_thread::sleep_for(100ms);
    ASSERT_EQ(pn_->curl("a", kToken).status, 200);
    ASSERT_EQ(pn_->curl("b", kToken).status, 400);

    // status: the agent's view and the pins read from bpffs agree.
    json status = ctl_json({"status"});
    const json& agent = status["agent"];
    EXPECT_TRUE(agent.value("ready", false)) << agent.dump();
    EXPECT_EQ(agent.value("mode", ""), "standalone");
    EXPECT_EQ(agent.value("node_ip", ""), pn_->node().node_ip());
    EXPECT_EQ(agent["programs"].size(), 6u);
    EXPECT_EQ(agent.value("origin_recording", ""), sockops_reads_current_task() ? "task" : "socket storage");
    EXPECT_EQ(agent["token_cache"].value("entries", 0), 1);
    EXPECT_EQ(agent["bindings"].value("file_entries", 0), 1);
    const json& dp = status["datapath"];
    EXPECT_EQ(dp.value("present", 0), dp.value("expected", -1));
    EXPECT_EQ(dp.value("expected", 0), 10);
    const std::string kubepods_rel = pn_->node().kubepods_dir().substr(pn_->node().cgroup2_mount().size());
    for (const auto& pin : dp["pins"]) {
        EXPECT_TRUE(pin.value("present", false)) << pin.dump();
        if (pin.value("kind", "") == "link") {
            EXPECT_EQ(pin.value("cgroup", ""), kubepods_rel) << pin.dump();
            EXPECT_EQ(pin["program"].value("name", "").rfind("podid_", 0), 0u) << pin.dump();
        }
    }
    EXPECT_GE(dp["counters"].value("redirected", 0), 2) << dp.dump();

    RunResult table = ctl({"status"});
    EXPECT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("running, ready"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("link_connect4"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("cgroup/connect4"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("origin recorded from: "), std::string::npos) << table.out;
    // Every link row says how this start took it, the sockops link too (its program has a variant's name).
    std::istringstream rows(table.out);
    for (std::string row; std::getline(rows, row);) {
        if (row.rfind("link_", 0) == 0) {
            size_t last = row.find_last_not_of(' ');
            EXPECT_FALSE(last != std::string::npos && last > 0 && row.compare(last - 1, 2, " -") == 0) << row;
        }
    }

    // pods: both pods by UID (standalone has no names), a bound and b not, with their kernel counters.
    json pods = ctl_json({"pods"});
    std::map<std::string, json> by_uid;
    for (const auto& p : pods["pods"])
        by_uid[p.value("uid", "")] = p;
    ASSERT_TRUE(by_uid.count(a.uid)) << pods.dump();
    ASSERT_TRUE(by_uid.count(b.uid)) << pods.dump();
    EXPECT_EQ(by_uid[a.uid].value("binding", ""), "static_file");
    EXPECT_EQ(by_uid[a.uid]["identities"][0].value("client_id", ""), kIdA);
    EXPECT_GE(by_uid[a.uid]["counters"].value("redirected", 0), 1);
    EXPECT_EQ(by_uid[b.uid].value("binding", ""), "none");
    EXPECT_GE(by_uid[b.uid]["counters"].value("redirected", 0), 1);
    EXPECT_EQ(by_uid[b.uid]["cgroups"].size(), 2u) << "pod cgroup and container cgroup";

    // explain: the bindings entry for a; nothing for b.
    json ea = ctl_json({"explain", "--cgroup", a.cgroup_path});
    EXPECT_EQ(ea.value("decided_by", ""), "bindings_file") << ea.dump();
    EXPECT_EQ(ea["identities"][0].value("client_id", ""), kIdA);
    EXPECT_EQ(ea.value("pod_uid", ""), a.uid);
    json eb = ctl_json({"explain", "--cgroup", b.cgroup_path});
    EXPECT_EQ(eb.value("binding", ""), "none");
    EXPECT_NE(eb["requests"].value("without_identity_parameter", "").find("Identity not found"), std::string::npos);
    RunResult bad = ctl({"explain", "--cgroup", "/no/such/cgroup"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("no cgroup /no/such/cgroup"), std::string::npos) << bad.err;
    RunResult by_name = ctl({"explain", "default/x"});
    EXPECT_EQ(by_name.exit_code, 1);
    EXPECT_NE(by_name.err.find("standalone mode"), std::string::npos) << by_name.err;

    // conns: each curl's connection, attributed to its container cgroup with the kernel's pid and comm.
    json conns = ctl_json({"conns", "--limit", "100"});
    bool seen_a = false, seen_b = false;
    for (const auto& c : conns["conns"]) {
        if (!c.value("attributed", false) || c.value("comm", "") != "curl")
            continue;
        EXPECT_EQ(c.value("orig_dst", ""), "169.254.169.254:80") << c.dump();
        EXPECT_TRUE(c.value("redirected", false));
        if (c.value("cgroup", "") == a.cgroup_path) {
            seen_a = true;
            EXPECT_EQ(c.value("container_id", ""), a.container_id);
            EXPECT_EQ(c.value("peer", "").rfind(a.ip + ":", 0), 0u) << c.dump();
        }
        seen_b |= c.value("cgroup", "") == b.cgroup_path;
    }
    EXPECT_TRUE(seen_a && seen_b) << conns.dump();
    RunResult conns_table = ctl({"conns"});
    EXPECT_NE(conns_table.out.find("169.254.169.254:80"), std::string::npos) << conns_table.out;

    // Root only: the socket file is 0600 (an unprivileged user cannot connect) ...
    struct stat st {};
    ASSERT_EQ(::stat(pn_->admin_socket_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    RunResult nobody = ctl_as_nobody({"pods"});
    EXPECT_EQ(nobody.exit_code, 1);
    EXPECT_NE(nobody.err.find("root only"), std::string::npos) << nobody.err;
    // ... and even when someone loosens the mode, the agent checks the peer's uid.
    ASSERT_EQ(::chmod(pn_->admin_socket_path().c_str(), 0666), 0);
    RunResult loosened = ctl_as_nobody({"pods"});
    EXPECT_EQ(loosened.exit_code, 1);
    EXPECT_NE(loosened.err.find("root only"), std::string::npos) << loosened.err;
    EXPECT_EQ(loosened.out.find(kIdA), std::string::npos);

    // With the agent killed, status still reads the pins and says pods fail closed.
    pn_->kill_agent();
    RunResult down = ctl({"status"});
    EXPECT_EQ(down.exit_code, 1);
    EXPECT_NE(down.out.find("NOT REACHABLE"), std::string::npos) << down.out;
    EXPECT_NE(down.out.find("fail closed"), std::string::npos) << down.out;
    json down_json = ctl_json({"status"}, 1);
    EXPECT_TRUE(down_json["agent"].contains("error"));
    EXPECT_EQ(down_json["datapath"].value("present", 0), 10);
}

TEST_F(PodidctlTest, KubernetesPodsAndExplain) {
    PodidNodeOptions o;
    o.vm_identities = {kIdVote};
    o.system_identity = kNodeId;
    build_podid_node(o);
    const std::string kubeconfig = serve_api();
    create("AzureIdentity", {{"metadata", {{"name", "azure-vote"}, {"namespace", "default"}}},
                             {"spec", {{"type", 0}, {"clientID", kIdVote}}}});
    create("AzureIdentityBinding", {{"metadata", {{"name", "azure-vote-binding"}, {"namespace", "default"}}},
                                    {"spec", {{"azureIdentity", "azure-vote"}, {"selector", "azure-vote"}}}});
    create("AzurePodIdentityException", {{"metadata", {{"name", "node-agents"}, {"namespace", "default"}}},
                                         {"spec", {{"podLabels", {{"app", "node-agent"}}}}}});
    auto add_pod = [&](const std::string& test_name, const std::string& name, json labels) -> Pod& {
        Pod& p = pn_->add_pod({.name = test_name});
        create("Pod", kube_pod_object(p, "default", name, std::move(labels), kNodeName));
        return p;
    };
    add_pod("vote", "azure-vote-front", {{"aadpodidbinding", "azure-vote"}});
    add_pod("exc", "node-agent", {{"app", "node-agent"}, {"aadpodidbinding", "azure-vote"}});
    add_pod("plain", "redis", {{"app", "redis"}});
    pn_->set_agent_args({"--kubeconfig", kubeconfig, "--node-name", kNodeName, "--metrics-addr", ""});
    pn_->start_emulator();
    pn_->start_agent();
    ASSERT_EQ(pn_->curl("vote", kToken).status, 200);

    json pods;
    for (int i = 0; i < 100; ++i) {  // the watch delivers the pods shortly after start
        pods = ctl_json({"pods"});
        if (pods["pods"].size() == 3)
            break;
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(pods["pods"].size(), 3u) << pods.dump();
    std::map<std::string, json> by_name;
    for (const auto& p : pods["pods"])
        by_name[p.value("name", "")] = p;
    EXPECT_EQ(by_name["azure-vote-front"].value("binding", ""), "aad_pod_identity");
    EXPECT_EQ(by_name["azure-vote-front"]["identities"][0].value("client_id", ""), kIdVote);
    EXPECT_GE(by_name["azure-vote-front"]["counters"].value("redirected", 0), 1);
    EXPECT_EQ(by_name["node-agent"].value("binding", ""), "node_identity");
    EXPECT_EQ(by_name["redis"].value("binding", ""), "none");
    RunResult table = ctl({"pods"});
    EXPECT_NE(table.out.find("default/azure-vote-front"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find(kIdVote), std::string::npos) << table.out;

    // explain names the binding, its selector and the identity; the exception and what it overrides.
    json vote = ctl_json({"explain", "default/azure-vote-front"});
    EXPECT_EQ(vote.value("decided_by", ""), "kubernetes");
    std::string steps = vote["steps"].dump();
    EXPECT_NE(steps.find("AzureIdentityBinding default/azure-vote-binding (selector azure-vote)"), std::string::npos)
        << steps;
    EXPECT_NE(steps.find("none of 1 AzurePodIdentityException(s) in namespace default matches"), std::string::npos)
        << steps;
    json exc = ctl_json({"explain", "default/node-agent"});
    EXPECT_EQ(exc.value("binding", ""), "node_identity");
    std::string exc_steps = exc["steps"].dump();
    EXPECT_NE(exc_steps.find("AzurePodIdentityException default/node-agents"), std::string::npos) << exc_steps;
    EXPECT_NE(exc_steps.find("takes precedence over aadpodidbinding=azure-vote"), std::string::npos) << exc_steps;
    RunResult text = ctl({"explain", "default/azure-vote-front"});
    EXPECT_EQ(text.exit_code, 0);
    EXPECT_NE(text.out.find("[default]"), std::string::npos) << text.out;
    RunResult missing = ctl({"explain", "default/nope"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("not on this node"), std::string::npos) << missing.err;

    // conns names the pod.
    json conns = ctl_json({"conns"});
    bool named = false;
    for (const auto& c : conns["conns"])
        named |= c.value("pod", "") == "azure-vote-front" && c.value("namespace", "") == "default";
    EXPECT_TRUE(named) << conns.dump();
}

}  // namespace
}  // namespace podid::test
