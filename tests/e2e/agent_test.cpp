// The whole pipeline on the test node: pods call http://169.254.169.254 with curl, the kernel
// redirects them to podid-agent, which attributes them by cgroup and serves each its own identity's
// token from the IMDS emulator (the "real IMDS" of the node).
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "support/node_fixture.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kIdA = "11111111-1111-4111-8111-111111111111";
const std::string kIdB = "22222222-2222-4222-8222-222222222222";
const std::string kNodeId = "99999999-9999-4999-8999-999999999999";
const std::string kTokenPath =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

std::string relative(const TestNode& node, const std::string& abs) { return abs.substr(node.cgroup2_mount().size()); }

class AgentTest : public NodeFixture {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        PodidNodeOptions o;
        o.vm_identities = {kIdA, kIdB};
        o.system_identity = kNodeId;
        o.bindings = json{{"bindings", json::array()}};
        build_podid_node(o);
        pn_->add_pod({.name = "a"});
        pn_->add_pod({.name = "b", .qos = "besteffort"});
        pn_->add_pod({.name = "c", .qos = "guaranteed", .runtime = "crio"});
        pn_->write_bindings(bindings());
        pn_->start_emulator();
        pn_->start_agent();
    }

    json bindings() {
        TestNode& n = pn_->node();
        return json{{"bindings",
                     {{{"cgroup", relative(n, n.pod("a").pod_cgroup_dir)}, {"identities", {{{"client_id", kIdA}}}}},
                      {{"cgroup", relative(n, n.pod("b").pod_cgroup_dir)}, {"identities", {{{"client_id", kIdB}}}}}}}};
    }

    json token_of(const std::string& pod, const std::string& extra = "") {
        auto r = pn_->curl(pod, kTokenPath + extra);
        EXPECT_EQ(r.status, 200) << r.body << r.err;
        return r.json();
    }

    // No connection from a pod ever reached the emulator: only the agent's own (from the node netns).
    void expect_no_pod_reached_imds() {
        for (const auto& peer : pn_->emulator_peers())
            for (const char* pod : {"a", "b", "c"})
                EXPECT_NE(peer.rfind(pn_->node().pod(pod).ip + ":", 0), 0u)
                    << "pod " << pod << " reached IMDS: " << peer;
    }
};

TEST_F(AgentTest, EachPodGetsItsOwnIdentity) {
    json a = token_of("a");
    json b = token_of("b");
    EXPECT_EQ(a.value("client_id", ""), kIdA);
    EXPECT_EQ(b.value("client_id", ""), kIdB);
    EXPECT_EQ(jwt_claims(a.value("access_token", "")).value("appid", ""), kIdA);
    EXPECT_EQ(jwt_claims(b.value("access_token", "")).value("appid", ""), kIdB);
    // Every IMDS field is a string, as SDKs expect.
    for (const char* field : {"access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before",
                              "resource", "token_type"})
        EXPECT_TRUE(a[field].is_string()) << field;
    EXPECT_EQ(a.value("resource", ""), "https://vault.azure.net");
    expect_no_pod_reached_imds();
}

TEST_F(AgentTest, UnboundPodAndForeignIdentityGetIdentityNotFound) {
    auto c = pn_->curl("c", kTokenPath);
    EXPECT_EQ(c.status, 400) << c.body;
    EXPECT_EQ(c.json().value("error_description", ""), "Identity not found");
    // Pod a asking for pod b's identity by client_id.
    auto stolen = pn_->curl("a", kTokenPath + "&client_id=" + kIdB);
    EXPECT_EQ(stolen.status, 400) << stolen.body;
    EXPECT_EQ(stolen.json().value("error_description", ""), "Identity not found");
    // Its own, by client_id, works.
    EXPECT_EQ(token_of("a", "&client_id=" + kIdA).value("client_id", ""), kIdA);

    auto lines = pn_->audit_lines(3);
    ASSERT_GE(lines.size(), 3u);
    const json& denied = lines[1];
    EXPECT_EQ(denied.value("decision", ""), "deny");
    EXPECT_EQ(denied.value("reason", ""), "deny_identity_not_bound");
    EXPECT_EQ(denied["caller"].value("cgroup_id", 0u), pn_->node().pod("a").cgroup_id);
    EXPECT_EQ(denied.value("requested_identity", ""), "client_id=" + kIdB);
}

TEST_F(AgentTest, SdkProbeIsAnsweredWithoutUpstream) {
    pn_->emulator_reset();
    auto probe = pn_->curl("c", "/metadata/identity/oauth2/token", /*metadata_header=*/false);
    EXPECT_EQ(probe.status, 400);
    EXPECT_EQ(probe.json().value("error_description", ""), "Required metadata header not specified");
    EXPECT_EQ(pn_->emulator_stats().value("token_requests", -1), 0);
}

TEST_F(AgentTest, AuditLineDescribesTheCallerAndNeverTheToken) {
    json a = token_of("a");
    auto lines = pn_->audit_lines(1);
    ASSERT_EQ(lines.size(), 1u);
    const json& l = lines[0];
    const Pod& pod = pn_->node().pod("a");
    EXPECT_EQ(l.value("decision", ""), "allow");
    EXPECT_EQ(l.value("reason", ""), "ok_bound_identity");
    EXPECT_EQ(l.value("status", 0), 200);
    EXPECT_EQ(l["caller"].value("comm", ""), "curl");
    EXPECT_EQ(l["caller"].value("cgroup_id", 0u), pod.cgroup_id);
    EXPECT_EQ(l["caller"].value("cgroup", ""), pod.cgroup_path);
    EXPECT_EQ(l["caller"].value("pod_uid", ""), pod.uid);
    EXPECT_EQ(l["caller"].value("container_id", ""), pod.container_id);
    EXPECT_EQ(l.value("granted_identity", ""), "client_id=" + kIdA);
    EXPECT_EQ(l.value("resource", ""), "https://vault.azure.net");
    EXPECT_EQ(l.value("token_sha256", "").size(), 16u);
    std::ifstream in(pn_->audit_path());
    std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(raw.find(a.value("access_token", "<none>")), std::string::npos) << "the audit log holds a token";
}

TEST_F(AgentTest, ConcurrentPodsNeverGetEachOthersToken) {
    constexpr int kRequests = 300;
    auto loop = [&](const std::string& pod, const std::string& id) {
        // client_id is echoed in the body: a response for the other identity would not contain it.
        return pn_->node().spawn_in_pod(
            pod, {PODID_PROBE_BIN, "keepalive", "169.254.169.254", "80", kTokenPath, std::to_string(kRequests), "-H",
                  "Metadata: true", "--expect", "\"client_id\":\"" + id + "\""});
    };
    std::vector<Process> procs;
    for (int i = 0; i < 2; ++i) {
        procs.push_back(loop("a", kIdA));
        procs.push_back(loop("b", kIdB));
    }
    for (auto& p : procs) {
        auto r = p.wait(120s);
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    }
    // Two identities, one resource: two upstream calls however many requests.
    EXPECT_EQ(pn_->emulator_stats().value("token_requests", -1), 2);
    expect_no_pod_reached_imds();
}

// One connection per request (Connection: close), as one-shot clients do: the agent answers and closes at once,
// its FIN in the answer's segment, so the client closes second and the TIME_WAIT state stays on the agent's side.
// Were the client left holding it, a pod making new connections quickly would run out of ephemeral ports toward
// the agent within seconds (each connect() then crawls the port range: 20-50 ms per connection was measured).
TEST_F(AgentTest, ConnectionPerRequestLeavesTimeWaitOnTheAgentSide) {
    constexpr int kRequests = 200;
    auto r = pn_->node().run({PODID_PROBE_BIN, "loop", "169.254.169.254", "80", kTokenPath, std::to_string(kRequests),
                              "-H", "Metadata: true", "--graceful-close", "--expect", "\"client_id\":\"" + kIdA + "\""},
                             pn_->node().pod("a").netns, pn_->node().pod("a").cgroup_dir, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto time_wait = [&](const std::string& netns) {
        auto ss = pn_->node().run({"ss", "-Htan", "state", "time-wait"}, netns, "");
        EXPECT_EQ(ss.exit_code, 0) << ss.err;
        return std::count(ss.out.begin(), ss.out.end(), '\n');
    };
    const auto client_side = time_wait(pn_->node().pod("a").netns);
    const auto agent_side = time_wait(pn_->node().node_netns());
    EXPECT_LE(client_side, kRequests / 20)
        << "the pod kept " << client_side << " TIME_WAIT sockets for " << kRequests << " requests";
    EXPECT_GE(agent_side, kRequests * 9 / 10);
}

// --idle-timeout limits the wait between requests, not a connection's life: a client pacing requests below the limit
// keeps its connection however long it lives; once it goes quiet the agent closes it about one limit later.
TEST_F(AgentTest, IdleTimeoutClosesQuietConnectionsOnly) {
    pn_->kill_agent();
    pn_->set_agent_args({"--idle-timeout", "600ms"});
    pn_->start_agent();
    auto r = pn_->node().run(
        {PODID_PROBE_BIN, "paced", "169.254.169.254", "80", kTokenPath, "8", "250", "3000", "-H", "Metadata: true"},
        pn_->node().pod("a").netns, pn_->node().pod("a").cgroup_dir, 30s);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;  // 8 answers over ~1.75 s on one connection: never idle 600 ms
    const auto at = r.out.find("closed_after_ms=");
    ASSERT_NE(at, std::string::npos) << r.out;
    const long closed_after = std::stol(r.out.substr(at + 16));
    EXPECT_GE(closed_after, 450) << r.out;  // not before the limit (a little slack for the clocks)
    EXPECT_LE(closed_after, 1500) << r.out;
}

TEST_F(AgentTest, UpstreamThrottlingDoesNotReachClientsWhileCached) {
    token_of("a");
    pn_->emulator_fault({{"mode", "status"}, {"status", 429}, {"retry_after", 5}, {"count", -1}});
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(token_of("a").value("client_id", ""), kIdA);
    pn_->emulator_fault({{"mode", "none"}});
}

TEST_F(AgentTest, FailsClosedWhileTheAgentIsDownAndRecoversFromPins) {
    token_of("a");
    pn_->kill_agent();
    pn_->emulator_reset();
    // With the agent gone the pinned programs still redirect: the connection is refused, never let through.
    auto down = pn_->curl("a", kTokenPath);
    EXPECT_EQ(down.status, 0) << "got an answer with the agent down: " << down.body;
    EXPECT_EQ(pn_->emulator_stats().value("connections", -1), 1) << "only this stats call may reach IMDS";
    pn_->start_agent();
    EXPECT_NE(pn_->agent_log().find("updated pinned link"), std::string::npos) << pn_->agent_log();
    EXPECT_EQ(token_of("a").value("client_id", ""), kIdA);
    expect_no_pod_reached_imds();
}

TEST_F(AgentTest, RestartUnderARequestLoopNeverLetsAPodReachImds) {
    auto loop = pn_->node().spawn_in_pod(
        "a", {PODID_PROBE_BIN, "loop", "169.254.169.254", "80", kTokenPath, "400", "-H", "Metadata: true"});
    std::this_thread::sleep_for(300ms);
    pn_->kill_agent();
    std::this_thread::sleep_for(200ms);
    pn_->start_agent();
    loop.wait(120s);  // some requests fail while the agent is down; none may reach IMDS
    expect_no_pod_reached_imds();
}

TEST_F(AgentTest, SigtermDrainsAndKeepsThePins) {
    token_of("a");
    EXPECT_EQ(pn_->stop_agent(), 0) << pn_->agent_log();
    EXPECT_NE(pn_->agent_log().find("BPF programs stay pinned"), std::string::npos);
    EXPECT_TRUE(std::filesystem::exists(pn_->pin_dir() + "/link_connect4"));
    EXPECT_EQ(pn_->curl("a", kTokenPath).status, 0);
}

TEST_F(AgentTest, BindingsReloadWhenTheFileChanges) {
    EXPECT_EQ(pn_->curl("c", kTokenPath).status, 400);
    json b = bindings();
    TestNode& n = pn_->node();
    b["bindings"].push_back(
        {{"cgroup", relative(n, n.pod("c").pod_cgroup_dir)}, {"identities", {{{"client_id", kIdB}}}}});
    pn_->write_bindings(b);
    int status = 0;
    for (int i = 0; i < 50 && status != 200; ++i) {
        std::this_thread::sleep_for(100ms);
        status = pn_->curl("c", kTokenPath).status;
    }
    EXPECT_EQ(status, 200) << "pod c was not bound after the bindings file changed";
    // A broken file keeps the previous bindings.
    {
        std::ofstream out(pn_->bindings_path());
        out << "{\"bindings\": [ {\"cgroup\": }";
    }
    ::kill(pn_->agent().pid(), SIGHUP);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(pn_->curl("c", kTokenPath).status, 200);
    EXPECT_NE(pn_->agent_log().find("bindings file rejected"), std::string::npos) << pn_->agent_log();
}

TEST_F(AgentTest, InstanceMetadataIsForwardedAndPathTricksNeverReachImdsAsTheNode) {
    auto inst = pn_->curl("c", "/metadata/instance?api-version=2021-02-01");
    EXPECT_EQ(inst.status, 200) << inst.body;
    pn_->emulator_reset();
    for (const char* path : {"/metadata/identity\\oauth2\\token/?api-version=2018-02-01&resource=x",
                             "/Metadata/identity/oauth2/token/?api-version=2018-02-01&resource=https://vault.azure.net",
                             "//metadata//identity/oauth2/token?api-version=2018-02-01&resource=x",
                             "/metadata/identity/oauth2%2Ftoken?api-version=2018-02-01&resource=x",
                             "/metadata/./identity/oauth2/token?api-version=2018-02-01&resource=x"}) {
        auto r = pn_->curl("c", path);  // c is unbound: any token would be the node's
        EXPECT_NE(r.status, 200) << path << " -> " << r.body;
    }
    EXPECT_EQ(pn_->emulator_stats().value("token_requests", -1), 0);
}

TEST_F(AgentTest, AuditLogIsReopenedOnSighupForRotation) {
    token_of("a");
    std::string rotated = pn_->audit_path() + ".1";
    ASSERT_EQ(std::rename(pn_->audit_path().c_str(), rotated.c_str()), 0);
    ::kill(pn_->agent().pid(), SIGHUP);
    ASSERT_TRUE(pn_->agent().wait_for_output("audit log reopened", 5s)) << pn_->agent_log();
    token_of("b");
    auto fresh = pn_->audit_lines(1);
    ASSERT_EQ(fresh.size(), 1u) << "the request after SIGHUP goes to the new file";
    EXPECT_EQ(fresh[0].value("granted_identity", ""), "client_id=" + kIdB);
    std::ifstream old(rotated);
    std::string first;
    ASSERT_TRUE(std::getline(old, first));
    EXPECT_NE(first.find(kIdA), std::string::npos);
    EXPECT_FALSE(std::getline(old, first)) << "the rotated file got a line after SIGHUP";
}

TEST_F(AgentTest, BadFlagExitsWithOneLineReason) {
    RunResult r = pn_->node().run({PODID_AGENT_BIN, "--node-ip", "10.77.0.1", "--port", "99999"}, "", "");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--port: '99999' is not a number"), std::string::npos) << r.err;
}

// In a container on cgroup v2 the agent sees "0::/" in /proc/self/cgroup; it must still find and
// exempt its own cgroup (through its own redirected connection), or its upstream calls would loop back.
class AgentCgroupNamespace : public NodeFixture {
protected:
    // The agent in a cgroup namespace of its own, pod "a" bound to identity A, the emulator started.
    void build() {
        PodidNodeOptions o;
        o.vm_identities = {kIdA};
        o.agent_cgroup_namespace = true;
        o.bindings = json{{"bindings", json::array()}};
        build_podid_node(o);
        pn_->add_pod({.name = "a"});
        TestNode& n = pn_->node();
        pn_->write_bindings(
            json{{"bindings",
                  {{{"cgroup", relative(n, n.pod("a").pod_cgroup_dir)}, {"identities", {{{"client_id", kIdA}}}}}}}});
        pn_->start_emulator();
    }
};

TEST_F(AgentCgroupNamespace, AgentInItsOwnCgroupNamespaceStillReachesImds) {
    ASSERT_NO_FATAL_FAILURE(build());
    pn_->start_agent();
    std::string log = pn_->agent_log();
    EXPECT_NE(log.find("agent cgroup found through the redirect"), std::string::npos) << log;
    EXPECT_NE(log.find("cgroup_id=\"" + std::to_string(cgroup_id_of(pn_->agent_cgroup())) + "\""), std::string::npos)
        << log;
    auto r = pn_->curl("a", kTokenPath);
    EXPECT_EQ(r.status, 200) << r.body << r.err << "\n" << pn_->agent_log();
    EXPECT_EQ(r.json().value("client_id", ""), kIdA);
}

// Start-up never takes a pod's connection: a pod calls IMDS on fresh connections in a tight loop while the agent
// restarts in a cgroup namespace (where it finds its own cgroup through its own redirected connection). Before the
// new agent listens, connections are refused (curl exit 7, an SDK retries); after, they are answered. None is
// accepted and then dropped: no empty reply (52) and no reset (56).
TEST_F(AgentCgroupNamespace, PodsConnectingDuringStartupAreNeverReset) {
    ASSERT_NO_FATAL_FAILURE(build());
    TestNode& n = pn_->node();
    // A restart, as in a rollout: the pinned programs stay while no agent runs, so pods are refused, never let
    // through to IMDS; then the new agent starts while the pod keeps calling.
    pn_->start_agent();
    pn_->stop_agent();
    // Until 100 answers, however long the start takes (a sanitizer build starts slower): refusals are quick.
    const std::string loop =
        "ok=0; for i in $(seq 1 5000); do r=$(curl -s -o /dev/null -w '%{http_code} %{exitcode}' "
        "-H 'Metadata: true' --max-time 5 'http://169.254.169.254" +
        std::string(kTokenPath) +
        "'); echo \"$r\"; [ \"$r\" = '200 0' ] && ok=$((ok + 1)); [ $ok -ge 100 ] && break; done";
    Process pod = n.spawn_in_pod("a", {"sh", "-c", loop});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // refusals first: the agent is not there yet
    pn_->start_agent();
    RunResult r = pod.wait(std::chrono::seconds(120));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, int> outcomes;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);)
        ++outcomes[line];
    std::string summary;
    for (const auto& [outcome, count] : outcomes)
        summary += outcome + " x" + std::to_string(count) + "; ";
    EXPECT_GT(outcomes["200 0"], 0) << summary;
    EXPECT_EQ(outcomes["000 52"], 0) << "empty replies (accepted, then closed): " << summary;
    EXPECT_EQ(outcomes["000 56"], 0) << "resets: " << summary;
    int total = 0;
    for (const auto& [outcome, count] : outcomes)
        total += count;
    std::map<std::string, int> reasons;
    for (const auto& line : pn_->audit_lines())
        ++reasons[line.value("reason", "") + " " + std::to_string(line.value("status", 0))];
    std::string audited;
    for (const auto& [reason, count] : reasons)
        audited += reason + " x" + std::to_string(count) + "; ";
    EXPECT_EQ(outcomes["200 0"] + outcomes["000 7"], total) << "only answers and refusals: " << summary << audited;
}

}  // namespace
}  // namespace podid::test
