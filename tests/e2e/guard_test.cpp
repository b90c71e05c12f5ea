// The interface guard end to end: a pod with CAP_NET_RAW writes whole Ethernet frames (IPv4 + TCP SYN) to
// 169.254.169.254 through AF_PACKET, below every cgroup hook. A sniffer on the node's bridge counts which frames
// got past the pod's host-side interface. With the agent's tc guard none do (also for a pod created after the
// agent started, and while the agent is killed); frames to the node IP pass; `podid-agent uninstall` removes the
// guard, and then the same frames do reach the node (so the test can fail).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "common/fd.h"
#include "datapath/guard.h"
#include "support/node_fixture.h"

namespace podid::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Counts IPv4 frames on br0 of the node netns by destination, while it runs.
class BridgeSniffer {
public:
    explicit BridgeSniffer(const std::string& netns) {
        std::atomic<bool> ready{false};
        thread_ = std::thread([this, netns, &ready] {
            Fd ns(::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC));
            if (!ns.valid() || ::setns(ns.get(), CLONE_NEWNET) != 0) {
                ready = true;
                return;
            }
            Fd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_IP)));
            sockaddr_ll addr{};
            addr.sll_family = AF_PACKET;
            addr.sll_protocol = htons(ETH_P_IP);
            addr.sll_ifindex = static_cast<int>(if_nametoindex("br0"));
            ok_ = fd.valid() && addr.sll_ifindex != 0 &&
                  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
            ready = true;
            unsigned char buf[2048];
            while (!stop_) {
                pollfd p{fd.get(), POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0)
                    continue;
                ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
                if (n < static_cast<ssize_t>(ETH_HLEN + sizeof(iphdr)))
                    continue;
                iphdr ip;  // copied out: at offset 14 of the frame it is not 4-byte aligned
                std::memcpy(&ip, buf + ETH_HLEN, sizeof(ip));
                if (ip.protocol != IPPROTO_TCP)
                    continue;
                std::lock_guard lock(mu_);
                ++seen_[ip.daddr];
            }
        });
        while (!ready)
            std::this_thread::sleep_for(1ms);
    }
    ~BridgeSniffer() {
        stop_ = true;
        thread_.join();
    }
    bool ok() const { return ok_; }
    int seen(const char* ip) {
        std::lock_guard lock(mu_);
        return seen_[::inet_addr(ip)];
    }

private:
    std::thread thread_;
    std::atomic<bool> stop_{false};
    bool ok_ = false;
    std::mutex mu_;
    std::map<uint32_t, int> seen_;
};

class GuardTest : public NodeFixture {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp());
        build_podid_node();
    }

    // Sends `count` AF_PACKET SYN frames from `pod` to ip:80 and returns how many reached the bridge.
    int frames_through(const std::string& pod, const char* ip, int count = 3) {
        BridgeSniffer sniffer(pn_->node().node_netns());
        EXPECT_TRUE(sniffer.ok());
        for (int i = 0; i < count; ++i) {
            RunResult r = pn_->node().run_in_pod(pod, {PODID_PROBE_BIN, "packet-syn", ip, "80"});
            EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        }
        std::this_thread::sleep_for(200ms);
        return sniffer.seen(ip);
    }

    uint64_t dropped_v4() {
        auto c = InterfaceGuard::read_pinned_counters(pn_->pin_dir());
        EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
        return c.ok() ? (*c)[PODID_GUARD_DROP_V4] : 0;
    }
};

TEST_F(GuardTest, AfPacketFramesToTheMetadataAddressNeverLeaveThePodInterface) {
    pn_->add_pod({.name = "early"});
    pn_->start_emulator();
    pn_->start_agent();

    EXPECT_EQ(frames_through("early", "169.254.169.254"), 0) << "AF_PACKET frames to IMDS got past the guard";
    EXPECT_EQ(dropped_v4(), 3u);
    EXPECT_EQ(frames_through("early", "10.77.0.1"), 3) << "frames to other addresses are not the guard's business";

    // A pod whose interface appears after the agent started is guarded as soon as rtnetlink announces it.
    pn_->add_pod({.name = "late"});
    json status;
    for (int i = 0; i < 50; ++i) {
        RunResult r = pn_->node().run(
            {PODIDCTL_BIN, "--socket", pn_->admin_socket_path(), "--bpffs", pn_->pin_dir(), "status", "-o", "json"}, "",
            "");
        status = json::parse(r.out, nullptr, false);
        if (status.is_object() && status["agent"]["interface_guard"]["interfaces"].size() == 2)
            break;
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(status["agent"]["interface_guard"]["interfaces"].size(), 2u) << status.dump();
    EXPECT_EQ(frames_through("late", "169.254.169.254"), 0);

    // Fail closed: the filters belong to the interfaces' qdiscs, not to the agent process.
    pn_->kill_agent();
    EXPECT_EQ(frames_through("early", "169.254.169.254"), 0) << "with the agent killed";

    // Uninstall removes the guard; now the very same frames reach the node.
    RunResult un = pn_->node().run_in_node({PODID_AGENT_BIN, "uninstall", "--bpffs", pn_->pin_dir()});
    EXPECT_EQ(un.exit_code, 0) << un.err;
    EXPECT_NE(un.err.find("removed the interface guard from 2 interfaces"), std::string::npos) << un.err;
    EXPECT_EQ(frames_through("early", "169.254.169.254"), 3) << "without the guard the frames do arrive";
}

}  // namespace
}  // namespace podid::test
