// Upgrades and restarts seen from pods: real clients (curl on fresh and keep-alive connections, Python
// azure-identity, @azure/identity) call IMDS in loops while agents on the test node hand over to each other (a
// DaemonSet surge rollout) or restart without a hand-over. Counted from the clients' side: answers, refusals,
// empty replies and resets; and from the agents' side: whose identity each pod got, what reached IMDS.
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "support/node_fixture.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::map<std::string, std::string> kIdentities = {{"fresh", "11111111-1111-4111-8111-111111111111"},
                                                        {"keepalive", "22222222-2222-4222-8222-222222222222"},
                                                        {"python", "33333333-3333-4333-8333-333333333333"},
                                                        {"node", "44444444-4444-4444-8444-444444444444"}};
constexpr const char* kUrl =
    "http://169.254.169.254/metadata/identity/oauth2/"
    "token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";
constexpr const char* kSdkDir = "/var/cache/podid-sdk";

std::string relative(const TestNode& node, const std::string& abs) { return abs.substr(node.cgroup2_mount().size()); }

// What one client loop saw: outcome -> count ("200 0" an answer, "000 7" refused, "000 52" empty reply,
// "000 56" reset, "ok" / "fail ..." for the SDKs).
using Outcomes = std::map<std::string, int>;

std::string describe(const Outcomes& o) {
    std::string s;
    for (const auto& [outcome, count] : o)
        s += outcome + " x" + std::to_string(count) + "; ";
    return s;
}

class HandoverTest : public NodeFixture {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        PodidNodeOptions o;
        for (const auto& [pod, id] : kIdentities)
            o.vm_identities.push_back(id);
        o.bindings = json{{"bindings", json::array()}};
        // The loops are tighter than any pod's fair share (--caller-rate): measure failures, not throttling.
        o.agent_args = {"--caller-rate", "0"};
        build_podid_node(o);
        json bindings = json{{"bindings", json::array()}};
        for (const auto& [pod, id] : kIdentities) {
            pn_->add_pod({.name = pod});
            bindings["bindings"].push_back({{"cgroup", relative(pn_->node(), pn_->node().pod(pod).pod_cgroup_dir)},
                                            {"identities", {{{"client_id", id}}}}});
        }
        pn_->write_bindings(bindings);
        pn_->start_emulator();
        pn_->start_agent();
        stop_file_ = pn_->node().workdir() + "/stop-clients";
    }

    // Starts the four client loops; each runs until the stop file exists and prints one outcome per request.
    void start_clients(bool with_sdks) {
        const std::string stop = "[ -e " + stop_file_ + " ]";
        const std::string curl =
            "curl -s -o /dev/null -H 'Metadata: true' --max-time 10 -w '%{http_code} %{exitcode}\\n' ";
        // A new connection per request.
        clients_["fresh"] = pn_->node().spawn_in_pod(
            "fresh", {"sh", "-c", "until " + stop + "; do " + curl + "'" + kUrl + "'; done; exit 0"});
        // Keep-alive: one curl, 20 requests on its connection (a new one only when the server closes it).
        std::string urls;
        for (int i = 0; i < 20; ++i)
            urls += std::string(" -o /dev/null '") + kUrl + "'";
        clients_["keepalive"] = pn_->node().spawn_in_pod(
            "keepalive", {"sh", "-c", "until " + stop + "; do " + curl + urls + "; done; exit 0"});
        if (!with_sdks)
            return;
        // The SDKs, a new credential per token so that nothing is served from the SDK's own cache.
        clients_["python"] = pn_->node().spawn_in_pod(
            "python", {"/usr/bin/python3", "-c",
                       "import os\n"
                       "from azure.identity import ManagedIdentityCredential\n"
                       "while not os.path.exists('" +
                           stop_file_ +
                           "'):\n"
                           "    try:\n"
                           "        ManagedIdentityCredential().get_token('https://vault.azure.net/.default')\n"
                           "        print('ok', flush=True)\n"
                           "    except Exception as e:\n"
                           "        print('fail', type(e).__name__, str(e)[:160].replace('\\n', ' '), flush=True)\n"});
        clients_["node"] = pn_->node().spawn_in_pod(
            "node", {"env", "NODE_PATH=" + std::string(kSdkDir) + "/node_modules", "node", "-e",
                     "const { ManagedIdentityCredential } = require('@azure/identity');"
                     "const fs = require('fs');"
                     "(async () => { while (!fs.existsSync('" +
                         stop_file_ +
                         "')) { try { await new ManagedIdentityCredential().getToken("
                         "'https://vault.azure.net/.default'); console.log('ok'); } catch (e) { console.log('fail ' + "
                         "e.name + ' ' + String(e.message).slice(0, 160).replace(/\\n/g, ' ')); } } })();"});
    }

    std::map<std::string, Outcomes> stop_clients() {
        { std::ofstream(stop_file_) << "stop\n"; }
        std::map<std::string, Outcomes> out;
        for (auto& [name, process] : clients_) {
            RunResult r = process.wait(60s);
            std::istringstream lines(r.out);
            for (std::string line; std::getline(lines, line);)
                ++out[name][line.rfind("fail", 0) == 0 ? line.substr(0, std::min<std::size_t>(line.size(), 60)) : line];
            if (r.exit_code != 0)
                ADD_FAILURE() << name << " exited " << r.exit_code << ": " << r.err.substr(0, 2000);
        }
        clients_.clear();
        return out;
    }

    // Every token the agents granted went to the pod it is bound to; no pod ever reached IMDS itself.
    void expect_own_identities_only() {
        std::map<uint64_t, std::string> id_of_cgroup;
        for (const auto& [pod, id] : kIdentities)
            id_of_cgroup[pn_->node().pod(pod).cgroup_id] = id;
        int granted = 0;
        for (const auto& line : pn_->audit_lines()) {
            if (line.value("decision", "") != "allow")
                continue;
            const uint64_t cgroup = line["caller"].value("cgroup_id", uint64_t{0});
            ASSERT_TRUE(id_of_cgroup.count(cgroup)) << "a token went to an unknown caller: " << line.dump();
            EXPECT_EQ(line.value("granted_identity", ""), "client_id=" + id_of_cgroup[cgroup]) << line.dump();
            ++granted;
        }
        EXPECT_GT(granted, 0);
        for (const auto& peer : pn_->emulator_peers())
            for (const auto& [pod, id] : kIdentities)
                EXPECT_NE(peer.rfind(pn_->node().pod(pod).ip + ":", 0), 0u) << "pod " << pod << " reached IMDS";
    }

    std::string stop_file_;
    std::map<std::string, Process> clients_;
};

// A DaemonSet surge rollout, 20 times over: each new agent (a new pod: its own cgroup and admin socket) takes the
// listeners and the pins from the running one, which drains and exits.
TEST_F(HandoverTest, TwentySurgeHandoversFailNoRequest) {
    start_clients(/*with_sdks=*/true);
    std::this_thread::sleep_for(1500ms);
    Process old = std::move(pn_->agent());
    std::vector<double> handover_ms;
    for (int i = 0; i < 20; ++i) {
        const auto started = std::chrono::steady_clock::now();
        Process next = pn_->spawn_agent(pn_->surge_agent_cgroup(i),
                                        pn_->node().workdir() + "/admin-" + std::to_string(i) + ".sock");
        ASSERT_TRUE(next.wait_for_output("hand-over: complete", 20s))
            << "hand-over " << i << ": " << next.read_err() << "\nold agent:\n"
            << old.read_err();
        handover_ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
        RunResult gone = old.wait(15s);
        EXPECT_EQ(gone.exit_code, 0) << "hand-over " << i << ": the old agent: " << gone.err;
        EXPECT_NE(gone.err.find("hand-over: drained; exiting"), std::string::npos) << gone.err;
        old = std::move(next);
    }
    std::this_thread::sleep_for(1500ms);
    // Operators see who holds the pins, and the hand-over in the metrics, of the agent that holds them now.
    RunResult status = pn_->node().run(
        {PODIDCTL_BIN, "--socket", pn_->node().workdir() + "/admin-19.sock", "--bpffs", pn_->pin_dir(), "status"}, "",
        "");
    EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
    EXPECT_NE(status.out.find("pins held by"), std::string::npos) << status.out;
    EXPECT_NE(status.out.find("this agent (pid " + std::to_string(old.pid()) + ")"), std::string::npos) << status.out;
    EXPECT_NE(status.out.find("taken over from pid"), std::string::npos) << status.out;
    RunResult metrics = pn_->node().run({"curl", "-s", "http://127.0.0.1:9090/metrics"}, pn_->node().node_netns(), "");
    EXPECT_NE(metrics.out.find("podid_handovers_total{direction=\"received\"} 1"), std::string::npos)
        << metrics.out.substr(0, 4000);
    pn_->adopt_agent(std::move(old));
    auto outcomes = stop_clients();
    std::sort(handover_ms.begin(), handover_ms.end());
    std::printf("surge hand-overs: 20, new agent start -> old agent drained: p50 %.0f ms, max %.0f ms\n",
                handover_ms[handover_ms.size() / 2], handover_ms.back());
    for (const auto& [client, o] : outcomes) {
        SCOPED_TRACE(client + ": " + describe(o));
        int total = 0, good = 0;
        for (const auto& [outcome, count] : o) {
            total += count;
            if (outcome == "200 0" || outcome == "ok")
                good += count;
        }
        EXPECT_GT(total, 20) << "the client hardly ran";
        EXPECT_EQ(good, total) << "failed requests across the hand-overs";
    }
    expect_own_identities_only();
}

// Without a hand-over (a plain restart: SIGTERM, then the next agent starts once the old one has exited), pods are
// refused while no agent listens; never reset, never answered as the node. The window is measured. (A connection
// attempted while the old agent drains is not refused: its SYN is dropped and its retry a second later usually
// meets the next agent, so the loops here may see no refusal at all.)
TEST_F(HandoverTest, PlainRestartsOnlyRefuseInsideTheWindow) {
    start_clients(/*with_sdks=*/false);
    std::this_thread::sleep_for(1000ms);
    std::vector<double> window_ms;  // SIGTERM sent -> the new agent serves a pod
    for (int i = 0; i < 20; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        EXPECT_EQ(pn_->stop_agent(), 0) << pn_->agent_log();
        Process next = pn_->spawn_agent(pn_->surge_agent_cgroup(i),
                                        pn_->node().workdir() + "/admin-" + std::to_string(i) + ".sock");
        ASSERT_TRUE(next.wait_for_output("podid-agent ready", 20s)) << next.read_err();
        pn_->adopt_agent(std::move(next));
        auto ok =
            pn_->curl_until_ok("fresh", std::string(kUrl).substr(std::string("http://169.254.169.254").size()), 10s);
        ASSERT_EQ(ok.status, 200);
        window_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        std::this_thread::sleep_for(300ms);
    }
    auto outcomes = stop_clients();
    std::sort(window_ms.begin(), window_ms.end());
    std::printf("plain restarts: 20, SIGTERM -> a pod served again: p50 %.0f ms, p99 %.0f ms\n",
                window_ms[window_ms.size() / 2], window_ms[window_ms.size() * 99 / 100]);
    int refused = 0;
    for (const auto& [client, o] : outcomes) {
        SCOPED_TRACE(client + ": " + describe(o));
        for (const auto& [outcome, count] : o) {
            EXPECT_TRUE(outcome == "200 0" || outcome == "000 7") << "not an answer nor a refusal: " << outcome;
            if (outcome == "000 7")
                refused += count;
        }
    }
    std::printf("plain restarts: %d refusals in the loops\n", refused);
    expect_own_identities_only();
}

// The token cache survives a restart: tokens still valid are served by the new agent with no call to IMDS.
TEST_F(HandoverTest, RestartWithAWarmCacheCallsNoUpstream) {
    for (const auto& [pod, id] : kIdentities)
        ASSERT_EQ(pn_->curl(pod, std::string(kUrl).substr(std::string("http://169.254.169.254").size())).status, 200);
    EXPECT_EQ(pn_->stop_agent(), 0);
    struct stat st {};
    ASSERT_EQ(::stat(pn_->token_cache_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "the token cache file is root-only";
    pn_->emulator_reset();
    pn_->start_agent();
    EXPECT_NE(pn_->agent_log().find("token cache restored"), std::string::npos) << pn_->agent_log();
    for (const auto& [pod, id] : kIdentities) {
        auto r = pn_->curl(pod, std::string(kUrl).substr(std::string("http://169.254.169.254").size()));
        ASSERT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.json().value("client_id", ""), id);
    }
    EXPECT_EQ(pn_->emulator_stats().value("token_requests", -1), 0) << "tokens still valid were fetched again";
}

}  // namespace
}  // namespace podid::test
