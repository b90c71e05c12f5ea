// The fault suite: what podid promises when things around it fail, checked under load with several
// pods of different identities. Upstream IMDS throttles, fails, resets, hangs or answers slowly; the API server
// goes away; the agent is SIGKILLed and restarted, drained with SIGTERM, or replaced by another build the way a
// DaemonSet rolling update does it. Throughout: every token a pod gets is its own identity's, no pod connection
// reaches the IMDS stand-in, errors are IMDS-shaped and appear only when no valid token exists, and podid's
// calls to IMDS stay bounded whatever the pods' demand.
//
// Pods' load runs this same binary in a helper mode (`--podid-helper load key=value...`, handled before
// GoogleTest starts), placed in the pod's cgroup and network namespace by the test node. Each test records its
// figures (RecordProperty) and a row of the summary table printed on stderr when the suite ends.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/kube_apiserver.h"
#include "support/kube_node.h"
#include "support/node_fixture.h"
#include "support/self_helper.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kPods = 4;  // bound pods p0..p3, each with its own identity; pod "u" is bound to none
const std::string kNodeId = "99999999-9999-4999-8999-999999999999";
const std::string kVault = "https%3A%2F%2Fvault.azure.net";

std::string guid(int i) {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%08x-%04x-4%03x-a%03x-%012x", 0x7a000000 + i, 0xf000 + i, i, i, 0xfa0000 + i);
    return buf;
}

bool same_id(std::string a, std::string b) {
    auto lower = [](std::string& s) { std::transform(s.begin(), s.end(), s.begin(), ::tolower); };
    lower(a);
    lower(b);
    return a == b;
}

// ---------------------------------------------------------------------------------------------------------
// The pod side: token requests over plain sockets, so every failure is seen as what it is (refused, reset,
// closed without an answer, timed out) rather than as a client library's summary.

enum class Outcome { answered, refused, connect_error, reset, closed, timeout };

struct Answer {
    Outcome outcome = Outcome::closed;
    int status = 0;
    std::string body;
    bool close = false;  // the server said Connection: close
};

int dial_metadata(int timeout_s, Outcome& failure) {
    const int fd = test::dial_metadata(timeout_s);
    if (fd < 0)
        failure = errno == ECONNREFUSED ? Outcome::refused : Outcome::connect_error;
    return fd;
}

// One request, one Content-Length-framed answer (how the agent answers) on `fd`.
Answer exchange(int fd, const std::string& request) {
    Answer a;
    size_t off = 0;
    while (off < request.size()) {
        ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            a.outcome = Outcome::reset;
            return a;
        }
        off += static_cast<size_t>(n);
    }
    std::string got;
    char buf[16384];
    for (;;) {
        const size_t head_end = got.find("\r\n\r\n");
        if (head_end != std::string::npos) {
            std::string head = got.substr(0, head_end);
            std::transform(head.begin(), head.end(), head.begin(), ::tolower);
            const size_t cl = head.find("\r\ncontent-length:");
            const size_t length = cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 17, nullptr, 10);
            if (got.size() >= head_end + 4 + length) {
                a.outcome = Outcome::answered;
                a.status = head.rfind("http/1.", 0) == 0 ? std::atoi(head.c_str() + 9) : -1;
                a.body = got.substr(head_end + 4, length);
                a.close = head.find("\r\nconnection: close") != std::string::npos;
                return a;
            }
        }
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n == 0) {
            a.outcome = Outcome::closed;
            return a;
        }
        if (n < 0) {
            a.outcome = errno == EAGAIN || errno == EWOULDBLOCK ? Outcome::timeout : Outcome::reset;
            return a;
        }
        got.append(buf, static_cast<size_t>(n));
    }
}

std::map<std::string, std::string> key_values(const std::vector<std::string>& args) {
    std::map<std::string, std::string> kv;
    for (const auto& a : args) {
        const size_t eq = a.find('=');
        if (eq != std::string::npos)
            kv[a.substr(0, eq)] = a.substr(eq + 1);
    }
    return kv;
}

// load own=ID|- node=ID resource=ENC threads=N interval_ms=N reconnect_pct=N timeout_s=N
//      (until=FILE | for_ms=N | count=N per thread)
// Token requests for `resource` with the pod's default identity, paced, over kept-alive and new connections.
// Prints one line of counters: answers by status, failures by kind, tokens that are not the pod's own (any
// 200 for an unbound pod, `node_identity` when it is the node's), error answers that are not IMDS-shaped.
int helper_load(const std::vector<std::string>& args) {
    auto kv = key_values(args);
    const std::string own = kv["own"], node = kv["node"], until = kv["until"];
    const std::string request =
        "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + kv["resource"] +
        " HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n\r\n";
    const int threads = std::stoi(kv["threads"]);
    const auto interval = std::chrono::milliseconds(std::stoi(kv["interval_ms"]));
    const int reconnect_pct = std::stoi(kv["reconnect_pct"]);
    const int timeout_s = std::stoi(kv["timeout_s"]);
    const int count = kv.count("count") ? std::stoi(kv["count"]) : -1;
    const auto deadline =
        Clock::now() + std::chrono::milliseconds(kv.count("for_ms") ? std::stoi(kv["for_ms"]) : 60000);

    std::mutex mu;
    std::map<std::string, long> n;  // kind -> count
    std::map<int, long> statuses;
    double max_ms = 0;
    std::string first_wrong;
    auto worker = [&](unsigned seed) {
        std::mt19937 rng(seed);
        int fd = -1;
        std::map<std::string, long> local;
        std::map<int, long> local_statuses;
        double local_max = 0;
        for (int i = 0; count < 0 || i < count; ++i) {
            if (Clock::now() >= deadline || (!until.empty() && ::access(until.c_str(), F_OK) == 0))
                break;
            if (fd >= 0 && static_cast<int>(rng() % 100) < reconnect_pct) {
                ::close(fd);
                fd = -1;
            }
            const auto t0 = Clock::now();
            Answer a;
            if (fd < 0)
                fd = dial_metadata(timeout_s, a.outcome);
            if (fd >= 0)
                a = exchange(fd, request);
            const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
            ++local["requests"];
            switch (a.outcome) {
            case Outcome::refused: ++local["refused"]; break;
            case Outcome::connect_error: ++local["connect_error"]; break;
            case Outcome::reset: ++local["reset"]; break;
            case Outcome::closed: ++local["closed"]; break;
            case Outcome::timeout: ++local["timeout"]; break;
            case Outcome::answered: {
                local_max = std::max(local_max, ms);
                ++local_statuses[a.status];
                json body = json::parse(a.body, nullptr, false);
                if (a.status == 200) {
                    const std::string token = body.is_object() ? body.value("access_token", "") : "";
                    json claims = jwt_claims(token);
                    const std::string appid = claims.is_object() ? claims.value("appid", "") : "";
                    const std::string client = body.is_object() ? body.value("client_id", "") : "";
                    if (own != "-" && same_id(appid, own) && same_id(client, own)) {
                        ++local["ok"];
                    } else {
                        ++local["wrong"];
                        if (same_id(appid, node))
                            ++local["node_identity"];
                        std::lock_guard lock(mu);
                        if (first_wrong.empty())
                            first_wrong = "appid=" + appid + " client_id=" + client + " for " + own;
                    }
                } else if (body.is_object() && body.contains("error") && body["error"].is_string() &&
                           body.contains("error_description") && body["error_description"].is_string()) {
                    ++local["imds_error"];
                    if (a.status == 400 && body.value("error_description", "") == "Identity not found")
                        ++local["not_found"];
                } else {
                    ++local["bad_shape"];
                }
                break;
            }
            }
            if (a.outcome != Outcome::answered || a.close) {
                if (fd >= 0)
                    ::close(fd);
                fd = -1;
            }
            std::this_thread::sleep_for(interval);
        }
        if (fd >= 0)
            ::close(fd);
        std::lock_guard lock(mu);
        for (const auto& [k, v] : local)
            n[k] += v;
        for (const auto& [k, v] : local_statuses)
            statuses[k] += v;
        max_ms = std::max(max_ms, local_max);
    };
    std::vector<std::thread> pool;
    std::random_device rd;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back(worker, rd());
    for (auto& t : pool)
        t.join();
    std::printf("load");
    for (const char* k : {"requests", "ok", "wrong", "node_identity", "imds_error", "not_found", "bad_shape", "refused",
                          "connect_error", "reset", "closed", "timeout"})
        std::printf(" %s=%ld", k, n[k]);
    std::printf(" max_ms=%.1f", max_ms);
    for (const auto& [status, c] : statuses)
        std::printf(" st%d=%ld", status, c);
    std::printf("\n");
    if (!first_wrong.empty())
        std::printf("first_wrong %s\n", first_wrong.c_str());
    return 0;
}

// Runs before main(): a helper invocation never reaches GoogleTest.
const int kHelper = [] {
    std::vector<std::string> args = self_cmdline();
    if (args.size() < 3 || args[1] != "--podid-helper")
        return 0;
    int rc = 2;
    if (args[2] == "load")
        rc = helper_load(std::vector<std::string>(args.begin() + 3, args.end()));
    std::fflush(stdout);
    std::_Exit(rc);
}();

// ---------------------------------------------------------------------------------------------------------
// The test side: what the helpers counted, added up, and the summary table.

struct Figures {
    std::map<std::string, long> n;  // the helper's counters, "st<status>" included
    double max_ms = 0;

    void add(const std::string& out) {
        std::istringstream in(out.substr(0, out.find('\n')));
        std::string word;
        in >> word;
        if (word != "load")
            return;
        while (in >> word) {
            const size_t eq = word.find('=');
            if (eq == std::string::npos)
                continue;
            const std::string key = word.substr(0, eq);
            if (key == "max_ms")
                max_ms = std::max(max_ms, std::atof(word.c_str() + eq + 1));
            else
                n[key] += std::atol(word.c_str() + eq + 1);
        }
    }
    void add(const Figures& other) {
        for (const auto& [k, v] : other.n)
            n[k] += v;
        max_ms = std::max(max_ms, other.max_ms);
    }
    long operator[](const std::string& key) const {
        auto it = n.find(key);
        return it == n.end() ? 0 : it->second;
    }
    // Answers with a status outside `allowed`, as "status:count" words.
    std::string statuses_outside(const std::set<int>& allowed) const {
        std::string out;
        for (const auto& [k, v] : n)
            if (k.rfind("st", 0) == 0 && !allowed.count(std::atoi(k.c_str() + 2)))
                out += k.substr(2) + ":" + std::to_string(v) + " ";
        return out;
    }
    std::string failures() const {
        std::string out;
        for (const char* k : {"refused", "connect_error", "reset", "closed", "timeout"})
            if ((*this)[k])
                out += std::string(k) + "=" + std::to_string((*this)[k]) + " ";
        return out.empty() ? "-" : out;
    }
    std::string errors() const {
        std::string out;
        for (const auto& [k, v] : n)
            if (k.rfind("st", 0) == 0 && k != "st200")
                out += k.substr(2) + "x" + std::to_string(v) + " ";
        return out.empty() ? "-" : out;
    }
};

struct SummaryRow {
    std::string scenario;
    Figures figures;
    long upstream = 0;
};

std::mutex summary_mu;
std::vector<SummaryRow> summary;

class SummaryPrinter : public ::testing::Environment {
public:
    void TearDown() override {
        std::lock_guard lock(summary_mu);
        if (summary.empty())
            return;
        std::fprintf(stderr, "\n[faults] summary (answers by status; failures = no answer, by kind)\n");
        std::fprintf(stderr, "%-34s %8s %7s %5s %9s %-26s %-30s %8s\n", "scenario", "requests", "ok", "wrong",
                     "upstream", "errors (status x n)", "failures", "max ms");
        for (const auto& r : summary)
            std::fprintf(stderr, "%-34s %8ld %7ld %5ld %9ld %-26s %-30s %8.0f\n", r.scenario.c_str(),
                         r.figures["requests"], r.figures["ok"], r.figures["wrong"], r.upstream,
                         r.figures.errors().c_str(), r.figures.failures().c_str(), r.figures.max_ms);
    }
};

const auto* const kSummaryPrinter = ::testing::AddGlobalTestEnvironment(new SummaryPrinter);

void record(const std::string& scenario, const Figures& f, long upstream) {
    {
        std::lock_guard lock(summary_mu);
        summary.push_back({scenario, f, upstream});
    }
    std::string key = scenario;
    std::replace_if(
        key.begin(), key.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
    ::testing::Test::RecordProperty(key + "_requests", std::to_string(f["requests"]));
    ::testing::Test::RecordProperty(key + "_ok", std::to_string(f["ok"]));
    ::testing::Test::RecordProperty(key + "_wrong", std::to_string(f["wrong"]));
    ::testing::Test::RecordProperty(key + "_errors", f.errors());
    ::testing::Test::RecordProperty(key + "_failures", f.failures());
    ::testing::Test::RecordProperty(key + "_upstream", std::to_string(upstream));
    ::testing::Test::RecordProperty(key + "_max_ms", std::to_string(static_cast<long>(f.max_ms)));
}

std::string relative(const TestNode& node, const std::string& abs) { return abs.substr(node.cgroup2_mount().size()); }

// The most upstream attempts one (identity, resource) key can cost in `window` while clients keep asking, by
// the token cache's contract (agent/token/token_cache.h, retry_policy.h): one fetch at a time per key; a fetch
// retries after 0, 2, 6, 14 ... s, never sooner than Retry-After, and gives up when the next attempt would
// start past `deadline`. Each attempt takes `attempt`. After a fetch gives up, IMDS's Retry-After still
// holds: the key's next attempt comes no sooner than that, whoever asks.
long max_attempts_per_key(std::chrono::milliseconds window, std::chrono::milliseconds deadline,
                          std::chrono::milliseconds attempt, int retry_after_s) {
    const std::chrono::milliseconds retry_after(retry_after_s * 1000);
    long attempts = 0;
    std::chrono::milliseconds t{0};
    while (t <= window) {  // one fetch
        const auto start = t;
        for (int retry = 0;; ++retry) {
            ++attempts;
            t += attempt;
            const auto delay =
                std::max(std::chrono::milliseconds(2000 * ((1 << std::min(retry, 10)) - 1)), retry_after);
            if (t + delay - start >= deadline) {
                t += std::max(retry_after, std::chrono::milliseconds(1));  // gave up; the next fetch waits for IMDS
                break;
            }
            t += delay;
            if (t > window)
                return attempts;
        }
    }
    return attempts;
}

class FaultsTest : public NodeFixture {
protected:
    // Pods p0..p3, each bound to its own identity, and pod "u", bound to none. Upstream misses give up after
    // 3 s (production: 20 s) so a fault phase stays short.
    void start(std::vector<std::string> agent_args = {"--upstream-timeout", "3s"}) {
        PodidNodeOptions o;
        for (int i = 0; i < kPods; ++i)
            o.vm_identities.push_back(guid(i));
        o.system_identity = kNodeId;
        o.bindings = json{{"bindings", json::array()}};
        o.agent_args = std::move(agent_args);
        build_podid_node(o);
        static const char* qos[] = {"burstable", "besteffort", "guaranteed"};
        json entries = json::array();
        for (int i = 0; i < kPods; ++i) {
            Pod& p = pn_->add_pod({.name = "p" + std::to_string(i), .qos = qos[i % 3]});
            entries.push_back(
                {{"cgroup", relative(pn_->node(), p.pod_cgroup_dir)}, {"identities", {{{"client_id", guid(i)}}}}});
        }
        pn_->add_pod({.name = "u"});
        pn_->write_bindings(json{{"bindings", entries}});
        pn_->start_emulator();
        pn_->start_agent();
    }

    void TearDown() override {
        if (extra_agent_.pid() > 0 && extra_agent_.running()) {
            extra_agent_.signal(SIGTERM);
            extra_agent_.wait(15s);
        }
        if (extra_agent_.pid() > 0 && HasFailure())
            std::cerr << "second agent log:\n" << extra_agent_.read_err() << "\n";
        NodeFixture::TearDown();
    }

    std::string stop_file() const { return pn_->node().workdir() + "/stop-load"; }

    // The load helper in `pod` (own identity `own`, "-" for none).
    Process spawn_load(const std::string& pod, const std::string& own, std::vector<std::string> args) {
        std::vector<std::string> argv = {self_exe(), "--podid-helper", "load", "own=" + own, "node=" + kNodeId};
        argv.insert(argv.end(), args.begin(), args.end());
        return node().spawn_in_pod(pod, argv);
    }

    // Steady load on the cached vault token from every pod, until stop_file() appears: ~150 requests/s per pod
    // (3 threads, 20 ms apart: under the 200/s per-pod limit), 30% of them on a new connection.
    void start_steady_load() {
        std::filesystem::remove(stop_file());
        for (int i = 0; i < kPods; ++i)
            loads_.push_back(spawn_load("p" + std::to_string(i), guid(i),
                                        {"resource=" + kVault, "threads=3", "interval_ms=20", "reconnect_pct=30",
                                         "timeout_s=10", "until=" + stop_file()}));
        loads_.push_back(spawn_load("u", "-",
                                    {"resource=" + kVault, "threads=1", "interval_ms=20", "reconnect_pct=30",
                                     "timeout_s=10", "until=" + stop_file()}));
    }

    // Stops the steady load and adds up what the pods saw.
    Figures stop_steady_load() {
        std::ofstream(stop_file()) << "stop\n";
        Figures total;
        for (auto& p : loads_) {
            RunResult r = p.wait(30s);
            EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
            EXPECT_EQ(r.out.find("first_wrong"), std::string::npos) << r.out;
            total.add(r.out);
        }
        loads_.clear();
        return total;
    }

    // No connection from a pod ever reached the IMDS stand-in: only the agent's own and the test's.
    void expect_no_pod_reached_imds() {
        for (const auto& peer : pn_->emulator_peers())
            for (const char* pod : {"p0", "p1", "p2", "p3", "u"})
                EXPECT_NE(peer.rfind(node().pod(pod).ip + ":", 0), 0u) << "pod " << pod << " reached IMDS: " << peer;
    }

    // The invariants of every scenario: only own tokens, only IMDS-shaped errors, the unbound pod refused.
    void expect_only_own_tokens(const Figures& f) {
        EXPECT_EQ(f["wrong"], 0) << "a pod got a token that is not its own";
        EXPECT_EQ(f["node_identity"], 0) << "a pod got the node's token";
        EXPECT_EQ(f["bad_shape"], 0) << "an error answer was not IMDS-shaped";
    }

    void expect_each_pod_served() {
        for (int i = 0; i < kPods; ++i) {
            auto r = pn_->curl("p" + std::to_string(i),
                               "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + kVault);
            EXPECT_EQ(r.status, 200) << r.body << r.err;
            EXPECT_TRUE(same_id(r.json().value("client_id", ""), guid(i))) << r.body;
        }
    }

    std::vector<Process> loads_;
    Process extra_agent_;
};

// ---------------------------------------------------------------------------------------------------------
// Upstream faults.

struct UpstreamCase {
    const char* name;
    json fault;
    std::set<int> miss_statuses;        // what a request for a token not in the cache may get
    int retry_after_s;                  // for the bound on upstream calls
    std::chrono::milliseconds attempt;  // how long one upstream attempt takes under this fault
    int calls_per_attempt;              // upstream connections one attempt may cost
    std::chrono::milliseconds phase;    // how long the pods keep asking
};

// Each row: the emulator gets the fault, then every pod keeps asking for its cached vault token (3 threads, new
// and kept-alive connections) while 2 more threads per pod ask for a token of a resource not yet cached (the
// row's own). Cached tokens must be served throughout, fast; misses get IMDS-shaped errors (or a token, for the
// slow rows); podid's upstream calls stay within the retry policy's bound, whatever the number of asking
// clients, and never touch the cached tokens' keys.
TEST_F(FaultsTest, UpstreamFaultsServeCachedTokensAndBoundRetries) {
    start();
    expect_each_pod_served();  // warm the cache: one upstream call per identity
    pn_->emulator_reset();
    // Phases are short: a miss still waiting when its phase ends finishes first (its fetch gives up within the
    // 3 s deadline, the hang's single attempt included).
    const std::vector<UpstreamCase> cases = {
        {"429 storm, Retry-After 1",
         {{"mode", "status"}, {"status", 429}, {"retry_after", 1}},
         {429},
         1,
         0ms,
         1,
         1500ms},
        // Retry-After longer than the upstream deadline: a fetch gives up at once, and clients keep asking.
        {"429 storm, Retry-After 5",
         {{"mode", "status"}, {"status", 429}, {"retry_after", 5}},
         {429},
         5,
         0ms,
         1,
         1500ms},
        {"500", {{"mode", "status"}, {"status", 500}}, {500}, 0, 0ms, 1, 1500ms},
        {"503, Retry-After 2", {{"mode", "status"}, {"status", 503}, {"retry_after", 2}}, {503}, 2, 0ms, 1, 1500ms},
        {"502 HTML page (a proxy)", {{"mode", "html"}, {"status", 502}}, {502}, 0, 0ms, 1, 1500ms},
        // A reset on a kept-alive upstream connection is retried once on a fresh one (agent/token/imds_client.cpp:
        // an idle connection IMDS closed looks the same), so an attempt may cost two calls.
        {"connection reset", {{"mode", "reset"}}, {503}, 0, 0ms, 2, 1500ms},
        {"slow head (1.5 s)", {{"mode", "latency"}, {"latency_ms", 1500}}, {200}, 0, 1500ms, 1, 1500ms},
        {"slow body (2 s)", {{"mode", "slow_body"}, {"latency_ms", 2000}}, {200}, 0, 2000ms, 1, 1500ms},
        // One attempt never outlasts --upstream-timeout (3 s here; the per-attempt default is 5 s), so a miss
        // against a hanging IMDS gets its 504 within the deadline.
        {"hang (no answer)", {{"mode", "hang"}}, {504}, 0, 3000ms, 1, 1000ms},
    };
    const std::chrono::milliseconds deadline = 3s;
    Figures all;
    long all_upstream = 0;
    for (const UpstreamCase& c : cases) {
        SCOPED_TRACE(c.name);
        const std::string resource = "https://fault-" + std::to_string(&c - cases.data()) + ".example";
        const std::string encoded = "https%3A%2F%2Ffault-" + std::to_string(&c - cases.data()) + ".example";
        pn_->emulator_fault(c.fault);
        const std::string for_ms = "for_ms=" + std::to_string(c.phase.count());
        std::vector<Process> cached, misses;
        for (int i = 0; i < kPods; ++i) {
            const std::string pod = "p" + std::to_string(i);
            cached.push_back(spawn_load(
                pod, guid(i),
                {"resource=" + kVault, "threads=3", "interval_ms=20", "reconnect_pct=30", "timeout_s=10", for_ms}));
            misses.push_back(spawn_load(
                pod, guid(i),
                {"resource=" + encoded, "threads=2", "interval_ms=50", "reconnect_pct=50", "timeout_s=10", for_ms}));
        }
        Figures hit, miss;
        for (auto& p : cached)
            hit.add(p.wait(30s).out);
        for (auto& p : misses)
            miss.add(p.wait(30s).out);
        pn_->emulator_fault({{"mode", "none"}});

        // Cached tokens: every request answered with the pod's own token, quickly.
        EXPECT_GT(hit["requests"], 100);
        EXPECT_EQ(hit["ok"], hit["requests"]) << "errors " << hit.errors() << " failures " << hit.failures();
        EXPECT_LT(hit.max_ms, 1000.0) << "a cached token waited on the failing upstream";
        // Misses: only the expected answers, IMDS-shaped, never another identity's token.
        expect_only_own_tokens(hit);
        expect_only_own_tokens(miss);
        EXPECT_GT(miss["requests"], 0);
        EXPECT_EQ(miss.statuses_outside(c.miss_statuses), "") << "failures " << miss.failures();
        EXPECT_EQ(miss.failures(), "-") << "a miss got no answer at all";
        // A miss waits at most the upstream deadline (or a slow row's one successful attempt), plus scheduling slack.
        EXPECT_LT(miss.max_ms, static_cast<double>(std::max(deadline, c.attempt).count() + 1500));

        Figures phase = hit;
        phase.add(miss);
        record("upstream: " + std::string(c.name), phase, 0);
        all.add(phase);
    }
    // Upstream calls, per row's resource (fetches still running when a phase ended count too). Settle first:
    // the last fetches give up within a few seconds.
    std::this_thread::sleep_for(1500ms);
    json stats = pn_->emulator_stats();
    EXPECT_EQ(stats["by_resource"].value("https://vault.azure.net", 0L), 0)
        << "cached tokens were fetched again during the faults";
    for (size_t i = 0; i < cases.size(); ++i) {
        const UpstreamCase& c = cases[i];
        const long calls = stats["by_resource"].value("https://fault-" + std::to_string(i) + ".example", 0L);
        const long bound = kPods * c.calls_per_attempt *
                           max_attempts_per_key(c.phase + deadline, deadline, c.attempt, c.retry_after_s);
        EXPECT_GE(calls, kPods) << c.name << ": each identity's miss went upstream at least once";
        EXPECT_LE(calls, bound) << c.name << ": retry storm upstream";
        std::cerr << "[faults] " << c.name << ": " << calls << " upstream calls for " << kPods << " keys (policy bound "
                  << bound << ")\n";
        summary_mu.lock();
        for (auto& row : summary)
            if (row.scenario == "upstream: " + std::string(c.name))
                row.upstream = calls;
        summary_mu.unlock();
        all_upstream += calls;
    }
    // IMDS's own limit (5 at once) was never exceeded by podid.
    EXPECT_LE(stats.value("max_concurrent", 0), 5);
    ::testing::Test::RecordProperty("upstream_calls_total", std::to_string(all_upstream));
    ::testing::Test::RecordProperty("requests_total", std::to_string(all["requests"]));
    expect_no_pod_reached_imds();
}

// ---------------------------------------------------------------------------------------------------------
// The agent: killed, drained, replaced.

// SIGKILL under load, then a restart: while no agent runs, the pinned programs keep redirecting, so pods' connections
// are refused (fail closed) and never reach IMDS; the new agent takes the pins over and serves every pod its own
// token again.
TEST_F(FaultsTest, SigkillAndRestartUnderLoadFailClosedAndTakeThePinsOver) {
    start();
    expect_each_pod_served();
    pn_->emulator_reset();
    start_steady_load();
    std::this_thread::sleep_for(800ms);
    pn_->kill_agent();
    std::this_thread::sleep_for(700ms);
    const std::string old_log = pn_->agent_log();
    pn_->start_agent();
    std::this_thread::sleep_for(800ms);
    Figures f = stop_steady_load();
    record("agent: SIGKILL + restart", f, pn_->emulator_stats().value("token_requests", 0L));

    expect_only_own_tokens(f);
    EXPECT_GT(f["refused"], 0) << "no request met the agent down: the test did not test anything";
    EXPECT_GT(f["ok"], 0);
    EXPECT_EQ(f.statuses_outside({200, 400}), "") << "only tokens and the unbound pod's 400";
    EXPECT_EQ(f["st400"], f["not_found"]) << "a 400 other than Identity not found";
    EXPECT_EQ(f["timeout"], 0) << "a connection hung instead of failing closed";
    EXPECT_NE(pn_->agent_log().find("updated pinned link"), std::string::npos) << pn_->agent_log();
    expect_each_pod_served();
    // The restarted agent's cache is empty: one upstream call per identity, not one per waiting request.
    EXPECT_LE(pn_->emulator_stats().value("token_requests", -1), kPods);
    expect_no_pod_reached_imds();
}

// SIGTERM under load, with requests in flight on a slow upstream: those finish with the pod's own token, new
// connections are refused from the moment the drain starts (never answered, in particular never by the node's
// identity), the steady load's kept-alive connections are closed, and the agent exits 0 leaving the pins.
TEST_F(FaultsTest, SigtermDrainUnderLoadFinishesInFlightAndRefusesNew) {
    start();
    expect_each_pod_served();
    pn_->emulator_reset();
    start_steady_load();
    pn_->emulator_fault({{"mode", "latency"}, {"latency_ms", 2000}});
    const std::string slow = "https%3A%2F%2Fdrain.example";
    std::vector<Process> in_flight;
    for (int i = 0; i < kPods; ++i)
        in_flight.push_back(spawn_load(
            "p" + std::to_string(i), guid(i),
            {"resource=" + slow, "threads=2", "interval_ms=0", "reconnect_pct=0", "timeout_s=15", "count=1"}));
    // Wait until the slow fetches are upstream: then the requests are in the agent, waiting.
    bool upstream_busy = false;
    for (int i = 0; i < 50 && !upstream_busy; ++i) {
        upstream_busy = pn_->emulator_stats().value("in_flight", 0) >= kPods;
        if (!upstream_busy)
            std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(upstream_busy) << pn_->emulator_stats().dump();
    const auto drain_start = Clock::now();
    pn_->agent().signal(SIGTERM);
    ASSERT_TRUE(pn_->agent().wait_for_output("draining", 5s)) << pn_->agent_log();
    std::this_thread::sleep_for(100ms);
    // New connections during the drain: refused, from bound and unbound pods alike.
    Figures fresh;
    for (const auto& [pod, own] : {std::pair{"p0", guid(0)}, std::pair{"u", std::string("-")}}) {
        Process probe = spawn_load(
            pod, own,
            {"resource=" + kVault, "threads=1", "interval_ms=0", "reconnect_pct=0", "timeout_s=5", "count=1"});
        fresh.add(probe.wait(10s).out);
    }
    const bool drained_while_slow = Clock::now() - drain_start < 1500ms;
    RunResult exit = pn_->agent().wait(15s);
    const double drain_s = std::chrono::duration<double>(Clock::now() - drain_start).count();
    Figures inflight;
    for (auto& p : in_flight)
        inflight.add(p.wait(20s).out);
    pn_->emulator_fault({{"mode", "none"}});
    Figures steady = stop_steady_load();
    Figures f = steady;
    f.add(inflight);
    f.add(fresh);
    record("agent: SIGTERM drain (in flight)", inflight, 0);
    record("agent: SIGTERM drain (new conns)", fresh, 0);
    record("agent: SIGTERM drain (steady)", steady, pn_->emulator_stats().value("token_requests", 0L));
    ::testing::Test::RecordProperty("drain_seconds", std::to_string(drain_s));

    EXPECT_EQ(exit.exit_code, 0) << pn_->agent_log();
    EXPECT_TRUE(drained_while_slow) << "the new-connection probe ran after the in-flight requests finished";
    EXPECT_EQ(inflight["ok"], 2 * kPods) << "in-flight requests did not finish with the pod's token: "
                                         << inflight.errors() << " " << inflight.failures();
    EXPECT_EQ(fresh["requests"], 2);
    EXPECT_EQ(fresh["refused"], 2) << "a new connection during the drain was not refused: " << fresh.errors()
                                   << fresh.failures();
    expect_only_own_tokens(f);
    EXPECT_EQ(f.statuses_outside({200, 400}), "");
    EXPECT_EQ(f["st400"], f["not_found"]);
    EXPECT_EQ(f["timeout"], 0);
    EXPECT_NE(pn_->agent_log().find("stopped; BPF programs stay pinned"), std::string::npos);
    EXPECT_TRUE(std::filesystem::exists(pn_->pin_dir() + "/link_connect4"));
    expect_no_pod_reached_imds();
}

// A DaemonSet rolling update (maxUnavailable 1) under load: the old agent gets SIGTERM and drains, then the new
// build starts in a new pod (its own cgroup, its own binary) and swaps its programs into the pinned links with
// bpf_link_update. In between, a pod's request is held (its SYN came while the old agent no longer took new
// connections: the retry a second later meets the new agent) or refused (no agent listened); never reset, never
// IMDS, never another pod's token. The links end up running the new agent's programs.
TEST_F(FaultsTest, RollingUpgradeUnderLoadSwapsProgramsAndLeaksNothing) {
    start();
    expect_each_pod_served();
    pn_->emulator_reset();
    // The "new image": another copy of the agent binary.
    const std::string next_bin = node().workdir() + "/podid-agent-next";
    std::filesystem::copy_file(PODID_AGENT_BIN, next_bin);
    std::filesystem::permissions(next_bin, std::filesystem::perms::owner_all);
    auto prog_ids = [&] {
        RunResult r =
            node().run({"bpftool", "-j", "link", "show", "pinned", pn_->pin_dir() + "/link_connect4"}, "", "");
        json j = json::parse(r.out, nullptr, false);
        return j.is_object() ? std::pair{j.value("id", 0), j.value("prog_id", 0)} : std::pair{0, 0};
    };
    const auto before = prog_ids();
    ASSERT_GT(before.second, 0) << "bpftool cannot read the pinned link";

    start_steady_load();
    std::this_thread::sleep_for(800ms);
    pn_->agent().signal(SIGTERM);
    RunResult old_exit = pn_->agent().wait(15s);
    EXPECT_EQ(old_exit.exit_code, 0) << pn_->agent_log();
    // The new pod: a new pod UID, so a new cgroup, as the DaemonSet controller creates it.
    const std::string next_cgroup = node().make_cgroup(
        "kubepods.slice/kubepods-besteffort.slice/"
        "kubepods-besteffort-podc0ffee00_0000_4000_8000_000000000002.slice/cri-containerd-" +
        std::string(64, 'b') + ".scope");
    extra_agent_ =
        node().spawn({next_bin, "--node-ip", node().node_ip(), "--cgroup-root", node().kubepods_dir(), "--bpffs",
                      pn_->pin_dir(), "--audit-log", pn_->audit_path(), "--admin-socket", pn_->admin_socket_path(),
                      "--handover-socket", pn_->handover_socket_path(), "--token-cache-file", pn_->token_cache_path(),
                      "--bindings", pn_->bindings_path(), "--upstream-timeout", "3s"},
                     node().node_netns(), next_cgroup);
    ASSERT_TRUE(extra_agent_.wait_for_output("podid-agent ready", 20s)) << extra_agent_.read_err();
    std::this_thread::sleep_for(800ms);
    Figures f = stop_steady_load();
    record("agent: rolling upgrade", f, pn_->emulator_stats().value("token_requests", 0L));

    const auto after = prog_ids();
    EXPECT_EQ(after.first, before.first) << "the link was replaced, not updated in place";
    EXPECT_NE(after.second, before.second) << "the pinned link still runs the old agent's program";
    EXPECT_NE(extra_agent_.read_err().find("updated pinned link"), std::string::npos) << extra_agent_.read_err();
    expect_only_own_tokens(f);
    EXPECT_TRUE(f["refused"] > 0 || f.max_ms >= 900)
        << "no request met the switch-over (neither refused nor held by a SYN retry; slowest " << f.max_ms << " ms)";
    // ("closed": an idle keep-alive connection the draining agent closed, which HTTP clients retry.)
    EXPECT_EQ(f["reset"], 0) << f.failures();
    EXPECT_GT(f["ok"], 0);
    EXPECT_EQ(f.statuses_outside({200, 400}), "");
    EXPECT_EQ(f["st400"], f["not_found"]);
    EXPECT_EQ(f["timeout"], 0);
    expect_each_pod_served();
    EXPECT_TRUE(extra_agent_.running());
    EXPECT_LE(pn_->emulator_stats().value("token_requests", -1), kPods);
    expect_no_pod_reached_imds();
}

// ---------------------------------------------------------------------------------------------------------
// The API server.

// Kubernetes mode, under load from three pods bound through AzureIdentityBindings: the watch drops, then the API
// server goes away for a while. Pods the agent knows keep getting their own tokens without a single error, and
// /readyz stays ready (the lists synced; known pods are served). A pod created during the outage gets its token
// within 10 s of the API server's return (it took 57 s when the load helpers had inherited the double's
// end of the watch connections, so that the agent saw no FIN; a silent outage: kube_mode_test.cpp). (Watch drops, 410,
// and a pod created after the outage being bound, one request at a time: kube_mode_test.cpp; readiness with the API
// server down at start: observability_test.cpp.)
TEST_F(FaultsTest, ApiServerOutageUnderLoadKeepsKnownPodsServed) {
    constexpr int kKubePods = 3;
    const std::string node_name = "aks-faults-0";
    PodidNodeOptions o;
    for (int i = 0; i < kPods; ++i)
        o.vm_identities.push_back(guid(i));
    o.system_identity = kNodeId;
    build_podid_node(o);
    const std::string kubeconfig = serve_api();
    for (int i = 0; i < kPods; ++i) {
        const std::string name = "id" + std::to_string(i);
        create("AzureIdentity", {{"metadata", {{"name", name}, {"namespace", "default"}}},
                                 {"spec", {{"type", 0}, {"clientID", guid(i)}}}});
        create("AzureIdentityBinding", {{"metadata", {{"name", name + "-binding"}, {"namespace", "default"}}},
                                        {"spec", {{"azureIdentity", name}, {"selector", name}}}});
    }
    for (int i = 0; i < kKubePods; ++i) {
        Pod& p = pn_->add_pod({.name = "p" + std::to_string(i)});
        create("Pod", kube_pod_object(p, "default", "app-" + std::to_string(i),
                                      {{"aadpodidbinding", "id" + std::to_string(i)}}, node_name));
    }
    pn_->set_agent_args({"--kubeconfig", kubeconfig, "--node-name", node_name, "--metrics-addr",
                         node().node_ip() + ":9090", "--upstream-timeout", "3s"});
    pn_->start_emulator();
    pn_->start_agent();
    const std::string token_path = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + kVault;
    for (int i = 0; i < kKubePods; ++i)
        ASSERT_EQ(pn_->curl("p" + std::to_string(i), token_path).status, 200);
    auto readyz = [&] {
        RunResult r = node().run_in_node({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                                          "http://" + node().node_ip() + ":9090/readyz"});
        return std::atoi(r.out.c_str());
    };
    ASSERT_EQ(readyz(), 200);

    std::filesystem::remove(stop_file());
    for (int i = 0; i < kKubePods; ++i)
        loads_.push_back(spawn_load("p" + std::to_string(i), guid(i),
                                    {"resource=" + kVault, "threads=3", "interval_ms=20", "reconnect_pct=30",
                                     "timeout_s=10", "until=" + stop_file()}));
    std::this_thread::sleep_for(500ms);
    api_->drop_watches();
    std::this_thread::sleep_for(500ms);
    api_->stop();
    std::vector<int> ready_during;
    for (int i = 0; i < 6; ++i) {
        std::this_thread::sleep_for(300ms);
        ready_during.push_back(readyz());
    }
    // A pod created while the API server is away (the double takes it in its store): bound to the fourth identity.
    Pod& late = pn_->add_pod({.name = "late"});
    create("Pod", kube_pod_object(late, "default", "app-late", {{"aadpodidbinding", "id3"}}, node_name));
    ASSERT_TRUE(api_->start().ok());
    // Time from the API server's return to the new pod's first token.
    const auto served = pn_->curl_until_ok("late", token_path, 60s);
    RecordProperty("pod_created_during_outage_served_after_s", std::to_string(served.seconds));
    EXPECT_EQ(served.status, 200) << "a pod created during the outage was never served";
    EXPECT_LE(served.seconds, 10.0) << "a pod created during the outage was served only " << served.seconds
                                    << " s after recovery";
    Figures f = stop_steady_load();
    record("api server: watch drop + outage", f, pn_->emulator_stats().value("token_requests", 0L));

    EXPECT_GT(f["requests"], 100);
    EXPECT_EQ(f["ok"], f["requests"]) << "known pods saw errors: " << f.errors() << " " << f.failures();
    expect_only_own_tokens(f);
    for (int status : ready_during)
        EXPECT_EQ(status, 200) << "/readyz during the outage";
    EXPECT_TRUE(pn_->agent_running());
    for (const auto& peer : pn_->emulator_peers())
        for (const char* pod : {"p0", "p1", "p2"})
            EXPECT_NE(peer.rfind(node().pod(pod).ip + ":", 0), 0u) << "pod " << pod << " reached IMDS: " << peer;
}

}  // namespace
}  // namespace podid::test
