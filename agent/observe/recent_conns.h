// The last connections the agent accepted and what the kernel said about each (`podidctl conns`).
//
// The origin record is deleted from the BPF map when the agent reads it at accept time, so the pinned maps cannot
// answer "who connected recently"; this ring keeps a bounded copy. Recording is one short mutex section per
// accepted connection (not per request), and nothing here is resolved at record time: cgroup paths and pods are
// looked up when someone asks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "datapath/origin.h"
#include "datapath/origin_source.h"

namespace podid {

struct ConnRecord {
    uint64_t seq = 0;              // 1, 2, ... in accept order (gaps show what the ring dropped)
    int64_t time_ms = 0;           // epoch milliseconds of the accept
    std::string peer;              // "10.77.0.2:41234" as the agent saw it (a source address; never used to attribute)
    std::string listener;          // "node" (node IP) or "loopback"
    std::optional<Origin> origin;  // nullopt: the kernel recorded nothing (the agent denies such connections)
};

class RecentConnections {
public:
    explicit RecentConnections(std::size_t capacity = 1024);

    void record(ConnRecord record);  // seq is assigned here
    // Newest first, at most `limit`.
    std::vector<ConnRecord> latest(std::size_t limit) const;
    uint64_t total() const;  // connections recorded since start
    std::size_t capacity() const { return capacity_; }

private:
    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::vector<ConnRecord> ring_;
    std::size_t next_ = 0;  // where the next record goes once the ring is full
    uint64_t total_ = 0;
};

// The agent's origin source: the kernel's record for each accepted connection, with a copy to the ring (the lookup
// deletes the record from the BPF map, so nothing else could show it later).
class RecordedOrigins : public OriginSource {
public:
    RecordedOrigins(const OriginSource& kernel, RecentConnections& recent) : kernel_(kernel), recent_(recent) {}
    std::optional<Origin> origin_of(const sockaddr_storage& peer, const sockaddr_storage& local) const override;

private:
    const OriginSource& kernel_;
    RecentConnections& recent_;
};

}  // namespace podid
