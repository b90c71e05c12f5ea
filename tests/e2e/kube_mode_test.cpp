// Kubernetes mode end to end: the agent watches the API-server double (real HTTPS, list/watch) from the
// test node, resolves callers cgroup -> pod UID -> pod object, and applies AAD Pod Identity CRDs.
// The seed scenario: azure-vote reads its Key Vault token as the identity bound with aadpodidbinding.
#include <gtest/gtest.h>

#include <sstream>

#include <thread>

#include "support/kube_apiserver.h"
#include "support/kube_node.h"
#include "support/node_fixture.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kVoteId = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
const std::string kNodeId = "99999999-9999-4999-8999-999999999999";
const std::string kNodeName = "aks-nodepool1-0";
const std::string kVault =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

json pod_object(const Pod& p, const std::string& ns, const std::string& name, json labels, bool host_network = false) {
    return kube_pod_object(p, ns, name, std::move(labels), kNodeName, host_network);
}

class KubeModeTest : public NodeFixture, public ::testing::WithParamInterface<std::string> {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        PodidNodeOptions o;
        o.vm_identities = {kVoteId};
        o.system_identity = kNodeId;
        o.cgroup_driver = GetParam();
        build_podid_node(o);
        kubeconfig_ = serve_api();

        // The seed scenario's objects.
        create("AzureIdentity", {{"metadata", {{"name", "azure-vote"}, {"namespace", "default"}}},
                                 {"spec",
                                  {{"type", 0},
                                   {"clientID", kVoteId},
                                   {"resourceID",
                                    "/subscriptions/s/resourcegroups/r/providers/"
                                    "Microsoft.ManagedIdentity/userAssignedIdentities/azure-vote"}}}});
        create("AzureIdentityBinding", {{"metadata", {{"name", "azure-vote-binding"}, {"namespace", "default"}}},
                                        {"spec", {{"azureIdentity", "azure-vote"}, {"selector", "azure-vote"}}}});
        create("AzurePodIdentityException", {{"metadata", {{"name", "node-agents"}, {"namespace", "default"}}},
                                             {"spec", {{"podLabels", {{"app", "node-agent"}}}}}});
    }

    void TearDown() override {
        if (pn_ && HasFailure())
            for (const auto& line : pn_->audit_lines())
                std::cerr << "audit: " << line.dump() << "\n";
        NodeFixture::TearDown();
    }

    Pod& add_pod(const std::string& test_name, const std::string& ns, const std::string& name, json labels,
                 bool host_network = false) {
        Pod& p = pn_->add_pod({.name = test_name, .driver = GetParam(), .host_network = host_network});
        create("Pod", pod_object(p, ns, name, std::move(labels), host_network));
        return p;
    }

    void start_agent(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"--kubeconfig", kubeconfig_, "--node-name", kNodeName, "--metrics-addr", ""};
        args.insert(args.end(), extra.begin(), extra.end());
        pn_->set_agent_args(args);
        pn_->start_emulator();
        pn_->start_agent();
    }

    std::string client_id(const PodidNode::HttpResult& r) { return r.json().value("client_id", ""); }

    std::string kubeconfig_;
};

TEST_P(KubeModeTest, SeedScenarioAadPodIdentity) {
    add_pod("vote", "default", "azure-vote-front", {{"aadpodidbinding", "azure-vote"}});
    add_pod("plain", "default", "redis", {{"app", "redis"}});
    add_pod("elsewhere", "other", "azure-vote-front", {{"aadpodidbinding", "azure-vote"}});
    add_pod("exc", "default", "node-agent", {{"app", "node-agent"}});
    start_agent();

    auto vote = pn_->curl("vote", kVault);
    EXPECT_EQ(vote.status, 200) << vote.body;
    EXPECT_EQ(client_id(vote), kVoteId);
    EXPECT_EQ(jwt_claims(vote.json().value("access_token", "")).value("aud", ""), "https://vault.azure.net");

    auto plain = pn_->curl("plain", kVault);
    EXPECT_EQ(plain.status, 400);
    EXPECT_EQ(plain.json().value("error_description", ""), "Identity not found");

    auto elsewhere = pn_->curl("elsewhere", kVault);
    EXPECT_EQ(elsewhere.status, 400) << "a binding in another namespace must not apply: " << elsewhere.body;

    auto exc = pn_->curl("exc", kVault);
    EXPECT_EQ(exc.status, 200) << exc.body;
    EXPECT_EQ(client_id(exc), kNodeId) << "an exception pod gets the node's identity";

    // The audit line names the pod.
    bool seen = false;
    for (const auto& line : pn_->audit_lines()) {
        if (line["caller"].value("pod", "") == "azure-vote-front" &&
            line["caller"].value("namespace", "") == "default") {
            seen = true;
            EXPECT_EQ(line.value("granted_identity", ""), "client_id=" + kVoteId);
            EXPECT_NE(line.value("binding", "").find("azure-vote-binding"), std::string::npos) << line.dump();
        }
    }
    EXPECT_TRUE(seen);

    // The agent's API-server connections (its watches) carry TCP keepalive: a control-plane node that dies without
    // a FIN is noticed in under a minute, not when a watch's idle limit ends.
    auto ss = pn_->node().run({"ss", "-tnopH", "state", "established"}, pn_->node().node_netns(), "");
    ASSERT_EQ(ss.exit_code, 0) << ss.err;
    int watches_with_keepalive = 0;
    std::istringstream lines(ss.out);
    for (std::string line; std::getline(lines, line);)
        if (line.find("podid-agent") != std::string::npos && line.find("timer:(keepalive") != std::string::npos)
            ++watches_with_keepalive;
    EXPECT_GE(watches_with_keepalive, 1) << ss.out;
}

TEST_P(KubeModeTest, ServicePrincipalIdentityIsReportedAsUnsupported) {
    create("AzureIdentity", {{"metadata", {{"name", "legacy-sp"}, {"namespace", "default"}}},
                             {"spec",
                              {{"type", 1},
                               {"clientID", "44444444-4444-4444-8444-444444444444"},
                               {"tenantID", "55555555-5555-4555-8555-555555555555"}}}});
    create("AzureIdentityBinding", {{"metadata", {{"name", "legacy-binding"}, {"namespace", "default"}}},
                                    {"spec", {{"azureIdentity", "legacy-sp"}, {"selector", "legacy"}}}});
    add_pod("legacy", "default", "legacy-app", {{"aadpodidbinding", "legacy"}});
    start_agent();
    auto r = pn_->curl("legacy", kVault);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json().value("error_description", ""), "Identity not found");
    auto lines = pn_->audit_lines(1);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].value("reason", ""), "deny_unsupported_identity");
    EXPECT_NE(lines[0].value("binding", "").find("legacy-sp"), std::string::npos) << lines[0].dump();
    EXPECT_NE(pn_->agent_log().find("cannot serve"), std::string::npos);
}

TEST_P(KubeModeTest, HostNetworkPodIsIdentifiedByCgroup) {
    add_pod("hostnet", "default", "host-agent", {{"aadpodidbinding", "azure-vote"}}, /*host_network=*/true);
    add_pod("hostnet-plain", "default", "host-other", {{"app", "x"}}, /*host_network=*/true);
    start_agent();
    auto bound = pn_->curl("hostnet", kVault);
    EXPECT_EQ(bound.status, 200) << bound.body;
    EXPECT_EQ(client_id(bound), kVoteId);
    // Same node IP, same netns: only the cgroup tells them apart.
    EXPECT_EQ(pn_->curl("hostnet-plain", kVault).status, 400);
}

TEST_P(KubeModeTest, HostTokenOnlyForAuthorisedCallers) {
    add_pod("vote", "default", "azure-vote-front", {{"aadpodidbinding", "azure-vote"}});
    add_pod("csi", "kube-system", "csi-secrets-store-provider-azure-x", {{"app", "csi"}}, /*host_network=*/true);
    add_pod("intruder", "default", "curious", {{"app", "curious"}}, /*host_network=*/true);
    start_agent();
    const std::vector<std::string> headers = {"podns: default", "podname: azure-vote-front"};
    auto ask = [&](const std::string& pod) {
        const Pod& p = pn_->node().pod(pod);
        std::vector<std::string> argv = {"curl", "-sS", "-m", "20", "-w", "\n%{http_code}"};
        for (const auto& h : headers) {
            argv.push_back("-H");
            argv.push_back(h);
        }
        argv.push_back("http://127.0.0.1:2579/host/token/?resource=https://vault.azure.net");
        RunResult r = pn_->node().run(argv, p.netns, p.cgroup_dir);
        auto nl = r.out.rfind('\n');
        return std::pair{nl == std::string::npos ? 0 : std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
    };
    auto [status, body] = ask("csi");
    ASSERT_EQ(status, 200) << body;
    json j = json::parse(body);
    EXPECT_EQ(j.value("clientid", ""), kVoteId);
    EXPECT_FALSE(j["token"].value("access_token", "").empty());
    auto [denied, denied_body] = ask("intruder");
    EXPECT_EQ(denied, 403) << denied_body;
    bool audited = false;
    for (const auto& line : pn_->audit_lines())
        if (line.value("kind", "") == "host_token" && line.value("target_pod", "") == "default/azure-vote-front" &&
            line["caller"].value("pod", "") == "curious")
            audited = line.value("reason", "") == "deny_host_token_caller";
    EXPECT_TRUE(audited);
}

TEST_P(KubeModeTest, PodCreatedAfterStartWaitsForTheWatchAndDeletedPodLosesItsIdentity) {
    start_agent();
    Pod& late = pn_->add_pod({.name = "late", .driver = GetParam()});
    // The request is sent before the API object exists: it waits for the watch's ADDED event.
    std::thread creator([&] {
        std::this_thread::sleep_for(700ms);
        ASSERT_TRUE(
            api_->create("Pod", pod_object(late, "default", "late-pod", {{"aadpodidbinding", "azure-vote"}})).ok());
    });
    auto r = pn_->curl("late", kVault);
    creator.join();
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(client_id(r), kVoteId);

    ASSERT_TRUE(api_->remove("Pod", "default", "late-pod").ok());
    int status = 200;
    for (int i = 0; i < 50 && status == 200; ++i) {
        std::this_thread::sleep_for(100ms);
        status = pn_->curl("late", kVault, true).status;
    }
    EXPECT_EQ(status, 400) << "a deleted pod kept its identity";
}

TEST_P(KubeModeTest, RecoversFromWatchDropsGoneAndApiServerOutage) {
    add_pod("vote", "default", "azure-vote-front", {{"aadpodidbinding", "azure-vote"}});
    start_agent();
    ASSERT_EQ(pn_->curl("vote", kVault).status, 200);
    auto eventually_bound = [&](const std::string& pod) {
        for (int i = 0; i < 100; ++i) {
            if (pn_->curl(pod, kVault).status == 200)
                return true;
            std::this_thread::sleep_for(100ms);
        }
        return false;
    };

    api_->drop_watches();
    add_pod("after-drop", "default", "p1", {{"aadpodidbinding", "azure-vote"}});
    EXPECT_TRUE(eventually_bound("after-drop")) << "watch drop";

    api_->compact();
    api_->drop_watches();
    add_pod("after-gone", "default", "p2", {{"aadpodidbinding", "azure-vote"}});
    EXPECT_TRUE(eventually_bound("after-gone")) << "410 Gone";

    api_->stop();
    // Known pods keep working while the API server is away.
    EXPECT_EQ(pn_->curl("vote", kVault).status, 200);
    ASSERT_TRUE(api_->start().ok());
    add_pod("after-outage", "default", "p3", {{"aadpodidbinding", "azure-vote"}});
    EXPECT_TRUE(eventually_bound("after-outage")) << "API server down and back";
    EXPECT_TRUE(pn_->agent_running());
}

// The API server vanishes without a word (no FIN: its node died, or a middlebox keeps the dead flows open) and a pod
// is created meanwhile. The agent's watches look healthy and keepalive probes are answered, so nothing tells
// the agent the pod exists but the pod itself asking for a token: the agent then reconnects the pod watch. While the
// API server is unreachable the agent says so in its log; once it is back, the pod is served within seconds.
TEST_P(KubeModeTest, PodCreatedDuringSilentOutageIsServedSoonAfterRecovery) {
    using Clock = std::chrono::steady_clock;
    add_pod("vote", "default", "azure-vote-front", {{"aadpodidbinding", "azure-vote"}});
    start_agent();
    ASSERT_EQ(pn_->curl("vote", kVault).status, 200);
    auto log_has = [&](const std::string& text, std::chrono::milliseconds within) {
        const auto until = Clock::now() + within;
        while (pn_->agent_log().find(text) == std::string::npos) {
            if (Clock::now() >= until)
                return false;
            std::this_thread::sleep_for(100ms);
        }
        return true;
    };

    api_->stop_silently();
    add_pod("during", "default", "p-during", {{"aadpodidbinding", "azure-vote"}});
    EXPECT_EQ(pn_->curl("vote", kVault).status, 200) << "a known pod during the outage";
    EXPECT_NE(pn_->curl("during", kVault).status, 200) << "a pod the API server could not have told the agent about";
    EXPECT_TRUE(log_has("kube: pods informer reconnecting its watch", 2s));
    EXPECT_TRUE(log_has("kube: pods informer cannot reach the API server, retrying", 5s))
        << "no log line says the API server is unreachable";

    ASSERT_TRUE(api_->start().ok());
    const auto served = pn_->curl_until_ok("during", kVault, 60s);
    RecordProperty("served_after_recovery_s", std::to_string(served.seconds));
    EXPECT_EQ(served.status, 200) << "the pod created during the outage was never served";
    EXPECT_LE(served.seconds, 10.0) << "the pod created during the outage was served " << served.seconds
                                    << " s after recovery";
    EXPECT_TRUE(log_has("kube: pods informer recovered", 2s));
    EXPECT_EQ(pn_->curl("vote", kVault).status, 200);
    api_->release_silenced();
}

INSTANTIATE_TEST_SUITE_P(Drivers, KubeModeTest, ::testing::Values("systemd", "cgroupfs"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace podid::test
