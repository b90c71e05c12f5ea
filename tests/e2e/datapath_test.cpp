// The interception datapath on a real kernel: real BPF programs attached at the test node's kubepods
// cgroup, pods in their own network namespaces, the IMDS stand-in on 169.254.169.254 in the node netns.
// The test process plays the agent here (Datapath::install in-process, a listener on the node IP), so
// every kernel behaviour is checked without the HTTP stack; agent_test.cpp runs the real agent.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/fd.h"
#include "datapath/datapath.h"
#include "datapath/probe.h"
#include "support/netns.h"
#include "support/node_fixture.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kNodeIp = "10.77.0.1";
constexpr const char* kMetadataIp = "169.254.169.254";
constexpr uint16_t kAgentPort = 2579;
const std::string kAgentEndpoint = std::string(kNodeIp) + ":" + std::to_string(kAgentPort);

Fd listen_in(const std::string& netns, const char* ip, uint16_t port, int type = SOCK_STREAM) {
    return Fd(listen_in_netns(netns, ip, port, type));
}

// Counts what reached the IMDS stand-in without accepting anything (backlog + UDP queue).
size_t drain_accepts(int listen_fd) {
    size_t n = 0;
    for (;;) {
        pollfd p{listen_fd, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0)
            return n;
        int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0)
            return n;
        close(c);
        ++n;
    }
}

// IP packets the node netns has received (Ip: InReceives), read from a thread inside it.
uint64_t node_ip_in_receives(const std::string& netns) {
    uint64_t value = 0;
    std::thread t([&] {
        Fd ns(open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC));
        if (!ns.valid() || setns(ns.get(), CLONE_NEWNET) != 0)
            return;
        std::ifstream snmp("/proc/thread-self/net/snmp");
        std::string header, values;
        while (std::getline(snmp, header) && std::getline(snmp, values)) {
            if (header.rfind("Ip:", 0) != 0)
                continue;
            std::istringstream hs(header), vs(values);
            std::string name, v;
            while (hs >> name && vs >> v)
                if (name == "InReceives")
                    value = std::stoull(v);
        }
    });
    t.join();
    return value;
}

struct Accepted {
    std::string peer_ip;
    std::optional<Origin> origin;
};

// The agent's side: accepts on the node IP, looks up the origin, answers a tiny HTTP response.
class FakeAgent {
public:
    FakeAgent(int listen_fd, const Datapath* const* dp) : fd_(listen_fd), dp_(dp) {
        thread_ = std::thread([this] { loop(); });
    }
    ~FakeAgent() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
    }
    std::vector<Accepted> take() {
        std::lock_guard lock(mu_);
        return std::exchange(accepted_, {});
    }

private:
    void loop() {
        while (!stop_) {
            sockaddr_in peer{};
            socklen_t len = sizeof(peer);
            int c = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
            if (c < 0) {
                if (stop_ || errno == EINVAL)
                    return;
                continue;
            }
            Accepted a;
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
            a.peer_ip = ip;
            a.origin = (*dp_)->origin_of(c);
            char buf[2048];
            timeval tv{2, 0};
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            recv(c, buf, sizeof(buf), 0);
            {
                // Recorded before the answer goes out: a test reads take() as soon as its client has the answer.
                std::lock_guard lock(mu_);
                accepted_.push_back(std::move(a));
            }
            const char res[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nagent";
            send(c, res, sizeof(res) - 1, MSG_NOSIGNAL);
            close(c);
        }
    }
    int fd_;
    const Datapath* const* dp_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<Accepted> accepted_;
    std::thread thread_;
};

class DatapathTest : public NodeFixture {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        build_test_node();
        node_->add_pod({.name = "a"});
        node_->add_pod({.name = "b", .qos = "besteffort"});
        agent_cgroup_ = node_->make_cgroup("kubepods.slice/kubepods-besteffort.slice/podid-agent.scope");
        imds_ = listen_in(node_->node_netns(), kMetadataIp, 80);
        imds_udp_ = listen_in(node_->node_netns(), kMetadataIp, 53, SOCK_DGRAM);
        agent_fd_ = listen_in(node_->node_netns(), kNodeIp, kAgentPort);
        install();
        agent_ = std::make_unique<FakeAgent>(agent_fd_.get(), &dp_ptr_);
    }

    void TearDown() override {
        agent_.reset();
        dp_.reset();
        dp_ptr_ = nullptr;
        NodeFixture::TearDown();
    }

    // How origins are recorded; the parameterised tests below run both ways where the kernel has both.
    virtual OriginRecording recording() const { return OriginRecording::automatic; }

    DatapathConfig config() const {
        DatapathConfig c;
        c.origin = recording();
        c.cgroup_root = node_->kubepods_dir();
        c.pin_dir = node_->bpffs() + "/podid";
        c.agent_ip4 = *parse_ip4(kNodeIp);
        c.agent_port = kAgentPort;
        c.exempt_cgroups = {cgroup_id_of(agent_cgroup_)};
        return c;
    }

    void install() {
        auto dp = Datapath::install(config());
        ASSERT_TRUE(dp.ok()) << dp.error().message;
        dp_ = std::make_unique<Datapath>(std::move(*dp));
        dp_ptr_ = dp_.get();
    }

    RunResult probe(const std::string& pod, std::vector<std::string> args) {
        args.insert(args.begin(), PODID_PROBE_BIN);
        return node_->run_in_pod(pod, args);
    }

    uint64_t counter(uint64_t cgroup_id, int slot) const {
        auto c = dp_->counters_of(cgroup_id);
        return c ? (*c)[slot] : 0;
    }

    std::string agent_cgroup_;
    Fd imds_, imds_udp_, agent_fd_;
    std::unique_ptr<Datapath> dp_;
    const Datapath* dp_ptr_ = nullptr;
    std::unique_ptr<FakeAgent> agent_;
};

// The origin of a redirected connection is recorded in one of two ways (bpf/podid.bpf.c): from the connecting task
// in sockops (newer kernels), or by the connect hook in socket storage (older kernels). Both run here when the kernel
// has both; the kernel matrix (kernel_matrix_test) runs whichever each older kernel picks.
class DatapathRecordingTest : public DatapathTest, public ::testing::WithParamInterface<OriginRecording> {
protected:
    void SetUp() override {
        if (GetParam() == OriginRecording::task && !sockops_reads_current_task())
            GTEST_SKIP() << "this kernel has no bpf_get_current_* in sockops (6.18 has them, 6.12 not)";
        DatapathTest::SetUp();
    }
    OriginRecording recording() const override { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Recording, DatapathRecordingTest,
                         ::testing::Values(OriginRecording::task, OriginRecording::socket_storage),
                         [](const ::testing::TestParamInfo<OriginRecording>& info) {
                             return info.param == OriginRecording::task ? std::string("task")
                                                                        : std::string("socket_storage");
                         });

// 1. A pod's HTTP request to 169.254.169.254 reaches the agent, with the kernel's record of who sent it.
TEST_P(DatapathRecordingTest, PodRequestIsRedirectedToAgentWithOrigin) {
    const Pod& a = node_->pod("a");
    auto r = probe("a", {"http", kMetadataIp, "80", "/metadata/identity/oauth2/token?resource=x"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("status=200 body=agent"), std::string::npos) << r.out;
    EXPECT_EQ(drain_accepts(imds_.get()), 0u) << "a pod connection reached the IMDS stand-in";

    auto accepted = agent_->take();
    ASSERT_EQ(accepted.size(), 1u);
    ASSERT_TRUE(accepted[0].origin.has_value()) << "no origin record for the redirected connection";
    EXPECT_EQ(accepted[0].origin->cgroup_id, a.cgroup_id);
    EXPECT_EQ(accepted[0].origin->comm, "podid-probe");
    EXPECT_GT(accepted[0].origin->pid, 1u);
    EXPECT_EQ(accepted[0].origin->orig_dst, "169.254.169.254:80");
    EXPECT_TRUE(accepted[0].origin->redirected);
    EXPECT_EQ(accepted[0].peer_ip, a.ip);
    EXPECT_EQ(counter(a.cgroup_id, PODID_CTR_REDIRECT4), 1u);
    EXPECT_EQ(dp_->origin_recording(), GetParam());
}

// The pid in the record is the connecting process's own.
TEST_P(DatapathRecordingTest, OriginPidIsTheConnectingProcess) {
    auto r = probe("a", {"tcp", kMetadataIp, "80"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto pos = r.out.find("pid=");
    ASSERT_NE(pos, std::string::npos);
    uint32_t pid = static_cast<uint32_t>(std::stoul(r.out.substr(pos + 4)));
    std::this_thread::sleep_for(100ms);
    auto accepted = agent_->take();
    ASSERT_EQ(accepted.size(), 1u);
    ASSERT_TRUE(accepted[0].origin);
    EXPECT_EQ(accepted[0].origin->pid, pid);
}

// 2. The application still sees 169.254.169.254:80 as its peer.
TEST_P(DatapathRecordingTest, GetpeernameShowsMetadataAddress) {
    auto r = probe("a", {"tcp", kMetadataIp, "80"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("peer=169.254.169.254:80"), std::string::npos) << r.out;
}

// 3. IPv4-mapped IPv6 on a dual-stack socket goes through connect6: redirected too, peer rewritten too.
TEST_P(DatapathRecordingTest, V4MappedIpv6IsRedirected) {
    const Pod& b = node_->pod("b");
    auto r = probe("b", {"tcp", kMetadataIp, "80", "--v6mapped"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("peer=[::ffff:169.254.169.254]:80"), std::string::npos) << r.out;
    std::this_thread::sleep_for(100ms);
    auto accepted = agent_->take();
    ASSERT_EQ(accepted.size(), 1u);
    ASSERT_TRUE(accepted[0].origin);
    EXPECT_EQ(accepted[0].origin->cgroup_id, b.cgroup_id);
    EXPECT_EQ(drain_accepts(imds_.get()), 0u);
    EXPECT_EQ(counter(b.cgroup_id, PODID_CTR_REDIRECT6), 1u);
}

// 4. Raw TCP SYN, UDP, ICMP and other ports to 169.254.169.254 never leave the pod.
TEST_F(DatapathTest, RawUdpIcmpAndOtherPortsAreBlocked) {
    const Pod& a = node_->pod("a");
    uint64_t before = node_ip_in_receives(node_->node_netns());

    auto syn = probe("a", {"raw-syn", kMetadataIp, "80"});
    EXPECT_NE(syn.exit_code, 0) << "raw SYN was sent: " << syn.out;
    EXPECT_NE(syn.out.find("errno=1 "), std::string::npos) << syn.out;  // EPERM from the egress filter
    auto udp = probe("a", {"udp", kMetadataIp, "53"});
    EXPECT_NE(udp.exit_code, 0) << udp.out;
    auto icmp = probe("a", {"icmp", kMetadataIp});
    EXPECT_NE(icmp.exit_code, 0) << icmp.out;
    auto other_port = probe("a", {"tcp", kMetadataIp, "443"});
    EXPECT_NE(other_port.exit_code, 0) << other_port.out;

    uint64_t after = node_ip_in_receives(node_->node_netns());
    EXPECT_EQ(after, before) << "IP packets from the pod reached the node";
    EXPECT_EQ(drain_accepts(imds_.get()), 0u);
    char buf[64];
    EXPECT_LT(recv(imds_udp_.get(), buf, sizeof(buf), MSG_DONTWAIT), 0) << "UDP reached the IMDS stand-in";

    EXPECT_EQ(counter(a.cgroup_id, PODID_CTR_DROP_TCP), 1u);
    EXPECT_EQ(counter(a.cgroup_id, PODID_CTR_DROP_UDP), 1u);
    EXPECT_EQ(counter(a.cgroup_id, PODID_CTR_DROP_ICMP), 1u);
    EXPECT_EQ(counter(a.cgroup_id, PODID_CTR_DENY_PORT), 1u);
}

// A raw socket cannot talk to the agent's port either (a forged tuple would borrow another pod's record).
TEST_F(DatapathTest, RawTcpToAgentIsBlocked) {
    const Pod& a = node_->pod("a");
    auto syn = probe("a", {"raw-syn", kNodeIp, std::to_string(kAgentPort)});
    EXPECT_NE(syn.exit_code, 0) << syn.out;
    EXPECT_EQ(counter(a.cgroup_id, PODID_CTR_DROP_RAW_AGENT), 1u);
}

// 5. Outside the cgroup root, and in the exempt cgroup, 169.254.169.254 is reached untouched.
TEST_F(DatapathTest, NodeProcessesAndExemptCgroupReachImds) {
    auto outside = node_->run_in_node({PODID_PROBE_BIN, "tcp", kMetadataIp, "80"}, node_->system_cgroup("kubelet"));
    ASSERT_EQ(outside.exit_code, 0) << outside.out << outside.err;
    auto exempt = node_->run_in_node({PODID_PROBE_BIN, "tcp", kMetadataIp, "80"}, agent_cgroup_);
    ASSERT_EQ(exempt.exit_code, 0) << exempt.out << exempt.err;
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(drain_accepts(imds_.get()), 2u);
    EXPECT_TRUE(agent_->take().empty());
    auto udp = node_->run_in_node({PODID_PROBE_BIN, "udp", kMetadataIp, "53"}, agent_cgroup_);
    EXPECT_EQ(udp.exit_code, 0) << udp.out;
}

// 6. Two pods, hundreds of connections at once: every record names the pod that connected.
TEST_P(DatapathRecordingTest, ConcurrentPodsNeverMixUpOrigins) {
    const Pod& a = node_->pod("a");
    const Pod& b = node_->pod("b");
    constexpr int kPerPod = 300;
    auto pa = node_->spawn_in_pod("a", {PODID_PROBE_BIN, "loop", kMetadataIp, "80", "/", std::to_string(kPerPod)});
    auto pb = node_->spawn_in_pod("b", {PODID_PROBE_BIN, "loop", kMetadataIp, "80", "/", std::to_string(kPerPod)});
    auto ra = pa.wait(60s);
    auto rb = pb.wait(60s);
    ASSERT_EQ(ra.exit_code, 0) << ra.out << ra.err;
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    std::this_thread::sleep_for(200ms);
    auto accepted = agent_->take();
    ASSERT_EQ(accepted.size(), 2u * kPerPod);
    int from_a = 0, from_b = 0;
    for (const auto& acc : accepted) {
        ASSERT_TRUE(acc.origin) << "connection from " << acc.peer_ip << " has no origin";
        if (acc.peer_ip == a.ip) {
            EXPECT_EQ(acc.origin->cgroup_id, a.cgroup_id);
            ++from_a;
        } else {
            EXPECT_EQ(acc.peer_ip, b.ip);
            EXPECT_EQ(acc.origin->cgroup_id, b.cgroup_id);
            ++from_b;
        }
    }
    EXPECT_EQ(from_a, kPerPod);
    EXPECT_EQ(from_b, kPerPod);
    EXPECT_EQ(drain_accepts(imds_.get()), 0u);
}

// 8. Swapping the programs (a second install takes the pinned links over) while a pod connects in a
// loop: every connection still lands on the agent, none on the stand-in.
TEST_P(DatapathRecordingTest, ProgramSwapUnderLoadLosesNoRedirect) {
    constexpr int kCount = 400;
    auto loop = node_->spawn_in_pod("a", {PODID_PROBE_BIN, "loop", kMetadataIp, "80", "/", std::to_string(kCount)});
    for (int i = 0; i < 5; ++i) {
        std::this_thread::sleep_for(20ms);
        auto again = Datapath::install(config());
        ASSERT_TRUE(again.ok()) << again.error().message;
        for (const auto& r : again->report())
            EXPECT_EQ(r.how, "updated pinned link") << r.program;
        auto old = std::move(dp_);
        dp_ = std::make_unique<Datapath>(std::move(*again));
        dp_ptr_ = dp_.get();
        std::this_thread::sleep_for(5ms);  // the accept thread may still hold the old pointer briefly
        old.reset();
    }
    auto r = loop.wait(60s);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(drain_accepts(imds_.get()), 0u);
    std::this_thread::sleep_for(200ms);
    auto accepted = agent_->take();
    EXPECT_EQ(accepted.size(), static_cast<size_t>(kCount));
    size_t without_origin = 0;
    for (const auto& a : accepted)
        without_origin += a.origin ? 0 : 1;
    EXPECT_EQ(without_origin, 0u) << "connections made while the programs were swapped lost their origin";
}

// A connect straight to the agent's endpoint is recorded as direct, and its peer is not disguised.
TEST_P(DatapathRecordingTest, DirectConnectToAgentIsRecordedAndNotRewritten) {
    const Pod& a = node_->pod("a");
    auto r = probe("a", {"tcp", kNodeIp, std::to_string(kAgentPort)});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("peer=" + kAgentEndpoint), std::string::npos) << r.out;
    std::this_thread::sleep_for(100ms);
    auto accepted = agent_->take();
    ASSERT_EQ(accepted.size(), 1u);
    ASSERT_TRUE(accepted[0].origin) << "no origin record for a direct connect";
    EXPECT_EQ(accepted[0].origin->cgroup_id, a.cgroup_id);
    EXPECT_FALSE(accepted[0].origin->redirected);
    EXPECT_EQ(accepted[0].origin->orig_dst, kAgentEndpoint);
    EXPECT_EQ(counter(a.cgroup_id, PODID_CTR_AGENT_DIRECT), 1u);
    EXPECT_EQ(counter(a.cgroup_id, PODID_CTR_REDIRECT4), 0u);
}

// The exempt cgroup (the agent's own) reaching the agent endpoint is neither recorded nor disguised: nothing
// was redirected, so nothing may claim it was.
TEST_P(DatapathRecordingTest, ExemptCgroupAtTheAgentEndpointGetsNoRecord) {
    auto r = node_->run_in_node({PODID_PROBE_BIN, "tcp", kNodeIp, std::to_string(kAgentPort)}, agent_cgroup_);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("peer=" + kAgentEndpoint), std::string::npos) << r.out;
    std::this_thread::sleep_for(100ms);
    auto accepted = agent_->take();
    ASSERT_EQ(accepted.size(), 1u);
    EXPECT_FALSE(accepted[0].origin) << "an exempt connection got an origin record";
}

// Switching how origins are recorded (an upgrade from a kernel-agnostic agent, or back): between any two link
// updates a pod's connection is still redirected and attributed. The program that bridges both ways (the task
// sockops also copies socket-storage records) goes in first on the way up and last on the way down.
TEST_F(DatapathTest, SwitchingOriginRecordingLeavesNoWindowWithoutOrigin) {
    if (!sockops_reads_current_task())
        GTEST_SKIP() << "this kernel has no bpf_get_current_* in sockops (6.18 has them, 6.12 not)";
    for (auto [from, to] : {std::pair{OriginRecording::socket_storage, OriginRecording::task},
                            std::pair{OriginRecording::task, OriginRecording::socket_storage}}) {
        DatapathConfig first = config();
        first.origin = from;
        auto before = Datapath::install(first);
        ASSERT_TRUE(before.ok()) << before.error().message;
        dp_ = std::make_unique<Datapath>(std::move(*before));
        dp_ptr_ = dp_.get();
        agent_->take();

        DatapathConfig next = config();
        next.origin = to;
        std::vector<std::string> missing;
        int steps = 0;
        next.after_each_link = [&](const std::string& program) {
            ++steps;
            auto r = probe("a", {"tcp", kMetadataIp, "80"});
            std::this_thread::sleep_for(50ms);
            auto accepted = agent_->take();
            if (r.exit_code != 0 || accepted.size() != 1 || !accepted[0].origin)
                missing.push_back(program + " (exit " + std::to_string(r.exit_code) + ", " +
                                  std::to_string(accepted.size()) + " accepted)");
        };
        auto after = Datapath::install(next);
        ASSERT_TRUE(after.ok()) << after.error().message;
        EXPECT_EQ(after->origin_recording(), to);
        EXPECT_EQ(steps, 6);
        EXPECT_TRUE(missing.empty()) << origin_recording_name(from) << " -> " << origin_recording_name(to)
                                     << ": no origin for a connection made right after swapping in "
                                     << ::testing::PrintToString(missing);
        dp_ = std::make_unique<Datapath>(std::move(*after));
        dp_ptr_ = dp_.get();
    }
    EXPECT_EQ(drain_accepts(imds_.get()), 0u);
}

// Pins outlive the loader: with no loader process holding anything, pods are still redirected.
TEST_F(DatapathTest, PinnedLinksOutliveTheLoader) {
    dp_.reset();  // closes every fd this process held; only the pins remain
    dp_ptr_ = nullptr;
    agent_.reset();
    agent_fd_.reset();  // nobody listens: the redirect must fail closed (refused), not fall through
    auto r = probe("a", {"tcp", kMetadataIp, "80"});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("errno=111"), std::string::npos) << r.out;  // ECONNREFUSED
    EXPECT_EQ(drain_accepts(imds_.get()), 0u);
}

// uninstall removes every pin and detaches every program; a stale pin (cgroup gone) is replaced.
TEST_F(DatapathTest, UninstallDetachesEverything) {
    std::string pin_dir = node_->bpffs() + "/podid";
    for (const auto& name : datapath_pin_names())
        EXPECT_TRUE(std::filesystem::exists(pin_dir + "/" + name)) << name;
    agent_.reset();
    dp_.reset();
    dp_ptr_ = nullptr;
    auto u = Datapath::uninstall(pin_dir);
    ASSERT_TRUE(u.ok()) << u.error().message;
    EXPECT_FALSE(std::filesystem::exists(pin_dir));
    // Without programs the pod reaches the stand-in directly again (that is what uninstall means).
    auto r = probe("a", {"tcp", kMetadataIp, "80"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("peer=169.254.169.254:80"), std::string::npos);
    EXPECT_EQ(drain_accepts(imds_.get()), 1u);
}

TEST_F(DatapathTest, StalePinWhoseCgroupIsGoneIsReplaced) {
    // Attach a second set at a throwaway cgroup, then remove that cgroup: its links go stale.
    std::string doomed = node_->make_cgroup("kubepods.slice/doomed.slice");
    DatapathConfig c = config();
    c.cgroup_root = doomed;
    c.pin_dir = node_->bpffs() + "/stale";
    {
        auto dp = Datapath::install(c);
        ASSERT_TRUE(dp.ok()) << dp.error().message;
    }
    ASSERT_EQ(rmdir(doomed.c_str()), 0) << strerror(errno);
    c.cgroup_root = node_->kubepods_dir();
    auto dp = Datapath::install(c);
    ASSERT_TRUE(dp.ok()) << dp.error().message;
    for (const auto& r : dp->report())
        EXPECT_EQ(r.how.rfind("re-attached", 0), 0u) << r.program << ": " << r.how;
    ASSERT_TRUE(Datapath::uninstall(c.pin_dir).ok());
}

TEST_F(DatapathTest, ClearErrorWhenCgroupRootIsMissing) {
    DatapathConfig c = config();
    c.cgroup_root = node_->cgroup_root() + "/does-not-exist";
    auto dp = Datapath::install(c);
    ASSERT_FALSE(dp.ok());
    EXPECT_NE(dp.error().message.find("cannot open the cgroup root"), std::string::npos) << dp.error().message;
}

}  // namespace
}  // namespace podid::test
