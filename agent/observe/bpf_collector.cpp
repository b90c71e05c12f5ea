#include "observe/bpf_collector.h"

#include "caller/kubelet_cgroup.h"
#include "observe/metric_family.h"
#include "observe/metrics.h"

namespace podid {

namespace pm = prometheus;

bool is_redirect_slot(int slot) { return slot == PODID_CTR_REDIRECT4 || slot == PODID_CTR_REDIRECT6; }

bool is_blocked_slot(int slot) {
    return counter_name(slot) != nullptr && !is_redirect_slot(slot) && slot != PODID_CTR_AGENT_DIRECT;
}

BpfCollector::BpfCollector(BpfCollectorSources sources) : sources_(std::move(sources)) {}

std::optional<BpfCollector::PodKey> BpfCollector::pod_of(uint64_t cgroup_id) const {
    {
        // A cgroup belongs to one pod for its whole life, so a resolution stays true; this also keeps the
        // counts of exited containers with their pod.
        std::lock_guard lock(mu_);
        if (auto it = known_.find(cgroup_id); it != known_.end())
            return it->second;
    }
    if (!sources_.cgroup_path)
        return PodKey{"", kNodePodLabel};
    auto path = sources_.cgroup_path(cgroup_id);
    if (!path)
        return std::nullopt;
    auto ref = parse_kubelet_cgroup(*path, sources_.kubepods_root);
    if (!ref || !sources_.pod_by_uid)
        return PodKey{"", kNodePodLabel};
    auto pod = sources_.pod_by_uid(ref->uid);
    if (!pod)
        return PodKey{"", kNodePodLabel};  // not remembered: the pod may show up in the directory later
    PodKey key{pod->ns, pod->name};
    std::lock_guard lock(mu_);
    known_[cgroup_id] = key;
    return key;
}

std::vector<pm::MetricFamily> BpfCollector::Collect() const {
    if (!sources_.counters)
        return {};
    auto counters = sources_.counters();

    struct Sums {
        uint64_t redirected = 0;
        std::map<int, uint64_t> blocked;
    };
    std::map<PodKey, Sums> pods;
    for (const auto& [id, c] : counters) {
        auto key = pod_of(id);
        if (!key)
            continue;
        auto& sums = pods[*key];
        for (int slot = 0; slot < PODID_CTR_MAX; ++slot) {
            if (is_redirect_slot(slot))
                sums.redirected += c[slot];
            else if (is_blocked_slot(slot) && c[slot] > 0)
                sums.blocked[slot] += c[slot];
        }
    }
    {
        // Ids the map no longer holds (forgotten or aged out) will never be asked again.
        std::lock_guard lock(mu_);
        std::erase_if(known_, [&](const auto& entry) { return !counters.contains(entry.first); });
    }

    auto redirected = metric_family("podid_redirected_connections_total",
                                    "Connections to 169.254.169.254 the BPF hooks redirected to the agent, by pod.",
                                    pm::MetricType::Counter);
    auto blocked = metric_family("podid_blocked_packets_total",
                                 "Connections and packets to the metadata endpoint the BPF hooks refused or dropped "
                                 "(bypass attempts), by pod and reason.",
                                 pm::MetricType::Counter);
    for (const auto& [key, sums] : pods) {
        add_sample(redirected, {{"namespace", key.ns}, {"pod", key.name}}, static_cast<double>(sums.redirected));
        for (const auto& [slot, n] : sums.blocked)
            add_sample(blocked, {{"namespace", key.ns}, {"pod", key.name}, {"reason", counter_name(slot)}},
                       static_cast<double>(n));
    }
    std::vector<pm::MetricFamily> out;
    out.push_back(std::move(redirected));
    out.push_back(std::move(blocked));
    return out;
}

void BpfCollector::forget_pod(const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    std::erase_if(known_, [&](const auto& entry) { return entry.second.ns == ns && entry.second.name == name; });
}

size_t BpfCollector::remembered() const {
    std::lock_guard lock(mu_);
    return known_.size();
}

}  // namespace podid
