#include "observe/recent_conns.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>

#include "common/ip_text.h"

namespace podid {

RecentConnections::RecentConnections(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {
    ring_.reserve(capacity_);
}

void RecentConnections::record(ConnRecord record) {
    std::lock_guard lock(mu_);
    record.seq = ++total_;
    if (ring_.size() < capacity_) {
        ring_.push_back(std::move(record));
        return;
    }
    ring_[next_] = std::move(record);
    next_ = (next_ + 1) % capacity_;
}

std::vector<ConnRecord> RecentConnections::latest(std::size_t limit) const {
    std::lock_guard lock(mu_);
    std::vector<ConnRecord> out;
    const std::size_t n = std::min(limit, ring_.size());
    out.reserve(n);
    // The newest record sits just before next_ once the ring has wrapped, else at the back.
    const std::size_t newest = ring_.size() < capacity_ ? ring_.size() - 1 : (next_ + capacity_ - 1) % capacity_;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(ring_[(newest + ring_.size() - i) % ring_.size()]);
    return out;
}

uint64_t RecentConnections::total() const {
    std::lock_guard lock(mu_);
    return total_;
}

std::optional<Origin> RecordedOrigins::origin_of(const sockaddr_storage& peer, const sockaddr_storage& local) const {
    // The same addresses serve both the kernel lookup and the ring.
    const bool known = peer.ss_family != AF_UNSPEC && local.ss_family != AF_UNSPEC;
    std::optional<Origin> origin = known ? kernel_.origin_of(peer, local) : std::nullopt;
    ConnRecord r;
    r.time_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    if (known)
        r.peer = format_sockaddr(peer);
    const bool loopback = known && local.ss_family == AF_INET &&
                          (ntohl(reinterpret_cast<const sockaddr_in*>(&local)->sin_addr.s_addr) >> 24) == 127;
    r.listener = loopback ? "loopback" : "node";
    r.origin = origin;
    recent_.record(std::move(r));
    return origin;
}

}  // namespace podid
