// Observability of the real agent in Kubernetes mode on the test node: a real Prometheus server (in the node's
// network namespace) scrapes the agent and answers per-pod queries through its HTTP API; `promtool check metrics`
// accepts the agent's own scrape; a deleted pod's series disappear; /readyz follows the API server at start.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/url.h"
#include "support/kube_apiserver.h"
#include "support/kube_node.h"
#include "support/node_fixture.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kVoteId = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
const std::string kNodeName = "aks-nodepool1-0";
const std::string kToken =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

class ObservabilityE2E : public NodeFixture {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        PodidNodeOptions o;
        o.vm_identities = {kVoteId};
        build_podid_node(o);
        const std::string kubeconfig = serve_api();
        create("AzureIdentity", {{"metadata", {{"name", "azure-vote"}, {"namespace", "default"}}},
                                 {"spec", {{"type", 0}, {"clientID", kVoteId}}}});
        create("AzureIdentityBinding", {{"metadata", {{"name", "azure-vote-binding"}, {"namespace", "default"}}},
                                        {"spec", {{"azureIdentity", "azure-vote"}, {"selector", "azure-vote"}}}});
        pn_->set_agent_args(
            {"--kubeconfig", kubeconfig, "--node-name", kNodeName, "--metrics-addr", pn_->node().node_ip() + ":9090"});
    }

    void TearDown() override {
        if (prometheus_.pid() > 0) {
            prometheus_.signal(SIGTERM);
            prometheus_.wait(5s);
        }
        NodeFixture::TearDown();
    }

    Pod& add_pod(const std::string& test_name, const std::string& name, json labels) {
        Pod& p = pn_->add_pod({.name = test_name});
        create("Pod", kube_pod_object(p, "default", name, std::move(labels), kNodeName));
        return p;
    }

    // An HTTP GET from the node's network namespace (where the agent's metrics port and Prometheus live).
    RunResult node_get(const std::string& url) {
        return pn_->node().run_in_node({"curl", "-s", "-w", "\n%{http_code}", "--max-time", "5", url});
    }
    std::string metrics() {
        RunResult r = node_get("http://" + pn_->node().node_ip() + ":9090/metrics");
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.out;
    }

    Process prometheus_;
};

TEST_F(ObservabilityE2E, PrometheusReadsPerPodSeriesAndDeletedPodsDisappear) {
    add_pod("vote", "azure-vote-front", {{"aadpodidbinding", "azure-vote"}});
    add_pod("plain", "redis", {{"app", "redis"}});
    pn_->start_emulator();
    pn_->start_agent();
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(pn_->curl("vote", kToken).status, 200);
    ASSERT_EQ(pn_->curl("plain", kToken).status, 400);

    // Each of those connections was accepted after the time the kernel recorded at its connect(): the accept wait.
    {
        const std::string scrape = metrics();
        auto value = [&](const std::string& series) {
            auto at = scrape.find("\n" + series + " ");
            return at == std::string::npos ? -1.0 : std::stod(scrape.substr(at + series.size() + 2));
        };
        const double count = value("podid_accept_wait_seconds_count");
        const double sum = value("podid_accept_wait_seconds_sum");
        EXPECT_GE(count, 4) << "one per redirected connection (the self-check's too)";
        EXPECT_GT(sum, 0);
        EXPECT_LT(sum / count, 1.0) << "a mean of a second or more means retransmitted SYNs";
    }

    // The agent's own scrape passes promtool's lint.
    const std::string scrape_url = "http://" + pn_->node().node_ip() + ":9090/metrics";
    RunResult lint = pn_->node().run_in_node({"sh", "-c", "curl -sf " + scrape_url + " | promtool check metrics"});
    EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
    EXPECT_EQ(lint.out + lint.err, "") << "promtool reports nothing on a clean scrape";

    // A real Prometheus in the node netns scrapes the agent every second.
    const std::string dir = pn_->node().workdir() + "/prometheus";
    std::filesystem::create_directories(dir + "/data");
    std::ofstream(dir + "/prometheus.yml") << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                              "scrape_configs:\n  - job_name: podid\n    static_configs:\n"
                                              "      - targets: ['"
                                           << pn_->node().node_ip() << ":9090']\n";
    prometheus_ = pn_->node().spawn_in_node({"prometheus", "--config.file=" + dir + "/prometheus.yml",
                                             "--storage.tsdb.path=" + dir + "/data",
                                             "--web.listen-address=127.0.0.1:9091", "--log.level=warn"});
    auto query = [&](const std::string& promql) -> json {
        RunResult r = node_get("http://127.0.0.1:9091/api/v1/query?query=" + percent_encode(promql));
        auto nl = r.out.rfind('\n');
        if (r.exit_code != 0 || nl == std::string::npos || r.out.substr(nl + 1) != "200")
            return json();
        return json::parse(r.out.substr(0, nl), nullptr, false);
    };
    const std::string requests = R"(podid_token_requests_total{namespace="default",pod="azure-vote-front",code="200"})";
    const std::string redirected =
        R"(sum(podid_redirected_connections_total{namespace="default",pod="azure-vote-front"}))";
    json answer;
    for (int i = 0; i < 240; ++i) {  // Prometheus starts, then scrapes every second
        answer = query(requests);
        if (answer.is_object() && !answer["data"]["result"].empty())
            break;
        std::this_thread::sleep_for(250ms);
    }
    ASSERT_TRUE(answer.is_object() && !answer["data"]["result"].empty())
        << "Prometheus never had the series: " << answer.dump() << "\n"
        << prometheus_.read_err();
    EXPECT_EQ(answer["data"]["result"][0]["value"][1], "3") << answer.dump();
    EXPECT_EQ(answer["data"]["result"][0]["metric"]["identity"], "client_id=" + kVoteId) << answer.dump();
    json conns = query(redirected);
    ASSERT_TRUE(conns.is_object() && !conns["data"]["result"].empty()) << conns.dump();
    EXPECT_GE(std::stoi(conns["data"]["result"][0]["value"][1].get<std::string>()), 3) << conns.dump();

    // Health endpoints on the real agent.
    RunResult healthz = node_get("http://" + pn_->node().node_ip() + ":9090/healthz");
    EXPECT_EQ(healthz.out, "ok\n\n200") << healthz.err;

    // The pod is deleted: every series labelled with it leaves the scrape.
    ASSERT_TRUE(metrics().find(R"(pod="azure-vote-front")") != std::string::npos);
    ASSERT_TRUE(api_->remove("Pod", "default", "azure-vote-front").ok());
    std::string after;
    for (int i = 0; i < 100; ++i) {
        after = metrics();
        if (after.find(R"(pod="azure-vote-front")") == std::string::npos)
            break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(after.find(R"(pod="azure-vote-front")"), std::string::npos) << after;
    EXPECT_NE(after.find(R"(pod="redis")"), std::string::npos) << "other pods' series stay";
}

TEST_F(ObservabilityE2E, ReadinessFollowsTheApiServerAtStart) {
    add_pod("vote", "azure-vote-front", {{"aadpodidbinding", "azure-vote"}});
    api_->stop();  // the API server is down when the agent starts
    pn_->start_emulator();
    pn_->start_agent();
    const std::string readyz = "http://" + pn_->node().node_ip() + ":9090/readyz";
    RunResult r;
    for (int i = 0; i < 30; ++i) {  // past the self-check's first pass, the lists are what is missing
        r = node_get(readyz);
        if (r.out.find("bindings") != std::string::npos)
            break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_NE(r.out.find("503"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("not ready: bindings not loaded"), std::string::npos) << r.out;
    RunResult healthz = node_get("http://" + pn_->node().node_ip() + ":9090/healthz");
    EXPECT_EQ(healthz.out, "ok\n\n200") << "alive while not ready";

    ASSERT_TRUE(api_->start().ok());
    for (int i = 0; i < 150; ++i) {  // the informers' backoff retries within a few seconds
        r = node_get(readyz);
        if (r.out == "ok\n\n200")
            break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(r.out, "ok\n\n200") << pn_->agent_log();
    EXPECT_EQ(pn_->curl("vote", kToken).status, 200);
}

}  // namespace
}  // namespace podid::test
