// The ring of recent connections behind `podidctl conns` (observe/recent_conns.h) and RecordedOrigins, the origin
// source that copies each kernel lookup into it.
#include "observe/recent_conns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace podid {
namespace {

TEST(RecentConnections, RingKeepsTheNewestFirst) {
    struct Row {
        const char* name;
        std::size_t capacity;
        int recorded;
        std::size_t limit;
        std::vector<uint64_t> want_seqs;  // latest(limit), newest first
        std::size_t want_capacity;
    };
    const std::vector<Row> rows = {
        {"empty", 4, 0, 10, {}, 4},
        {"one", 4, 1, 10, {1}, 4},
        {"not full", 4, 3, 10, {3, 2, 1}, 4},
        {"exactly full", 4, 4, 10, {4, 3, 2, 1}, 4},
        {"wrapped once", 4, 6, 10, {6, 5, 4, 3}, 4},
        {"wrapped many times", 3, 100, 10, {100, 99, 98}, 3},
        {"limit below the size", 4, 6, 2, {6, 5}, 4},
        {"limit zero", 4, 6, 0, {}, 4},
        {"capacity one", 1, 5, 10, {5}, 1},
        {"capacity zero counts as one", 0, 2, 10, {2}, 1},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        RecentConnections ring(row.capacity);
        for (int i = 1; i <= row.recorded; ++i) {
            ConnRecord r;
            r.seq = 999;  // assigned by the ring, whatever the caller set
            r.peer = "peer-" + std::to_string(i);
            ring.record(r);
        }
        EXPECT_EQ(ring.capacity(), row.want_capacity);
        EXPECT_EQ(ring.total(), static_cast<uint64_t>(row.recorded));
        const auto latest = ring.latest(row.limit);
        std::vector<uint64_t> seqs;
        for (const auto& r : latest) {
            seqs.push_back(r.seq);
            EXPECT_EQ(r.peer, "peer-" + std::to_string(r.seq));  // each record kept its own fields
        }
        EXPECT_EQ(seqs, row.want_seqs);
    }
}

sockaddr_storage ip4(const char* address, uint16_t port) {
    sockaddr_storage ss{};
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    EXPECT_EQ(::inet_pton(AF_INET, address, &a->sin_addr), 1) << address;
    return ss;
}

sockaddr_storage ip6(const char* address, uint16_t port) {
    sockaddr_storage ss{};
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    EXPECT_EQ(::inet_pton(AF_INET6, address, &a->sin6_addr), 1) << address;
    return ss;
}

sockaddr_storage unknown_family() { return sockaddr_storage{}; }  // AF_UNSPEC: accept() gave no address

// The kernel's side: a fixed answer, and what it was asked.
class FakeKernel : public OriginSource {
public:
    explicit FakeKernel(std::optional<Origin> answer) : answer_(std::move(answer)) {}
    std::optional<Origin> origin_of(const sockaddr_storage& peer, const sockaddr_storage& local) const override {
        ++asked;
        last_peer = peer;
        last_local = local;
        return answer_;
    }
    mutable int asked = 0;
    mutable sockaddr_storage last_peer{};
    mutable sockaddr_storage last_local{};

private:
    std::optional<Origin> answer_;
};

const Origin kPodOrigin{4242, 17, "python3", "169.254.169.254:80", true, 123456789};

TEST(RecordedOrigins, RecordsEachLookupAndReturnsTheKernelsOrigin) {
    struct Row {
        const char* name;
        sockaddr_storage peer, local;
        std::optional<Origin> kernel;
        bool kernel_asked;
        std::string want_peer;
        std::string want_listener;
    };
    const std::vector<Row> rows = {
        {"IPv4 on the node IP", ip4("10.0.0.2", 41234), ip4("10.0.0.4", 2579), kPodOrigin, true, "10.0.0.2:41234",
         "node"},
        {"IPv4 on the loopback listener", ip4("127.0.0.1", 50000), ip4("127.0.0.1", 2579), kPodOrigin, true,
         "127.0.0.1:50000", "loopback"},
        {"anywhere in 127/8 is loopback", ip4("10.0.0.2", 1), ip4("127.255.0.9", 2579), kPodOrigin, true, "10.0.0.2:1",
         "loopback"},
        {"128.0.0.1 is not", ip4("10.0.0.2", 1), ip4("128.0.0.1", 2579), kPodOrigin, true, "10.0.0.2:1", "node"},
        {"IPv6", ip6("fd00::2", 41234), ip6("fd00::4", 2579), kPodOrigin, true, "fd00::2:41234", "node"},
        {"IPv6 ::1 is not the loopback listener", ip6("::1", 40000), ip6("::1", 2579), kPodOrigin, true, "::1:40000",
         "node"},
        {"no kernel record", ip4("10.0.0.2", 41234), ip4("10.0.0.4", 2579), std::nullopt, true, "10.0.0.2:41234",
         "node"},
        {"unknown peer family: no lookup", unknown_family(), ip4("127.0.0.1", 2579), kPodOrigin, false, "", "node"},
        {"unknown local family: no lookup", ip4("10.0.0.2", 41234), unknown_family(), kPodOrigin, false, "", "node"},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        FakeKernel kernel(row.kernel);
        RecentConnections ring(8);
        RecordedOrigins origins(kernel, ring);
        const auto before =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        const std::optional<Origin> got = origins.origin_of(row.peer, row.local);
        const auto after =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();

        EXPECT_EQ(kernel.asked, row.kernel_asked ? 1 : 0);
        if (row.kernel_asked) {  // the kernel sees the addresses as accept() gave them
            EXPECT_EQ(std::memcmp(&kernel.last_peer, &row.peer, sizeof row.peer), 0);
            EXPECT_EQ(std::memcmp(&kernel.last_local, &row.local, sizeof row.local), 0);
        }
        const bool want_origin = row.kernel_asked && row.kernel.has_value();
        ASSERT_EQ(got.has_value(), want_origin);
        if (want_origin) {
            EXPECT_EQ(got->cgroup_id, row.kernel->cgroup_id);
            EXPECT_EQ(got->pid, row.kernel->pid);
            EXPECT_EQ(got->comm, row.kernel->comm);
            EXPECT_EQ(got->orig_dst, row.kernel->orig_dst);
            EXPECT_EQ(got->connect_ns, row.kernel->connect_ns);
        }

        ASSERT_EQ(ring.total(), 1u);  // every accepted connection is recorded, looked up or not
        const ConnRecord r = ring.latest(1).at(0);
        EXPECT_EQ(r.seq, 1u);
        EXPECT_EQ(r.peer, row.want_peer);
        EXPECT_EQ(r.listener, row.want_listener);
        EXPECT_GE(r.time_ms, before);
        EXPECT_LE(r.time_ms, after);
        ASSERT_EQ(r.origin.has_value(), want_origin);
        if (want_origin) {
            EXPECT_EQ(r.origin->cgroup_id, row.kernel->cgroup_id);
        }
    }
}

}  // namespace
}  // namespace podid
