// Adversarial end-to-end tests on the test node with the real agent: what a hostile pod can try
// that agent_test.cpp and datapath_test.cpp do not already cover (docs/security.md maps every claim to its
// test). Pods' side of each attack runs this same binary in a helper mode (`--podid-helper MODE ARGS...`,
// handled before GoogleTest starts), placed into the pod's cgroup and network namespace by the test node.
// Every test prints a one-line summary of what was tried.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/node_fixture.h"
#include "support/self_helper.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

const std::string kVault = "https%3A%2F%2Fvault.azure.net";
const std::string kTokenQuery = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=";

// ---------------------------------------------------------------------------------------------------------
// The pod side: a minimal HTTP/1.1 client over plain sockets (so a test controls every byte) and the helper
// modes built on it.

bool send_all(int fd, const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

struct Response {
    int status = 0;  // 0: no (complete) response
    std::string body;
    bool closed = false;     // the server closed the connection (after it, or instead of one)
    bool timed_out = false;  // nothing more came within the socket's receive timeout
};

// Reads one response with a Content-Length body (what Beast's prepare_payload produces).
Response read_response(int fd, std::string& pending) {
    Response r;
    char buf[16384];
    for (;;) {
        size_t head_end = pending.find("\r\n\r\n");
        if (head_end != std::string::npos) {
            std::string head = pending.substr(0, head_end);
            size_t length = 0;
            std::string lower = head;
            std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
            size_t cl = lower.find("\r\ncontent-length:");
            if (cl != std::string::npos)
                length = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
            if (pending.size() >= head_end + 4 + length) {
                if (head.rfind("HTTP/1.", 0) == 0 && head.size() > 12)
                    r.status = std::atoi(head.c_str() + 9);
                r.body = pending.substr(head_end + 4, length);
                r.closed = lower.find("\r\nconnection: close") != std::string::npos;
                pending.erase(0, head_end + 4 + length);
                return r;
            }
        }
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            r.timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
            r.closed = true;
            return r;
        }
        pending.append(buf, static_cast<size_t>(n));
    }
}

std::string token_request(const std::string& query_tail, const std::vector<std::string>& headers = {}) {
    std::string req = "GET " + kTokenQuery + query_tail + " HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n";
    for (const auto& h : headers)
        req += h + "\r\n";
    return req + "\r\n";
}

bool iequal(const std::string& a, const std::string& b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ::tolower(x) == ::tolower(y); });
}

// identity-run OWN FOREIGN COUNT THREADS SEED: COUNT requests over THREADS connections' worth of workers,
// a random mix of shapes; every 200 must carry a token whose JWT names OWN.
int helper_identity_run(const std::vector<std::string>& a) {
    const std::string own = a.at(0), foreign = a.at(1);
    const int count = std::stoi(a.at(2)), threads = std::stoi(a.at(3));
    const unsigned seed = static_cast<unsigned>(std::stoul(a.at(4)));
    const std::vector<std::string> resources = {kVault, "https://storage.azure.com",
                                                "https%3A%2F%2Fmanagement.core.windows.net%2F"};
    std::atomic<int> tokens{0}, denied{0}, throttled{0}, wrong{0}, errors{0}, reconnects{0};
    std::mutex first_mu;
    std::string first_error;
    auto worker = [&](int index, int n) {
        std::mt19937 rng(seed * 131 + static_cast<unsigned>(index));
        int fd = -1;
        std::string pending;
        for (int i = 0; i < n; ++i) {
            const int shape = static_cast<int>(rng() % 100);
            std::string tail = resources[rng() % resources.size()];
            std::vector<std::string> headers;
            int expect = 200;
            if (shape < 20) {
                std::string id = own;
                if (rng() % 2)
                    std::transform(id.begin(), id.end(), id.begin(), ::toupper);  // GUIDs compare case-insensitively
                tail += "&client_id=" + id;
            } else if (shape < 35) {
                tail += "&client_id=" + foreign;  // another pod's identity
                expect = 400;
            } else if (shape < 40) {
                headers.push_back("X-Forwarded-For: 10.77.0.11");
                expect = 400;
            }
            if (fd < 0 || rng() % 100 < 30) {
                if (fd >= 0)
                    ::close(fd);
                fd = dial_metadata();
                pending.clear();
                ++reconnects;
            }
            Response r;
            for (int attempt = 0; attempt < 50; ++attempt) {
                if (fd < 0 || !send_all(fd, token_request(tail, headers))) {
                    r = {};
                } else {
                    r = read_response(fd, pending);
                }
                if (r.status != 429)
                    break;
                ++throttled;  // IMDS's own throttling shape: back off and retry, as SDKs do
                std::this_thread::sleep_for(100ms);
            }
            if (r.closed || r.status == 0) {
                if (fd >= 0)
                    ::close(fd);
                fd = -1;
            }
            auto note = [&](const std::string& what) {
                std::lock_guard lock(first_mu);
                if (first_error.empty())
                    first_error = what;
            };
            if (r.status != expect) {
                ++errors;
                note("status " + std::to_string(r.status) + " (want " + std::to_string(expect) + ") for " + tail +
                     ": " + r.body.substr(0, 200));
                continue;
            }
            if (expect != 200) {
                ++denied;
                continue;
            }
            json body = json::parse(r.body, nullptr, false);
            const std::string access = body.is_object() ? body.value("access_token", "") : "";
            json claims = jwt_claims(access);
            const std::string appid = claims.is_object() ? claims.value("appid", "") : "";
            if (!iequal(appid, own) || !iequal(body.value("client_id", ""), own)) {
                ++wrong;
                note("token for " + appid + " / " + body.value("client_id", "") + " given to " + own);
            } else {
                ++tokens;
            }
        }
        if (fd >= 0)
            ::close(fd);
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back(worker, t, count / threads + (t < count % threads ? 1 : 0));
    for (auto& t : pool)
        t.join();
    std::printf("ok tokens=%d denied=%d throttled=%d wrong=%d errors=%d connections=%d\n", tokens.load(), denied.load(),
                throttled.load(), wrong.load(), errors.load(), reconnects.load());
    if (!first_error.empty())
        std::printf("first_error %s\n", first_error.c_str());
    return wrong == 0 && errors == 0 ? 0 : 1;
}

// raw BYTES: sends BYTES on one connection, then prints every response the server sent before closing
// (or before 1 s of silence): "response STATUS" lines, then "closed" or "open".
int helper_raw(const std::vector<std::string>& a) {
    int fd = dial_metadata(1);
    if (fd < 0) {
        std::printf("fail connect errno=%d\n", errno);
        return 1;
    }
    send_all(fd, a.at(0));
    std::string pending;
    for (;;) {
        Response r = read_response(fd, pending);
        if (r.status)
            std::printf("response %d %s\n", r.status, r.body.substr(0, 120).c_str());
        if (r.timed_out) {
            std::printf("open\n");
            break;
        }
        if (r.closed || r.status == 0) {
            std::printf("closed\n");
            break;
        }
    }
    ::close(fd);
    return 0;
}

// slowloris CONNS INTERVAL_MS DURATION_MS: CONNS connections each sending one byte of a request every
// INTERVAL_MS; prints how many the server closed, and when the last was closed.
int helper_slowloris(const std::vector<std::string>& a) {
    const int conns = std::stoi(a.at(0));
    const auto interval = std::chrono::milliseconds(std::stoi(a.at(1)));
    const auto duration = std::chrono::milliseconds(std::stoi(a.at(2)));
    rlimit lim{65536, 65536};
    ::setrlimit(RLIMIT_NOFILE, &lim);
    const std::string req = token_request(kVault);
    std::vector<int> fds;
    for (int i = 0; i < conns; ++i)
        fds.push_back(dial_metadata(1));
    std::vector<bool> open(fds.size(), true);
    const auto start = Clock::now();
    size_t sent = 0;
    int closed = 0;
    double last_close_s = 0;
    while (Clock::now() - start < duration && closed < conns) {
        for (size_t i = 0; i < fds.size(); ++i) {
            if (!open[i])
                continue;
            char c = req[sent % req.size()];
            bool gone = fds[i] < 0 || ::send(fds[i], &c, 1, MSG_NOSIGNAL) != 1;
            if (!gone) {
                char buf[512];
                ssize_t n = ::recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
                gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || n > 0;
            }
            if (gone) {
                open[i] = false;
                ++closed;
                last_close_s = std::chrono::duration<double>(Clock::now() - start).count();
            }
        }
        ++sent;
        std::this_thread::sleep_for(interval);
    }
    std::printf("ok conns=%d closed=%d last_close_s=%.1f bytes_each=%zu\n", conns, closed, last_close_s, sent);
    for (int fd : fds)
        if (fd >= 0)
            ::close(fd);
    return 0;
}

// idle-flood CONNS HOLD_MS: opens CONNS connections and sends nothing; prints how many the server kept
// open (a refused one is closed at once) and holds them for HOLD_MS.
int helper_idle_flood(const std::vector<std::string>& a) {
    const int conns = std::stoi(a.at(0));
    const auto hold = std::chrono::milliseconds(std::stoi(a.at(1)));
    rlimit lim{65536, 65536};
    ::setrlimit(RLIMIT_NOFILE, &lim);
    std::vector<int> fds;
    int failed = 0;
    for (int i = 0; i < conns; ++i) {
        int fd = dial_metadata(1);
        if (fd < 0)
            ++failed;
        else
            fds.push_back(fd);
    }
    std::this_thread::sleep_for(500ms);
    int kept = 0;
    for (int fd : fds) {
        char c;
        ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            ++kept;
    }
    std::printf("ok conns=%d kept=%d closed=%zu failed=%d\n", conns, kept, fds.size() - kept, failed);
    std::fflush(stdout);
    std::this_thread::sleep_for(hold);
    for (int fd : fds)
        ::close(fd);
    return 0;
}

// hammer THREADS DURATION_MS: keep-alive token requests as fast as possible; prints the rate and statuses.
int helper_hammer(const std::vector<std::string>& a) {
    const int threads = std::stoi(a.at(0));
    const auto duration = std::chrono::milliseconds(std::stoi(a.at(1)));
    std::atomic<long> ok{0}, throttled{0}, other{0};
    const auto start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            int fd = -1;
            std::string pending;
            const std::string req = token_request(kVault);
            while (Clock::now() - start < duration) {
                if (fd < 0) {
                    fd = dial_metadata(2);
                    pending.clear();
                    if (fd < 0) {
                        ++other;
                        std::this_thread::sleep_for(10ms);
                        continue;
                    }
                }
                Response r = send_all(fd, req) ? read_response(fd, pending) : Response{};
                (r.status == 200 ? ok : r.status == 429 ? throttled : other)++;
                if (r.closed || r.status == 0) {
                    ::close(fd);
                    fd = -1;
                }
            }
            if (fd >= 0)
                ::close(fd);
        });
    }
    for (auto& t : pool)
        t.join();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("ok rps=%.0f ok=%ld throttled=%ld other=%ld\n", (ok + throttled + other) / secs, ok.load(),
                throttled.load(), other.load());
    return 0;
}

// latency COUNT INTERVAL_MS: COUNT cached-token requests on one keep-alive connection, one every
// INTERVAL_MS; prints p50/p99/max in milliseconds.
int helper_latency(const std::vector<std::string>& a) {
    const int count = std::stoi(a.at(0));
    const auto interval = std::chrono::milliseconds(std::stoi(a.at(1)));
    int fd = dial_metadata();
    std::string pending;
    std::vector<double> ms;
    int failures = 0;
    const std::string req = token_request(kVault);
    for (int i = 0; i < count; ++i) {
        if (fd < 0) {
            fd = dial_metadata();
            pending.clear();
        }
        const auto t0 = Clock::now();
        Response r = fd >= 0 && send_all(fd, req) ? read_response(fd, pending) : Response{};
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (r.status != 200)
            ++failures;
        if (r.closed || r.status == 0) {
            if (fd >= 0)
                ::close(fd);
            fd = -1;
        }
        std::this_thread::sleep_for(interval);
    }
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
    std::printf("ok p50=%.3f p99=%.3f max=%.3f failures=%d\n", pct(0.50), pct(0.99), ms.back(), failures);
    return 0;
}

// Runs before main(): a helper invocation never reaches GoogleTest.
const int kHelper = [] {
    std::vector<std::string> args = self_cmdline();
    if (args.size() < 3 || args[1] != "--podid-helper")
        return 0;
    const std::string mode = args[2];
    std::vector<std::string> rest(args.begin() + 3, args.end());
    int rc = 2;
    if (mode == "identity-run")
        rc = helper_identity_run(rest);
    else if (mode == "raw")
        rc = helper_raw(rest);
    else if (mode == "slowloris")
        rc = helper_slowloris(rest);
    else if (mode == "idle-flood")
        rc = helper_idle_flood(rest);
    else if (mode == "hammer")
        rc = helper_hammer(rest);
    else if (mode == "latency")
        rc = helper_latency(rest);
    std::fflush(stdout);
    std::_Exit(rc);
}();

std::vector<std::string> helper(const std::string& mode, std::vector<std::string> args) {
    args.insert(args.begin(), {self_exe(), "--podid-helper", mode});
    return args;
}

// "key=value" from a helper's "ok ..." line.
double field(const std::string& out, const std::string& key) {
    size_t at = out.find(" " + key + "=");
    return at == std::string::npos ? -1 : std::atof(out.c_str() + at + key.size() + 2);
}

// The absolute latency target (other pods p99 under 50 ms) is a property of the product build. Under a sanitizer
// the agent runs at -O0 with instrumentation, beside the other sanitizer build: the bound is reported, not
// checked (the relative bounds and the failure counts still are).
void expect_p99_within_target(double p99_ms, const std::string& out) {
#ifdef PODID_SANITIZER_BUILD
    std::cout << "[hardening] p99 " << p99_ms << " ms: the 50 ms bound is not checked in a sanitizer build\n";
#else
    EXPECT_LT(p99_ms, 50.0) << out;
#endif
}

std::string relative(const TestNode& node, const std::string& abs) { return abs.substr(node.cgroup2_mount().size()); }

std::string guid(int i) {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%08x-%04x-4%03x-8%03x-%012x", 0x10000000 + i, i, i, i, 0xabc000 + i);
    return buf;
}

long rss_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::atol(line.c_str() + 6);
    return -1;
}

// ---------------------------------------------------------------------------------------------------------

class HardeningTest : public NodeFixture {
protected:
    // `pods` pods "p0".."p<n-1>", each bound to its own identity guid(i); `unbound` more pods without one.
    void start(int pods, int unbound = 0, std::vector<std::string> agent_args = {}) {
        PodidNodeOptions o;
        for (int i = 0; i < pods; ++i)
            o.vm_identities.push_back(guid(i));
        o.system_identity = "99999999-9999-4999-8999-999999999999";
        o.bindings = json{{"bindings", json::array()}};
        o.agent_args = std::move(agent_args);
        build_podid_node(o);
        static const char* qos[] = {"burstable", "besteffort", "guaranteed"};
        static const char* runtimes[] = {"containerd", "crio", "docker"};
        json entries = json::array();
        pod_count_ = pods + unbound;
        for (int i = 0; i < pods + unbound; ++i) {
            Pod& p = pn_->add_pod({.name = "p" + std::to_string(i), .qos = qos[i % 3], .runtime = runtimes[i % 3]});
            if (i < pods)
                entries.push_back(
                    {{"cgroup", relative(pn_->node(), p.pod_cgroup_dir)}, {"identities", {{{"client_id", guid(i)}}}}});
        }
        pn_->write_bindings(json{{"bindings", entries}});
        pn_->start_emulator();
        pn_->start_agent();
    }

    // No connection from a pod ever reached the emulator: only the agent's own and the test's (node netns).
    void expect_no_pod_reached_imds() {
        std::vector<std::string> peers = pn_->emulator_peers();
        for (const auto& peer : peers)
            for (int i = 0; i < pod_count_; ++i)
                EXPECT_NE(peer.rfind(node().pod("p" + std::to_string(i)).ip + ":", 0), 0u)
                    << "pod p" << i << " reached IMDS: " << peer;
    }

    int pod_count_ = 0;
};

// A process in a pod makes a network namespace of its own (unshare -n; a pod with CAP_SYS_ADMIN or a user
// namespace can), gives it 169.254.169.254 and tries again. The cgroup hooks follow the process, not the
// namespace: TCP is still rewritten to the agent's node address (unreachable from the empty namespace:
// ENETUNREACH, where an unhooked connect would get ECONNREFUSED from its own loopback), UDP and ICMP
// are still dropped.
TEST_F(HardeningTest, SecondNetworkNamespaceInsideAPodIsStillHooked) {
    start(1);
    const std::string script =
        "ip link set lo up && ip addr add 169.254.169.254/32 dev lo && "
        "echo tcp: $(" PODID_PROBE_BIN
        " tcp 169.254.169.254 80); "
        "echo udp: $(" PODID_PROBE_BIN
        " udp 169.254.169.254 80); "
        "echo icmp: $(" PODID_PROBE_BIN
        " icmp 169.254.169.254); "
        "echo other_port: $(" PODID_PROBE_BIN " tcp 169.254.169.254 8080)";
    RunResult r = node().run_in_pod("p0", {"unshare", "-n", "sh", "-c", script});
    std::cout << "[hardening] second netns: " << r.out << r.err;
    ASSERT_NE(r.out.find("tcp:"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("tcp: fail op=connect errno=101"), std::string::npos) << "not redirected: " << r.out;
    EXPECT_NE(r.out.find("udp: fail"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("icmp: fail"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("other_port: fail op=connect errno=1 "), std::string::npos) << "EPERM expected: " << r.out;
    expect_no_pod_reached_imds();
}

// The trust boundary: a pod process cannot move itself into another pod's cgroup without write access to
// that cgroup's cgroup.procs (root on the host's cgroupfs). An unprivileged process gets EACCES; the
// attempt leaves its attribution unchanged.
TEST_F(HardeningTest, UnprivilegedProcessCannotMoveIntoAnotherPodsCgroup) {
    start(2);
    const Pod& victim = node().pod("p1");
    const std::string script = "echo $$ > " + victim.cgroup_dir + "/cgroup.procs && echo moved || echo refused";
    RunResult r =
        node().run_in_pod("p0", {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script});
    std::cout << "[hardening] cgroup move as uid 65534: " << r.out << r.err;
    EXPECT_NE(r.out.find("refused"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
    // And its requests are still its own.
    auto t = pn_->curl("p0", kTokenQuery + kVault);
    EXPECT_EQ(t.status, 200) << t.body << t.err;
    EXPECT_EQ(t.body.find(guid(1)), std::string::npos) << t.body;
    EXPECT_NE(t.body.find(guid(0)), std::string::npos) << t.body;
}

// Source addresses play no part: pod p0 takes pod p1's IP (NET_ADMIN in its own netns, and the node's
// neighbour entry pointed at it, as an ARP spoofer would) and calls IMDS from that address. NMI would have
// answered with p1's identity; podid answers with p0's, and the audit names p0's cgroup.
TEST_F(HardeningTest, SpoofedSourceAddressIsAttributedByCgroup) {
    start(2);
    const Pod& attacker = node().pod("p0");
    const Pod& victim = node().pod("p1");
    // (Not /sys/class/net: the pod shares the test's mount namespace, whose sysfs shows the host's links.)
    RunResult mac =
        node().run_in_pod("p0", {"sh", "-c", "ip -o link show eth0 | sed 's/.*link\\/ether \\([^ ]*\\).*/\\1/'"});
    ASSERT_EQ(mac.exit_code, 0) << mac.err;
    std::string lladdr = mac.out.substr(0, mac.out.find('\n'));
    ASSERT_EQ(node().run_in_pod("p0", {"ip", "addr", "add", victim.ip + "/32", "dev", "eth0"}).exit_code, 0);
    RunResult neigh = node().run_in_node({"sh", "-c",
                                          "ip neigh replace " + victim.ip + " lladdr " + lladdr +
                                              " nud permanent dev $(ip -o route get " + attacker.ip +
                                              " | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')"});
    ASSERT_EQ(neigh.exit_code, 0) << neigh.err;
    RunResult r = node().run_in_pod("p0", {"curl", "-sS", "-m", "10", "--interface", victim.ip, "-H", "Metadata: true",
                                           "http://169.254.169.254" + kTokenQuery + kVault});
    std::cout << "[hardening] p0 calling from p1's address " << victim.ip << ": exit " << r.exit_code << "\n";
    if (r.exit_code != 0) {
        std::cout << node().run_in_node({"sh", "-c", "ip neigh; bridge fdb show | grep -v permanent; ip route"}).out;
        std::cout << node()
                         .run_in_pod("p0", {"sh", "-c",
                                            "ip addr; ip route; ip neigh; curl -sS -m 3 --interface " + victim.ip +
                                                " http://10.77.0.1:2579/healthz"})
                         .out;
    }
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json body = json::parse(r.out, nullptr, false);
    EXPECT_EQ(body.value("client_id", ""), guid(0)) << r.out;
    EXPECT_EQ(jwt_claims(body.value("access_token", "")).value("appid", ""), guid(0));
    auto lines = pn_->audit_lines(1);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back()["caller"].value("cgroup_id", 0u), attacker.cgroup_id);
}

struct SmuggleCase {
    const char* name;
    std::string bytes;
    std::vector<int> statuses;  // every response the server must send, in order; empty: exactly one, any status
    bool closes;                // the server closes the connection after them
};

// HTTP request smuggling shapes and oversized headers, byte for byte from a pod. None may yield a second,
// hidden request (each connection is attributed once, so even a smuggled request would be the same pod's;
// what matters is that a front request and a hidden one are never read two ways), and none reaches IMDS.
TEST_F(HardeningTest, SmugglingShapesAndHugeHeadersAreRefused) {
    start(2);
    const std::string own = token_request(kVault);
    const std::string hidden = token_request(kVault + "&client_id=" + guid(1));
    const std::string head = "GET " + kTokenQuery + kVault + " HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n";
    const std::string post = "POST " + kTokenQuery + kVault + " HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n";
    const std::vector<SmuggleCase> cases = {
        {"duplicate_content_length",
         post + "Content-Length: 0\r\nContent-Length: " + std::to_string(hidden.size()) + "\r\n\r\n" + hidden,
         {400},
         true},
        {"chunked_and_content_length",
         post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden,
         {400},
         true},
        {"chunked_not_last", post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + hidden, {400}, true},
        {"obs_fold", head + "X-A: a\r\n Metadata: false\r\n\r\n", {200}, false},
        // RFC 9112 §5.2 lets a server replace obs-fold with a space: Beast does, so this is "Metadata: true",
        // read the same way by any compliant reader (and the pod can send that header anyway).
        {"obs_fold_into_metadata",
         "GET " + kTokenQuery + kVault + " HTTP/1.1\r\nHost: x\r\nMetadata:\r\n true\r\n\r\n",
         {200},
         false},
        {"transfer_encoding_without_chunked", post + "Transfer-Encoding: gzip\r\n\r\n" + hidden, {400}, true},
        {"space_before_colon", head + "Content-Length : 5\r\n\r\n" + hidden, {400}, true},
        {"huge_header", head + "X-Big: " + std::string(16 * 1024, 'a') + "\r\n\r\n", {431}, true},
        {"many_headers",
         head +
             [] {
                 std::string h;
                 for (int i = 0; i < 2000; ++i)
                     h += "X-" + std::to_string(i) + ": v\r\n";
                 return h;
             }() +
             "\r\n",
         {431},
         true},
        {"huge_target", "GET /metadata/" + std::string(20 * 1024, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", {431}, true},
        {"pipelined_own_then_foreign", own + hidden, {200, 400}, false},
        // The agent is the front proxy for forwarded paths: a request hidden in a chunked body must reach
        // IMDS as body bytes with a Content-Length, never as a second request on the agent's connection.
        {"chunked_body_forwarded",
         "POST /metadata/scheduledevents?api-version=2020-07-01 HTTP/1.1\r\nHost: x\r\n"
         "Metadata: true\r\nTransfer-Encoding: chunked\r\n\r\n" +
             [&] {
                 char len[16];
                 std::snprintf(len, sizeof(len), "%zx", hidden.size());
                 return std::string(len) + "\r\n" + hidden + "\r\n0\r\n\r\n";
             }(),
         {},
         false},
        {"bare_lf", "GET " + kTokenQuery + kVault + " HTTP/1.1\nHost: x\nMetadata: true\n\n", {400}, true},
        {"http_0_9", "GET " + kTokenQuery + kVault + "\r\n\r\n", {400}, true},
    };
    pn_->emulator_reset();
    int tried = 0;
    for (const SmuggleCase& c : cases) {
        RunResult r = node().run_in_pod("p0", helper("raw", {c.bytes}), 30s);
        std::vector<int> statuses;
        std::istringstream lines(r.out);
        for (std::string line; std::getline(lines, line);)
            if (line.rfind("response ", 0) == 0)
                statuses.push_back(std::atoi(line.c_str() + 9));
        if (c.statuses.empty()) {  // forwarded: whatever IMDS answers, exactly one answer
            EXPECT_EQ(statuses.size(), 1u) << c.name << ":\n" << r.out << r.err;
        } else {
            EXPECT_EQ(statuses, c.statuses) << c.name << ":\n" << r.out << r.err;
        }
        if (c.closes) {
            EXPECT_NE(r.out.find("closed"), std::string::npos) << c.name << ": connection left open\n" << r.out;
        }
        // A token in any answer must be p0's own.
        EXPECT_EQ(r.out.find(guid(1)), std::string::npos) << c.name << ": " << r.out;
        ++tried;
    }
    std::cout << "[hardening] smuggling/header shapes tried: " << tried << "\n";
    EXPECT_LE(pn_->emulator_stats().value("token_requests", -1), 1) << "only p0's own token may be fetched";
    expect_no_pod_reached_imds();
}

// The randomized multi-pod run: 12 pods with 12 identities (and 2 unbound pods) send 12,000+ requests at
// once — default and explicit identity, other pods' client_ids, X-Forwarded-For, three resources, new and
// reused connections. Every token returned must be the caller's own (the JWT's appid and client_id).
TEST_F(HardeningTest, RandomizedMultiPodRunNeverServesAnotherPodsToken) {
    constexpr int kPods = 12, kUnbound = 2, kPerPod = 1000, kThreads = 4;
    start(kPods, kUnbound);
    pn_->emulator_reset();
    const auto t0 = Clock::now();
    std::vector<Process> procs;
    for (int i = 0; i < kPods; ++i)
        procs.push_back(node().spawn_in_pod(
            "p" + std::to_string(i), helper("identity-run", {guid(i), guid((i + 1) % kPods), std::to_string(kPerPod),
                                                             std::to_string(kThreads), std::to_string(i + 1)})));
    int total_tokens = 0, total_denied = 0, total_throttled = 0;
    for (int i = 0; i < kPods; ++i) {
        RunResult r = procs[i].wait(120s);
        EXPECT_EQ(r.exit_code, 0) << "pod p" << i << ": " << r.out << r.err;
        EXPECT_EQ(field(r.out, "wrong"), 0) << "pod p" << i << ": " << r.out;
        total_tokens += static_cast<int>(field(r.out, "tokens"));
        total_denied += static_cast<int>(field(r.out, "denied"));
        total_throttled += static_cast<int>(field(r.out, "throttled"));
    }
    // Unbound pods asking for bound identities get "Identity not found", never a token.
    for (int i = kPods; i < kPods + kUnbound; ++i) {
        for (int id : {0, i % kPods}) {
            auto r = pn_->curl("p" + std::to_string(i), kTokenQuery + kVault + "&client_id=" + guid(id));
            EXPECT_EQ(r.status, 400) << r.body;
        }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::cout << "[hardening] multi-pod: " << kPods * kPerPod << " requests from " << kPods << " pods in " << secs
              << " s: tokens=" << total_tokens << " denied=" << total_denied
              << " throttled(429, retried)=" << total_throttled
              << " upstream=" << pn_->emulator_stats().value("token_requests", -1) << "\n";
    EXPECT_EQ(total_tokens + total_denied, kPods * kPerPod);
    // 12 identities x 3 resources: one upstream call each, however many requests.
    EXPECT_LE(pn_->emulator_stats().value("token_requests", -1), kPods * 3);
    expect_no_pod_reached_imds();
}

// ---------------------------------------------------------------------------------------------------------
// Resource limits.

// Slowloris: 300 connections from one pod, each trickling a request one byte every 500 ms. The whole
// request must arrive within --request-timeout (2 s here), so all are closed soon after; meanwhile another
// pod is served normally.
TEST_F(HardeningTest, SlowlorisConnectionsAreClosedAtTheRequestTimeout) {
    start(2, 0, {"--request-timeout", "2s"});
    pn_->curl("p0", kTokenQuery + kVault);  // warm the cache
    Process slow = node().spawn_in_pod("p1", helper("slowloris", {"300", "500", "8000"}));
    std::this_thread::sleep_for(500ms);
    RunResult quiet = node().run_in_pod("p0", helper("latency", {"50", "20"}), 30s);
    RunResult r = slow.wait(30s);
    std::cout << "[hardening] slowloris: " << r.out << "[hardening] other pod meanwhile: " << quiet.out;
    EXPECT_EQ(field(r.out, "closed"), 300) << r.out;
    EXPECT_LE(field(r.out, "last_close_s"), 4.0) << r.out;
    EXPECT_EQ(field(quiet.out, "failures"), 0) << quiet.out;
    expect_p99_within_target(field(quiet.out, "p99"), quiet.out);
}

// An idle-connection flood from one pod stops at its per-caller share (1,000 of the 10,000 connections);
// the rest are closed at once, the agent's connection count stays bounded, and other pods still connect.
TEST_F(HardeningTest, IdleConnectionFloodStopsAtThePerPodCap) {
    start(2);
    pn_->curl("p0", kTokenQuery + kVault);
    const long rss_before = rss_kb(pn_->agent().pid());
    Process flood = node().spawn_in_pod("p1", helper("idle-flood", {"1500", "4000"}));
    ASSERT_TRUE(flood.wait_for_output("ok conns", 30s)) << flood.read_err();
    std::string out = flood.read_out();
    auto t = pn_->curl("p0", kTokenQuery + kVault);
    const long rss_during = rss_kb(pn_->agent().pid());
    std::cout << "[hardening] idle flood: " << out << "[hardening] agent RSS " << rss_before << " kB -> " << rss_during
              << " kB during the flood\n";
    EXPECT_EQ(t.status, 200) << "another pod was starved: " << t.body << t.err;
    EXPECT_EQ(field(out, "kept"), 1000) << out;
#ifdef __SANITIZE_ADDRESS__
    std::cout << "[hardening] memory bound not checked: ASan's shadow memory and quarantine inflate the RSS\n";
#else
    EXPECT_LT(rss_during - rss_before, 64 * 1024) << "1,000 idle connections cost more than 64 MB";
#endif
    flood.wait(30s);
}

// A noisy pod hammers the agent (8 keep-alive connections, as fast as it can) while a quiet pod makes one
// cached-token request every 10 ms. Target: the quiet pod's p99 stays within 10x its quiet-time p99 (with
// a 5 ms floor, below which scheduling noise on a shared 2-core machine dominates) and under 50 ms; the
// noisy pod is held to its rate (429 beyond it); the agent's memory stays bounded.
TEST_F(HardeningTest, NoisyPodDoesNotStarveAQuietOne) {
    start(2);
    pn_->curl("p0", kTokenQuery + kVault);
    pn_->curl("p1", kTokenQuery + kVault);
    RunResult base = node().run_in_pod("p0", helper("latency", {"200", "10"}), 60s);
    const long rss_before = rss_kb(pn_->agent().pid());
    Process noisy = node().spawn_in_pod("p1", helper("hammer", {"8", "6000"}));
    std::this_thread::sleep_for(500ms);
    RunResult loaded = node().run_in_pod("p0", helper("latency", {"300", "10"}), 60s);
    const long rss_during = rss_kb(pn_->agent().pid());
    RunResult hammer = noisy.wait(60s);
    std::cout << "[hardening] quiet pod alone: " << base.out << "[hardening] quiet pod under load: " << loaded.out
              << "[hardening] noisy pod: " << hammer.out << "[hardening] agent RSS " << rss_before << " kB -> "
              << rss_during << " kB\n";
    const double quiet_p99 = field(base.out, "p99"), loaded_p99 = field(loaded.out, "p99");
    ASSERT_GT(quiet_p99, 0) << base.out << base.err;
    EXPECT_EQ(field(loaded.out, "failures"), 0) << loaded.out;
    EXPECT_LE(loaded_p99, std::max(10 * quiet_p99, 5.0)) << loaded.out;
    expect_p99_within_target(loaded_p99, loaded.out);
    EXPECT_GT(field(hammer.out, "throttled"), 0) << "the noisy pod was never held to its rate: " << hammer.out;
#ifdef __SANITIZE_ADDRESS__  // ASan's quarantine holds up to 256 MB of freed memory by design
    std::cout << "[hardening] memory bound not checked: ASan's quarantine holds freed memory\n";
#else
    EXPECT_LT(rss_during - rss_before, 64 * 1024) << "memory grew under load";
#endif
}

}  // namespace
}  // namespace podid::test
