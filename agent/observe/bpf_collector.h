// podid_redirected_connections_total and podid_blocked_packets_total per pod, read from the BPF per-cgroup
// counters when Prometheus scrapes (nothing polls the map in between).
//
// The map is keyed by cgroup id (one per container, plus pod-level cgroups); a series is per pod, so ids are
// resolved cgroup id -> cgroup path -> kubelet pod UID -> pod and summed over the pod's containers. An id whose
// cgroup exists but is not a known pod (a host process, a pod not in the directory yet) counts under
// namespace="" pod="_node". A pod keeps the counts of containers that already exited (their ids are remembered
// while the map still holds them), so its counters do not go backwards when a container restarts; an id never
// resolved before and whose cgroup is gone is left out.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "caller/caller.h"
#include "datapath/datapath.h"

namespace podid {

struct BpfCollectorSources {
    // Datapath::counters (or Datapath::read_pinned_counters).
    std::function<std::map<uint64_t, CgroupCounters>()> counters;
    // CgroupPathResolver::path_of: "/kubepods.slice/..." or nullopt when the cgroup is gone.
    std::function<std::optional<std::string>(uint64_t cgroup_id)> cgroup_path;
    // The kubepods root relative to the cgroup2 mount (kubelet_cgroup.h); paths elsewhere are never pods.
    std::string kubepods_root = "/";
    // The pod directory: pod by UID; empty (standalone mode) or nullopt = not a known pod.
    std::function<std::optional<PodInfo>(const std::string& uid)> pod_by_uid;
};

// Which counter slots are redirects and which are blocked attempts (everything named that is neither a redirect
// nor agent_direct, an app connecting to the agent's endpoint itself).
bool is_redirect_slot(int slot);
bool is_blocked_slot(int slot);

class BpfCollector : public prometheus::Collectable {
public:
    explicit BpfCollector(BpfCollectorSources sources);
    std::vector<prometheus::MetricFamily> Collect() const override;

    // A pod was deleted: stop attributing its cgroups to it (ids whose cgroup is gone are then left out).
    void forget_pod(const std::string& ns, const std::string& name);

    // Number of remembered cgroup id -> pod resolutions (bounded by the ids in the counters map).
    size_t remembered() const;

private:
    struct PodKey {
        std::string ns, name;
        auto operator<=>(const PodKey&) const = default;
    };
    std::optional<PodKey> pod_of(uint64_t cgroup_id) const;

    BpfCollectorSources sources_;
    mutable std::mutex mu_;
    mutable std::unordered_map<uint64_t, PodKey> known_;
};

}  // namespace podid
