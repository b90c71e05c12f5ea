// The agent's Prometheus metrics (prefix podid_): request outcomes per pod and per node, the token cache,
// upstream IMDS health, and the state of the Kubernetes watches and BPF programs.
//
// Events (requests, connections, upstream attempts) update prometheus-cpp metrics as they happen; values that
// already live elsewhere (cache stats, tracked pods, attached programs) are read from providers at scrape time,
// so nothing has to be copied on a timer. Every provider may be empty (standalone mode, or a part not wired):
// its metrics are then left out of the scrape rather than reported as zero.
//
// Per-pod series are bounded by the pods on the node: forget_pod() drops a deleted pod's label sets, and callers
// that are not known pods are labelled by the bindings file entry that matched them (namespace="" pod="binding:web",
// standalone mode: a set the file bounds) or aggregated under namespace="" pod="_node" (never one series per cgroup).
//
// on_request() runs inline on the I/O threads for every request, so it never builds a label set once a series
// exists: series are created on first use (a scrape shows only what happened) and their handles kept, in fixed
// arrays for the node-wide series and in a per-pod index for the token counter.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "http/request_record.h"
#include "observe/audit.h"
#include "token/token_cache.h"

namespace podid {

// The pod label values of callers that are not a known pod (host processes, pods not in the directory yet).
inline constexpr const char* kNodePodLabel = "_node";
// Standalone mode: callers that matched a bindings file entry are labelled pod="binding:<entry name>".
inline constexpr const char* kBindingPodLabelPrefix = "binding:";

// Per-resource counters of the Kubernetes watches (pods, azureidentities, ...).
struct WatchCounters {
    uint64_t restarts = 0;  // watch re-established (error, timeout, 410 Gone relist)
    uint64_t events = 0;    // ADDED/MODIFIED/DELETED events applied
    uint64_t nudges = 0;    // reconnections a pod's request asked for (it came before its watch event)
};

// The interface guard's node-wide state (datapath/guard.h).
struct GuardMetrics {
    uint64_t dropped_ipv4 = 0;
    uint64_t dropped_ipv6 = 0;
    size_t interfaces = 0;
};

// Values read at scrape time. Each may be left empty.
struct MetricsProviders {
    std::function<TokenCacheStats()> token_cache;                        // CachingTokenProvider::stats
    std::function<size_t()> pods_tracked;                                // pods in the pod directory
    std::function<size_t()> cgroups_tracked;                             // cgroups with BPF counters
    std::function<std::map<std::string, WatchCounters>()> kube_watches;  // by resource
    std::function<size_t()> bpf_programs_attached;                       // Datapath::report().size()
    std::function<bool()> ready;                                         // Health::readiness().ready
    std::function<GuardMetrics()> guard;                                 // InterfaceGuard (absent with it off)
};

class Metrics : public RequestSink {
public:
    explicit Metrics(std::string version, MetricsProviders providers = {});
    ~Metrics() override;
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // RequestSink: every finished request (from the server's sinks list) and connection open/close.
    void on_request(const AuditRecord& record) override;
    void on_connection(int delta) override;
    void on_accept_wait(double seconds) override;
    // A request has been read and is being handled; on_request() ends it. Servers that never call this
    // leave podid_requests_in_flight at 0 (on_request never takes it below zero).
    void on_request_begin() override;

    // TokenCacheOptions::on_upstream: one upstream IMDS attempt (status 0 = no answer).
    void on_upstream(int status, double seconds);

    // A pod was deleted: drop every series labelled with it. The BPF collector's series follow the counters
    // map and need no forgetting.
    void forget_pod(const std::string& ns, const std::string& name);

    // Extra collectors merged into every scrape (the BPF per-pod collector). Not owned; must outlive this object.
    void add_collectable(const prometheus::Collectable* collectable);

    // The Prometheus text exposition format (version 0.0.4) of everything.
    std::string scrape() const;

    // Number of per-pod label sets currently held (for the cardinality test and diagnostics).
    size_t pod_series() const;

    prometheus::Registry& registry() { return *registry_; }

private:
    class ScrapeTimeCollector;

    // RequestKind values (http/imds_handler.h) and status classes, as indexes into the handle arrays.
    static constexpr size_t kKinds = 8;
    static constexpr size_t kCodeClasses = 6;  // 1xx .. 5xx, other
    static constexpr size_t kReasons = 64;     // Reason values; larger ones (none yet) take the slow path

    // One token-request series of a pod: its labels beyond the pod's, and the counter.
    struct TokenSeries {
        std::string identity;
        unsigned status;
        prometheus::Counter* counter;
    };
    struct PodKey {
        std::string ns, name;
    };
    struct PodKeyView {
        std::string_view ns, name;
    };
    // Transparent, so that a request looks its pod up without copying the names.
    struct PodKeyHash {
        using is_transparent = void;
        size_t operator()(PodKeyView k) const noexcept;
        size_t operator()(const PodKey& k) const noexcept { return (*this)(PodKeyView{k.ns, k.name}); }
    };
    struct PodKeyEq {
        using is_transparent = void;
        static PodKeyView view(const PodKey& k) { return {k.ns, k.name}; }
        static PodKeyView view(PodKeyView k) { return k; }
        template <typename A, typename B>
        bool operator()(const A& a, const B& b) const noexcept {
            return view(a).ns == view(b).ns && view(a).name == view(b).name;
        }
    };

    prometheus::Histogram& duration_histogram(int kind, size_t code_class_index, const AuditRecord& record);
    prometheus::Counter& denial_counter(Reason reason);
    void count_token_request(std::string_view ns, std::string_view pod, const std::string& identity, unsigned status);

    std::shared_ptr<prometheus::Registry> registry_;
    MetricsProviders providers_;
    std::unique_ptr<ScrapeTimeCollector> scrape_time_;

    prometheus::Family<prometheus::Counter>& token_requests_;
    prometheus::Family<prometheus::Histogram>& request_duration_;
    prometheus::Gauge& in_flight_;
    prometheus::Gauge& connections_open_;
    prometheus::Histogram& accept_wait_;
    prometheus::Family<prometheus::Counter>& upstream_requests_;
    prometheus::Histogram& upstream_duration_;
    prometheus::Family<prometheus::Counter>& denials_;

    std::atomic<int64_t> in_flight_count_{0};
    // Filled on first use and never cleared: these families never remove a series, so a handle stays valid.
    std::array<std::array<std::atomic<prometheus::Histogram*>, kCodeClasses>, kKinds> durations_{};
    std::array<std::atomic<prometheus::Counter*>, kReasons> denials_by_reason_{};

    mutable std::mutex mu_;  // guards pods_ and collectables_
    // Every podid_token_requests_total series, by pod; forget_pod() removes a pod's series and its entry together.
    std::unordered_map<PodKey, std::vector<TokenSeries>, PodKeyHash, PodKeyEq> pods_;
    std::vector<const prometheus::Collectable*> collectables_;
};

// "2xx", "4xx", "5xx" ("other" outside 100..599).
std::string code_class(unsigned status);

// The request-duration buckets: 100 µs to 10 s.
const std::vector<double>& request_duration_buckets();

}  // namespace podid
