// The self-check and the BPF per-pod collector on a real kernel: real programs attached at the test node's kubepods
// cgroup, the test process playing the agent (a listener on the node IP that answers /_podid/selfcheck with the
// origin the kernel recorded), and the self-check run from the node netns as the agent would run it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "common/fd.h"
#include "datapath/datapath.h"
#include "observe/bpf_collector.h"
#include "observe/metrics.h"
#include "observe/selfcheck.h"
#include "support/netns.h"
#include "support/node_fixture.h"

namespace podid::test {
namespace {

constexpr const char* kNodeIp = "10.77.0.1";
constexpr uint16_t kAgentPort = 2579;

Fd listen_on_node(const std::string& netns) { return Fd(listen_in_netns(netns, kNodeIp, kAgentPort, SOCK_STREAM)); }

// Answers every connection as the agent's /_podid/selfcheck route does: the origin cgroup id, or 0 without one.
class SelfCheckRoute {
public:
    SelfCheckRoute(int fd, const Datapath& dp, uint64_t lie = 0) : fd_(fd), dp_(dp), lie_(lie) {
        thread_ = std::thread([this] {
            for (;;) {
                Fd c(accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC));
                if (!c.valid())
                    return;
                auto origin = dp_.origin_of(c.get());
                char buf[1024];
                (void)!read(c.get(), buf, sizeof(buf));
                std::string body = selfcheck_body(lie_ ? lie_ : origin ? origin->cgroup_id : 0);
                std::string res = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                                  "\r\nConnection: close\r\n\r\n" + body;
                (void)!write(c.get(), res.data(), res.size());
            }
        });
    }
    ~SelfCheckRoute() {
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
    }

private:
    int fd_;
    const Datapath& dp_;
    uint64_t lie_;
    std::thread thread_;
};

// The agent runs in the node's network namespace (hostNetwork); so must the self-check's child.
SelfCheckStatus run_in_netns(const std::string& netns, SelfCheck& check) {
    SelfCheckStatus st;
    st.detail = "setns failed";
    std::thread t([&] {
        Fd ns(open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC));
        if (!ns.valid() || setns(ns.get(), CLONE_NEWNET) != 0)
            return;
        st = check.run_once();
    });
    t.join();
    return st;
}

class MetricsE2E : public NodeFixture {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        build_test_node();
        agent_fd_ = listen_on_node(node_->node_netns());
        DatapathConfig c;
        c.cgroup_root = node_->kubepods_dir();
        c.pin_dir = node_->bpffs() + "/podid";
        c.agent_ip4 = *parse_ip4(kNodeIp);
        c.agent_port = kAgentPort;
        auto dp = Datapath::install(c);
        ASSERT_TRUE(dp.ok()) << dp.error().message;
        dp_ = std::make_unique<Datapath>(std::move(*dp));
    }
    void TearDown() override {
        dp_.reset();
        NodeFixture::TearDown();
    }
    SelfCheckOptions options() const {
        SelfCheckOptions o;
        o.cgroup_root = node_->kubepods_dir();
        o.timeout = std::chrono::milliseconds(3000);
        return o;
    }

    Fd agent_fd_;
    std::unique_ptr<Datapath> dp_;
};

TEST_F(MetricsE2E, SelfCheckPassesThroughTheRedirectAndCountsUnderNode) {
    SelfCheckRoute route(agent_fd_.get(), *dp_);
    {
        SelfCheck check(options());
        auto st = run_in_netns(node_->node_netns(), check);
        EXPECT_TRUE(st.passed) << st.detail;
        ASSERT_NE(check.cgroup_id(), 0u);
        auto counters = dp_->counters_of(check.cgroup_id());
        ASSERT_TRUE(counters.has_value()) << "no BPF counters for the self-check cgroup";
        EXPECT_GE((*counters)[PODID_CTR_REDIRECT4], 1u);

        // The self-check cgroup is not a pod: its redirects are counted under pod="_node".
        BpfCollectorSources s;
        s.counters = [this] { return dp_->counters(); };
        const std::string mount = node_->cgroup2_mount();
        s.cgroup_path = [&](uint64_t id) -> std::optional<std::string> {
            if (id == check.cgroup_id())
                return check.cgroup_path().substr(mount.size());
            return std::nullopt;
        };
        BpfCollector collector(s);
        Metrics m("e2e");
        m.add_collectable(&collector);
        auto text = m.scrape();
        EXPECT_NE(text.find(R"(podid_redirected_connections_total{namespace="",pod="_node"} )"), std::string::npos)
            << text;
        EXPECT_TRUE(std::filesystem::exists(check.cgroup_path()));
    }
    EXPECT_FALSE(std::filesystem::exists(node_->kubepods_dir() + "/podid-selfcheck.scope"))
        << "the self-check cgroup is removed when the check is destroyed";
}

TEST_F(MetricsE2E, SelfCheckFailsWhenTheOriginIsNotItsCgroup) {
    SelfCheckRoute liar(agent_fd_.get(), *dp_, /*lie=*/12345);
    SelfCheck check(options());
    auto st = run_in_netns(node_->node_netns(), check);
    EXPECT_FALSE(st.passed);
    EXPECT_NE(st.detail.find("origin recorded as cgroup 12345"), std::string::npos) << st.detail;
}

TEST_F(MetricsE2E, SelfCheckFailsWithoutTheDatapath) {
    dp_.reset();
    ASSERT_TRUE(Datapath::uninstall(node_->bpffs() + "/podid").ok());
    SelfCheck check(options());
    auto st = run_in_netns(node_->node_netns(), check);
    EXPECT_FALSE(st.passed) << "without the redirect the check must not pass: " << st.detail;
}

}  // namespace
}  // namespace podid::test
