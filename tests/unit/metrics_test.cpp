// Metrics: request, denial, upstream and provider series; the scrape is checked with promtool (BPF collector
// included) and read back through a real Prometheus server (loopback only). The BPF collector, readiness and the
// admin HTTP endpoint have their own files.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics_fixtures.h"
#include "observe/bpf_collector.h"
#include "observe/metrics.h"

namespace podid {
namespace {

using namespace podid::test;
namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

TEST(CodeClass, Table) {
    struct Row {
        unsigned status;
        const char* want;
    } rows[] = {{200, "2xx"}, {204, "2xx"}, {400, "4xx"}, {404, "4xx"},  {429, "4xx"},
                {500, "5xx"}, {503, "5xx"}, {0, "other"}, {99, "other"}, {600, "other"}};
    for (const auto& r : rows)
        EXPECT_EQ(code_class(r.status), r.want) << r.status;
}

TEST(Metrics, TokenRequestsPerPodIdentityAndCode) {
    Metrics m("1.2.3");
    m.on_request(token_record("team-a", "web-1", 200, Reason::ok_bound_identity));
    m.on_request(token_record("team-a", "web-1", 200, Reason::ok_bound_identity));
    m.on_request(token_record("team-a", "web-1", 403, Reason::deny_identity_not_bound));
    m.on_request(token_record("", "", 404, Reason::deny_no_binding));  // not a known pod
    AuditRecord probe;
    probe.kind = RequestKind::probe;
    probe.status = 200;
    probe.reason = Reason::ok_probe;
    m.on_request(probe);  // not a token request: histogram only

    auto s = m.scrape();
    EXPECT_EQ(
        sample(s, R"(podid_token_requests_total{code="200",identity="client_id=aaaa",namespace="team-a",pod="web-1"})"),
        2);
    EXPECT_EQ(sample(s, R"(podid_token_requests_total{code="403",identity="",namespace="team-a",pod="web-1"})"), 1);
    EXPECT_EQ(sample(s, R"(podid_token_requests_total{code="404",identity="",namespace="",pod="_node"})"), 1);
    EXPECT_EQ(lines_containing(s, "podid_token_requests_total{"), 3u);
    EXPECT_EQ(sample(s, R"(podid_denials_total{reason="deny_identity_not_bound"})"), 1);
    EXPECT_EQ(sample(s, R"(podid_denials_total{reason="deny_no_binding"})"), 1);
    EXPECT_EQ(sample(s, R"(podid_request_duration_seconds_count{code_class="2xx",kind="token"})"), 2);
    EXPECT_EQ(sample(s, R"(podid_request_duration_seconds_count{code_class="4xx",kind="token"})"), 2);
    EXPECT_EQ(sample(s, R"(podid_request_duration_seconds_count{code_class="2xx",kind="probe"})"), 1);
    // 2.5 ms lands in the 0.0025 bucket (le is inclusive), not in 0.001.
    EXPECT_EQ(sample(s, R"(podid_request_duration_seconds_bucket{code_class="2xx",kind="token",le="0.001"})"), 0);
    EXPECT_EQ(sample(s, R"(podid_request_duration_seconds_bucket{code_class="2xx",kind="token",le="0.0025"})"), 2);
    EXPECT_EQ(sample(s, R"(podid_build_info{version="1.2.3"})"), 1);
}

// Standalone mode: callers are no pods; each is counted under the bindings file entry that matched it.
TEST(Metrics, StandaloneCallersAreLabelledByTheirBindingsEntry) {
    Metrics m("1.2.3");
    AuditRecord web = token_record("", "", 200, Reason::ok_bound_identity);
    web.binding_name = "web";
    m.on_request(web);
    m.on_request(web);
    AuditRecord batch = token_record("", "", 200, Reason::ok_bound_identity);
    batch.binding_name = "entry-2";
    m.on_request(batch);
    m.on_request(token_record("", "", 404, Reason::deny_no_binding));  // matched no entry
    std::string s = m.scrape();
    EXPECT_EQ(
        sample(s, R"(podid_token_requests_total{code="200",identity="client_id=aaaa",namespace="",pod="binding:web"})"),
        2);
    EXPECT_EQ(
        sample(
            s,
            R"(podid_token_requests_total{code="200",identity="client_id=aaaa",namespace="",pod="binding:entry-2"})"),
        1);
    EXPECT_EQ(sample(s, R"(podid_token_requests_total{code="404",identity="",namespace="",pod="_node"})"), 1);
}

TEST(Metrics, DurationBucketsSpan100MicrosecondsTo10Seconds) {
    const auto& b = request_duration_buckets();
    ASSERT_FALSE(b.empty());
    EXPECT_DOUBLE_EQ(b.front(), 0.0001);
    EXPECT_DOUBLE_EQ(b.back(), 10);
    EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

TEST(Metrics, ForgetPodBoundsCardinalityUnderChurn) {
    Metrics m("t");
    m.on_request(token_record("keep", "stays", 200, Reason::ok_bound_identity));
    for (int i = 0; i < 2000; ++i) {
        std::string pod = "job-" + std::to_string(i);
        m.on_request(token_record("batch", pod, 200, Reason::ok_bound_identity));
        m.on_request(token_record("batch", pod, 500, Reason::error_upstream));
        m.forget_pod("batch", pod);
    }
    EXPECT_EQ(m.pod_series(), 1u);
    auto s = m.scrape();
    EXPECT_EQ(lines_containing(s, "namespace=\"batch\""), 0u);
    EXPECT_EQ(
        sample(s, R"(podid_token_requests_total{code="200",identity="client_id=aaaa",namespace="keep",pod="stays"})"),
        1);
    // A pod recreated under the same name starts from zero.
    m.on_request(token_record("batch", "job-7", 200, Reason::ok_bound_identity));
    EXPECT_EQ(
        sample(m.scrape(),
               R"(podid_token_requests_total{code="200",identity="client_id=aaaa",namespace="batch",pod="job-7"})"),
        1);
}

TEST(Metrics, ConnectionsInFlightAndUpstream) {
    Metrics m("t");
    m.on_connection(+1);
    m.on_connection(+1);
    m.on_connection(-1);
    m.on_request_begin();
    m.on_request_begin();
    m.on_request(token_record("a", "b", 200, Reason::ok_bound_identity));
    // A record without a begin (a server that never calls on_request_begin) never takes the gauge below zero.
    m.on_request(token_record("a", "b", 200, Reason::ok_bound_identity));
    m.on_request(token_record("a", "b", 200, Reason::ok_bound_identity));
    m.on_upstream(200, 0.004);
    m.on_upstream(429, 0.002);
    m.on_upstream(429, 0.003);
    m.on_upstream(0, 5.0);
    auto s = m.scrape();
    EXPECT_EQ(sample(s, "podid_connections_open"), 1);
    EXPECT_EQ(sample(s, "podid_requests_in_flight"), 0);
    EXPECT_EQ(sample(s, R"(podid_upstream_requests_total{code="429"})"), 2);
    EXPECT_EQ(sample(s, R"(podid_upstream_requests_total{code="0"})"), 1);
    EXPECT_EQ(sample(s, "podid_upstream_request_duration_seconds_count"), 4);
    EXPECT_EQ(sample(s, R"(podid_upstream_request_duration_seconds_bucket{le="0.005"})"), 3);
}

TEST(Metrics, AcceptWaitIsAHistogramOfTheQueueTime) {
    Metrics m("t");
    m.on_accept_wait(0.00004);
    m.on_accept_wait(0.002);
    m.on_accept_wait(1.2);  // a retransmitted SYN
    auto s = m.scrape();
    EXPECT_EQ(sample(s, "podid_accept_wait_seconds_count"), 3);
    EXPECT_NEAR(sample(s, "podid_accept_wait_seconds_sum"), 1.20204, 1e-9);
    EXPECT_EQ(sample(s, R"(podid_accept_wait_seconds_bucket{le="5e-05"})"), 1);
    EXPECT_EQ(sample(s, R"(podid_accept_wait_seconds_bucket{le="0.0025"})"), 2);
    EXPECT_EQ(sample(s, R"(podid_accept_wait_seconds_bucket{le="1"})"), 2);
    EXPECT_EQ(sample(s, R"(podid_accept_wait_seconds_bucket{le="5"})"), 3);
}

// Every kind and status class lands in its own series, labelled with the kind's name; a record that never said what
// it was counts as unknown.
TEST(Metrics, DurationSeriesByKindAndCodeClass) {
    struct Row {
        RequestKind kind;
        unsigned status;
        const char* series;  // the _count sample that must read 1
    } rows[] = {
        {RequestKind::token, 200, R"(code_class="2xx",kind="token")"},
        {RequestKind::token, 100, R"(code_class="1xx",kind="token")"},
        {RequestKind::probe, 302, R"(code_class="3xx",kind="probe")"},
        {RequestKind::host_token, 404, R"(code_class="4xx",kind="host_token")"},
        {RequestKind::instance_metadata, 503, R"(code_class="5xx",kind="instance_metadata")"},
        {RequestKind::other_metadata, 599, R"(code_class="5xx",kind="other_metadata")"},
        {RequestKind::health, 0, R"(code_class="other",kind="health")"},
        {RequestKind::unknown, 600, R"(code_class="other",kind="unknown")"},
        {AuditRecord{}.kind, 99, R"(code_class="other",kind="unknown")"},
        {RequestKind::selfcheck, 200, R"(code_class="2xx",kind="selfcheck")"},
    };
    for (const auto& r : rows) {
        Metrics m("t");
        AuditRecord rec;
        rec.kind = r.kind;
        rec.status = r.status;
        rec.reason = Reason::ok_probe;
        rec.latency_ms = 1;
        m.on_request(rec);
        const auto s = m.scrape();
        EXPECT_EQ(sample(s, std::string("podid_request_duration_seconds_count{") + r.series + "}"), 1) << r.series;
        EXPECT_EQ(lines_containing(s, "podid_request_duration_seconds_count{"), 1u) << r.series;
        const bool token = r.kind == RequestKind::token || r.kind == RequestKind::host_token;
        EXPECT_EQ(lines_containing(s, "podid_token_requests_total{"), token ? 1u : 0u) << r.series;
    }
}

// Every reason code: denials count under their name, other outcomes are not denials.
TEST(Metrics, DenialsByEveryReason) {
    Metrics m("t");
    size_t denials = 0;
    for (int v = 0; v <= static_cast<int>(kLastReason); ++v) {
        const auto reason = static_cast<Reason>(v);
        AuditRecord rec;
        rec.kind = RequestKind::probe;
        rec.status = 403;
        rec.reason = reason;
        m.on_request(rec);
        m.on_request(rec);
        denials += is_denial(reason);
    }
    const auto s = m.scrape();
    for (int v = 0; v <= static_cast<int>(kLastReason); ++v) {
        const auto reason = static_cast<Reason>(v);
        const std::string series = std::string(R"(podid_denials_total{reason=")") + to_string(reason) + "\"}";
        EXPECT_EQ(sample(s, series), is_denial(reason) ? 2 : -1) << series;
    }
    EXPECT_EQ(lines_containing(s, "podid_denials_total{"), denials);
}

// The per-pod index keeps series apart that share parts of their labels, and counts each on its own handle.
TEST(Metrics, TokenSeriesKeptApart) {
    Metrics m("t");
    struct Row {
        const char* ns;
        const char* pod;
        const char* identity;
        unsigned status;
        int times;
    } rows[] = {
        {"ab", "c", "client_id=1", 200, 3},      // the names concatenate as the next row's do
        {"a", "bc", "client_id=1", 200, 5},      //
        {"a", "bc", "client_id=2", 200, 7},      // another identity
        {"a", "bc", "client_id=1", 500, 11},     // another status
        {"a", "bc", "client_id=1", 429, 13},     //
        {"", "", "client_id=1", 200, 17},        // not a known pod: namespace="" pod="_node"
        {"a", "_node", "client_id=1", 200, 19},  // a pod that happens to be named _node
    };
    for (const auto& r : rows)
        for (int i = 0; i < r.times; ++i)
            m.on_request(token_record(r.ns, r.pod, r.status, Reason::ok_bound_identity, r.identity));
    // /host/token requests are token requests too.
    AuditRecord host = token_record("a", "bc", 200, Reason::ok_bound_identity, "client_id=1");
    host.kind = RequestKind::host_token;
    m.on_request(host);
    const auto s = m.scrape();
    for (const auto& r : rows) {
        const std::string series = std::string("podid_token_requests_total{code=\"") + std::to_string(r.status) +
                                   "\",identity=\"" + r.identity + "\",namespace=\"" + r.ns + "\",pod=\"" +
                                   (*r.pod ? r.pod : kNodePodLabel) + "\"}";
        const bool with_host = std::string(r.ns) == "a" && std::string(r.pod) == "bc" &&
                               std::string(r.identity) == "client_id=1" && r.status == 200;
        EXPECT_EQ(sample(s, series), r.times + (with_host ? 1 : 0)) << series;
    }
    EXPECT_EQ(lines_containing(s, "podid_token_requests_total{"), std::size(rows));
    EXPECT_EQ(m.pod_series(), std::size(rows));
    m.forget_pod("a", "bc");
    EXPECT_EQ(m.pod_series(), 3u);
    EXPECT_EQ(lines_containing(m.scrape(), "namespace=\"a\",pod=\"bc\""), 0u);
    EXPECT_EQ(
        sample(m.scrape(), R"(podid_token_requests_total{code="200",identity="client_id=1",namespace="ab",pod="c"})"),
        3);
}

// forget_pod() comes from the Kubernetes watch thread while I/O threads count and Prometheus scrapes: no counter is
// used after it is removed (ASan/TSan builds catch that), and once the churn stops the index and the scrape agree.
TEST(Metrics, ForgetPodRacesRequestsAndScrapes) {
    Metrics m("t");
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; !stop.load(); ++i)
                m.on_request(token_record("churn", "pod-" + std::to_string((i + t) % 8), 200 + (i % 2) * 300,
                                          Reason::ok_bound_identity));
        });
    threads.emplace_back([&] {
        for (int i = 0; !stop.load(); ++i)
            m.forget_pod("churn", "pod-" + std::to_string(i % 8));
    });
    threads.emplace_back([&] {
        while (!stop.load())
            m.scrape();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
    for (auto& th : threads)
        th.join();
    EXPECT_EQ(lines_containing(m.scrape(), "podid_token_requests_total{"), m.pod_series());
    for (int i = 0; i < 8; ++i)
        m.forget_pod("churn", "pod-" + std::to_string(i));
    EXPECT_EQ(m.pod_series(), 0u);
    EXPECT_EQ(lines_containing(m.scrape(), "podid_token_requests_total{"), 0u);
    // A pod that comes back starts from zero.
    m.on_request(token_record("churn", "pod-1", 200, Reason::ok_bound_identity));
    EXPECT_EQ(
        sample(m.scrape(),
               R"(podid_token_requests_total{code="200",identity="client_id=aaaa",namespace="churn",pod="pod-1"})"),
        1);
}

TEST(Metrics, ScrapeTimeProvidersAndTheirAbsence) {
    Metrics bare("t");
    auto none = bare.scrape();
    for (const char* name : {"podid_token_cache_hits_total", "podid_pods_tracked", "podid_kube_watch_events_total",
                             "podid_bpf_programs_attached", "podid_ready", "podid_denials_total"})
        EXPECT_EQ(none.find(name), std::string::npos) << name;

    MetricsProviders p;
    TokenCacheStats stats;
    stats.hits = 40;
    stats.misses = 3;
    stats.shared = 2;
    stats.refreshes_ok = 5;
    stats.refreshes_failed = 1;
    stats.entries = 4;
    p.token_cache = [&] { return stats; };
    p.pods_tracked = [] { return size_t{17}; };
    p.cgroups_tracked = [] { return size_t{31}; };
    p.kube_watches = [] {
        return std::map<std::string, WatchCounters>{{"pods", {2, 150, 4}}, {"azureidentities", {0, 3}}};
    };
    p.bpf_programs_attached = [] { return size_t{6}; };
    bool ready = false;
    p.ready = [&] { return ready; };
    Metrics m("t", p);
    auto s = m.scrape();
    EXPECT_EQ(sample(s, "podid_token_cache_hits_total"), 40);
    EXPECT_EQ(sample(s, "podid_token_cache_misses_total"), 3);
    EXPECT_EQ(sample(s, "podid_token_cache_shared_total"), 2);
    EXPECT_EQ(sample(s, "podid_token_cache_entries"), 4);
    EXPECT_EQ(sample(s, R"(podid_token_refreshes_total{result="ok"})"), 5);
    EXPECT_EQ(sample(s, R"(podid_token_refreshes_total{result="failed"})"), 1);
    EXPECT_EQ(sample(s, "podid_pods_tracked"), 17);
    EXPECT_EQ(sample(s, "podid_cgroups_tracked"), 31);
    EXPECT_EQ(sample(s, R"(podid_kube_watch_restarts_total{resource="pods"})"), 2);
    EXPECT_EQ(sample(s, R"(podid_kube_watch_events_total{resource="azureidentities"})"), 3);
    EXPECT_EQ(sample(s, R"(podid_kube_watch_nudges_total{resource="pods"})"), 4);
    EXPECT_EQ(sample(s, R"(podid_kube_watch_nudges_total{resource="azureidentities"})"), 0);
    EXPECT_EQ(sample(s, "podid_bpf_programs_attached"), 6);
    EXPECT_EQ(sample(s, "podid_ready"), 0);
    ready = true;
    stats.hits = 41;
    s = m.scrape();
    EXPECT_EQ(sample(s, "podid_ready"), 1);
    EXPECT_EQ(sample(s, "podid_token_cache_hits_total"), 41);
}

// --- promtool and a real Prometheus ----------------------------------------------------------------------

struct CommandResult {
    int status = -1;
    std::string output;
};

CommandResult run(const std::string& command) {
    CommandResult r;
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (!p)
        return r;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;)
        r.output.append(buf, n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

bool have(const char* tool) { return run(std::string("command -v ") + tool).status == 0; }

// Every family populated, as on a busy node.
std::string full_scrape(Metrics& m) {
    m.on_connection(+1);
    m.on_request_begin();
    m.on_request(token_record("team-a", "web-1", 200, Reason::ok_bound_identity));
    m.on_request(token_record("team-a", "web-1", 403, Reason::deny_identity_not_bound));
    m.on_upstream(200, 0.01);
    m.on_upstream(429, 0.01);
    return m.scrape();
}

MetricsProviders all_providers() {
    MetricsProviders p;
    p.token_cache = [] {
        TokenCacheStats s;
        s.hits = 1;
        return s;
    };
    p.pods_tracked = [] { return size_t{1}; };
    p.cgroups_tracked = [] { return size_t{1}; };
    p.kube_watches = [] { return std::map<std::string, WatchCounters>{{"pods", {1, 1}}}; };
    p.bpf_programs_attached = [] { return size_t{1}; };
    p.ready = [] { return true; };
    p.guard = [] { return GuardMetrics{2, 0, 3}; };
    return p;
}

TEST(Promtool, ScrapePassesCheckMetrics) {
    ASSERT_TRUE(have("promtool")) << "promtool missing: install the Debian package prometheus (tools/install-deps.sh)";
    Metrics m("0.1.0", all_providers());
    FakeNode node;
    node.pods[kUidA] = PodInfo{"team-a", "web-1", kUidA, "sa", "n", false, {}};
    node.paths = {{10, container(kUidA, 'a')}};
    node.count(10, PODID_CTR_REDIRECT4, 1);
    node.count(10, PODID_CTR_DROP_ICMP, 1);
    BpfCollector bpf(node.sources());
    m.add_collectable(&bpf);
    auto text = full_scrape(m);
    auto file = fs::temp_directory_path() / ("podid-scrape-" + std::to_string(getpid()) + ".txt");
    std::ofstream(file) << text;
    auto r = run("promtool check metrics < " + file.string());
    fs::remove(file);
    EXPECT_EQ(r.status, 0) << r.output << "\n--- scrape:\n" << text;
    EXPECT_EQ(r.output, "") << "promtool lint findings";
}

fs::path monitoring_dir() { return fs::path(PODID_SOURCE_DIR) / "deploy" / "monitoring"; }

TEST(Promtool, AlertRulesPassCheckRules) {
    ASSERT_TRUE(have("promtool")) << "promtool missing: install the Debian package prometheus (tools/install-deps.sh)";
    auto r = run("promtool check rules " + (monitoring_dir() / "podid-alerts.yaml").string());
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("SUCCESS"), std::string::npos) << r.output;
}

// The dashboard and the alerts must not query metrics the agent does not export (a renamed metric would leave
// an empty panel or an alert that never fires).
TEST(Monitoring, DashboardAndAlertsUseExportedMetrics) {
    Metrics m("0.1.0", all_providers());
    FakeNode node;
    node.paths = {{10, "/system.slice/x.service"}};
    node.count(10, PODID_CTR_REDIRECT4, 1);
    node.count(10, PODID_CTR_DROP_UDP, 1);
    BpfCollector bpf(node.sources());
    m.add_collectable(&bpf);
    const auto text = full_scrape(m);
    for (const char* file : {"podid-dashboard.json", "podid-alerts.yaml"}) {
        std::ifstream in(monitoring_dir() / file);
        ASSERT_TRUE(in) << file;
        std::string content((std::istreambuf_iterator<char>(in)), {});
        if (std::string(file).ends_with(".json")) {
            EXPECT_TRUE(nlohmann::json::accept(content)) << file << " is not valid JSON";
        }
        std::regex name_re("podid_[a-z_]+");
        size_t found = 0;
        for (auto it = std::sregex_iterator(content.begin(), content.end(), name_re); it != std::sregex_iterator();
             ++it, ++found) {
            std::string name = it->str();
            EXPECT_NE(text.find("\n" + name), std::string::npos) << file << " uses " << name;
        }
        EXPECT_GT(found, 3u) << file;
    }
}

uint16_t free_loopback_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// A Prometheus server child process with its own config and storage; killed and removed at scope exit.
class PrometheusServer {
public:
    PrometheusServer(const tcp::endpoint& target) {
        dir_ = fs::temp_directory_path() / ("podid-prometheus-" + std::to_string(getpid()));
        fs::create_directories(dir_ / "data");
        std::ofstream(dir_ / "prometheus.yml") << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                                  "scrape_configs:\n  - job_name: podid\n    static_configs:\n"
                                                  "      - targets: ['127.0.0.1:"
                                               << target.port() << "']\n";
        port_ = free_loopback_port();
        std::string config = "--config.file=" + (dir_ / "prometheus.yml").string();
        std::string storage = "--storage.tsdb.path=" + (dir_ / "data").string();
        std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
        std::string log = (dir_ / "prometheus.log").string();
        pid_ = fork();
        if (pid_ == 0) {
            int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            execlp("prometheus", "prometheus", config.c_str(), storage.c_str(), listen.c_str(), "--log.level=warn",
                   static_cast<char*>(nullptr));
            _exit(127);
        }
    }
    ~PrometheusServer() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            int st = 0;
            for (int i = 0; i < 100 && waitpid(pid_, &st, WNOHANG) == 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            if (waitpid(pid_, &st, WNOHANG) == 0) {
                kill(pid_, SIGKILL);
                waitpid(pid_, &st, 0);
            }
        }
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    tcp::endpoint endpoint() const { return {asio::ip::make_address("127.0.0.1"), port_}; }
    std::string log() const {
        std::ifstream in(dir_ / "prometheus.log");
        return std::string((std::istreambuf_iterator<char>(in)), {});
    }

private:
    fs::path dir_;
    uint16_t port_ = 0;
    pid_t pid_ = -1;
};

std::string url_encode(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '_' || c == '-' || c == '.')
            out += static_cast<char>(c);
        else {
            char buf[4];
            std::snprintf(buf, sizeof(buf), "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

TEST(Prometheus, ScrapesTheAdminServerAndAnswersAPerPodQuery) {
    ASSERT_TRUE(have("prometheus")) << "prometheus missing: install the Debian package prometheus";
    RunningAdmin admin;
    admin.ready = true;
    for (int i = 0; i < 3; ++i)
        admin.metrics.on_request(token_record("team-a", "web-1", 200, Reason::ok_bound_identity));
    PrometheusServer prom(admin.ep);

    const std::string query =
        "/api/v1/query?query=" + url_encode(R"(podid_token_requests_total{namespace="team-a",pod="web-1",code="200"})");
    nlohmann::json answer;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        try {
            auto r = http_get(prom.endpoint(), query);
            if (r.status == 200) {
                answer = nlohmann::json::parse(r.body);
                if (!answer["data"]["result"].empty())
                    break;
            }
        } catch (const std::exception&) {
            // not listening yet
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    ASSERT_FALSE(answer.is_null()) << "Prometheus never answered; its log:\n" << prom.log();
    ASSERT_EQ(answer["status"], "success") << answer.dump();
    ASSERT_EQ(answer["data"]["result"].size(), 1u) << answer.dump() << "\n" << prom.log();
    const auto& series = answer["data"]["result"][0];
    EXPECT_EQ(series["metric"]["identity"], "client_id=aaaa");
    EXPECT_EQ(series["metric"]["job"], "podid");
    EXPECT_EQ(series["value"][1], "3");
}

}  // namespace
}  // namespace podid
