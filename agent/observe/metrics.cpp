#include "observe/metrics.h"

#include <algorithm>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "observe/metric_family.h"

namespace podid {

namespace pm = prometheus;

namespace {

const std::vector<double>& accept_wait_buckets() {
    // A loopback or veth handshake and an idle agent: tens of microseconds. Milliseconds mean a busy agent;
    // a second means a SYN was retransmitted (the accept queue overflowed).
    static const std::vector<double> b{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01,    0.025,    0.05,    0.1,    0.25,    0.5,    1,     5};
    return b;
}

const std::vector<double>& upstream_duration_buckets() {
    // IMDS answers in milliseconds when healthy; retries with backoff stretch a miss to tens of seconds.
    static const std::vector<double> b{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20};
    return b;
}

// One histogram slot per RequestKind, in the enum's order.
constexpr int kTokenSlot = static_cast<int>(RequestKind::token);
constexpr int kHostTokenSlot = static_cast<int>(RequestKind::host_token);

constexpr const char* kCodeClassNames[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};

size_t code_class_slot(unsigned status) { return status < 100 || status > 599 ? 5 : status / 100 - 1; }

}  // namespace

std::string code_class(unsigned status) {
    if (status < 100 || status > 599)
        return "other";
    return std::to_string(status / 100) + "xx";
}

const std::vector<double>& request_duration_buckets() {
    static const std::vector<double> b{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
    return b;
}

// Values owned by other parts of the agent, turned into families when Prometheus scrapes.
class Metrics::ScrapeTimeCollector : public pm::Collectable {
public:
    explicit ScrapeTimeCollector(const MetricsProviders& p) : p_(p) {}

    std::vector<pm::MetricFamily> Collect() const override {
        std::vector<pm::MetricFamily> out;
        if (p_.token_cache)
            collect_cache(p_.token_cache(), out);
        if (p_.pods_tracked) {
            auto f = metric_family("podid_pods_tracked", "Pods in the agent's pod directory (this node).",
                                   pm::MetricType::Gauge);
            add_sample(f, {}, static_cast<double>(p_.pods_tracked()));
            out.push_back(std::move(f));
        }
        if (p_.cgroups_tracked) {
            auto f = metric_family("podid_cgroups_tracked", "Cgroups with decision counters in the BPF map.",
                                   pm::MetricType::Gauge);
            add_sample(f, {}, static_cast<double>(p_.cgroups_tracked()));
            out.push_back(std::move(f));
        }
        if (p_.kube_watches) {
            auto restarts = metric_family("podid_kube_watch_restarts_total",
                                          "Kubernetes watches re-established (errors, timeouts, relists), by resource.",
                                          pm::MetricType::Counter);
            auto events = metric_family("podid_kube_watch_events_total",
                                        "Kubernetes watch events applied, by resource.", pm::MetricType::Counter);
            auto nudges =
                metric_family("podid_kube_watch_nudges_total",
                              "Watch reconnections (or backoffs cut short) asked for by a pod still unknown after its "
                              "request, by resource: a rising rate means watches go silent.",
                              pm::MetricType::Counter);
            for (const auto& [resource, c] : p_.kube_watches()) {
                add_sample(restarts, {{"resource", resource}}, static_cast<double>(c.restarts));
                add_sample(events, {{"resource", resource}}, static_cast<double>(c.events));
                add_sample(nudges, {{"resource", resource}}, static_cast<double>(c.nudges));
            }
            out.push_back(std::move(restarts));
            out.push_back(std::move(events));
            out.push_back(std::move(nudges));
        }
        if (p_.bpf_programs_attached) {
            auto f = metric_family("podid_bpf_programs_attached", "BPF programs the agent attached or took over.",
                                   pm::MetricType::Gauge);
            add_sample(f, {}, static_cast<double>(p_.bpf_programs_attached()));
            out.push_back(std::move(f));
        }
        if (p_.guard) {
            GuardMetrics g = p_.guard();
            auto dropped = metric_family("podid_guard_dropped_frames_total",
                                         "Frames to 169.254.169.254 the interface guard dropped on pods' host-side "
                                         "interfaces (AF_PACKET bypass attempts), by IP family.",
                                         pm::MetricType::Counter);
            add_sample(dropped, {{"family", "ipv4"}}, static_cast<double>(g.dropped_ipv4));
            add_sample(dropped, {{"family", "ipv6"}}, static_cast<double>(g.dropped_ipv6));
            out.push_back(std::move(dropped));
            auto interfaces = metric_family("podid_guard_interfaces", "Interfaces the interface guard is attached to.",
                                            pm::MetricType::Gauge);
            add_sample(interfaces, {}, static_cast<double>(g.interfaces));
            out.push_back(std::move(interfaces));
        }
        if (p_.ready) {
            auto f = metric_family("podid_ready",
                                   "1 when /readyz answers 200 (programs attached, self-check passed, "
                                   "bindings loaded), else 0.",
                                   pm::MetricType::Gauge);
            add_sample(f, {}, p_.ready() ? 1 : 0);
            out.push_back(std::move(f));
        }
        return out;
    }

private:
    static void collect_cache(const TokenCacheStats& s, std::vector<pm::MetricFamily>& out) {
        auto counter = [&](const char* name, const char* help, uint64_t v) {
            auto f = metric_family(name, help, pm::MetricType::Counter);
            add_sample(f, {}, static_cast<double>(v));
            out.push_back(std::move(f));
        };
        counter("podid_token_cache_hits_total", "Token requests answered from the cache without waiting.", s.hits);
        counter("podid_token_cache_misses_total", "Token requests that started an upstream fetch.", s.misses);
        counter("podid_token_cache_shared_total", "Token requests that waited on a fetch another request started.",
                s.shared);
        auto entries =
            metric_family("podid_token_cache_entries", "Identities (token keys) in the cache.", pm::MetricType::Gauge);
        add_sample(entries, {}, static_cast<double>(s.entries));
        out.push_back(std::move(entries));
        auto refreshes = metric_family("podid_token_refreshes_total", "Background token refreshes, by result.",
                                       pm::MetricType::Counter);
        add_sample(refreshes, {{"result", "ok"}}, static_cast<double>(s.refreshes_ok));
        add_sample(refreshes, {{"result", "failed"}}, static_cast<double>(s.refreshes_failed));
        out.push_back(std::move(refreshes));
    }

    const MetricsProviders& p_;
};

Metrics::Metrics(std::string version, MetricsProviders providers)
    : registry_(std::make_shared<pm::Registry>()),
      providers_(std::move(providers)),
      scrape_time_(std::make_unique<ScrapeTimeCollector>(providers_)),
      token_requests_(pm::BuildCounter()
                          .Name("podid_token_requests_total")
                          .Help("Token requests (/metadata/identity/oauth2/token, /host/token) by caller pod, "
                                "identity served and HTTP status.")
                          .Register(*registry_)),
      request_duration_(pm::BuildHistogram()
                            .Name("podid_request_duration_seconds")
                            .Help("Time from request read to response written, by request kind and status class.")
                            .Register(*registry_)),
      in_flight_(pm::BuildGauge()
                     .Name("podid_requests_in_flight")
                     .Help("Requests being handled.")
                     .Register(*registry_)
                     .Add({})),
      connections_open_(pm::BuildGauge()
                            .Name("podid_connections_open")
                            .Help("Client connections open to the agent.")
                            .Register(*registry_)
                            .Add({})),
      accept_wait_(pm::BuildHistogram()
                       .Name("podid_accept_wait_seconds")
                       .Help("Time from a pod's connect() to the agent's accept of that connection (SYN and accept "
                             "queues): grows when the agent falls behind its callers.")
                       .Register(*registry_)
                       .Add({}, accept_wait_buckets())),
      upstream_requests_(pm::BuildCounter()
                             .Name("podid_upstream_requests_total")
                             .Help("Attempts to fetch a token from the node's IMDS, by HTTP status (0 = no answer).")
                             .Register(*registry_)),
      upstream_duration_(pm::BuildHistogram()
                             .Name("podid_upstream_request_duration_seconds")
                             .Help("Duration of one upstream IMDS token attempt.")
                             .Register(*registry_)
                             .Add({}, upstream_duration_buckets())),
      denials_(pm::BuildCounter()
                   .Name("podid_denials_total")
                   .Help("Requests denied, by reason code (docs/reasons.md).")
                   .Register(*registry_)) {
    pm::BuildGauge()
        .Name("podid_build_info")
        .Help("Always 1; the agent's version as a label.")
        .Register(*registry_)
        .Add({{"version", version}})
        .Set(1);
}

Metrics::~Metrics() = default;

void Metrics::on_request(const AuditRecord& r) {
    for (int64_t n = in_flight_count_.load(); n > 0;) {
        if (in_flight_count_.compare_exchange_weak(n, n - 1)) {
            in_flight_.Decrement();
            break;
        }
    }
    const int kind = static_cast<int>(r.kind);
    duration_histogram(kind, code_class_slot(r.status), r).Observe(r.latency_ms / 1000.0);
    if (is_denial(r.reason))
        denial_counter(r.reason).Increment();
    if (kind != kTokenSlot && kind != kHostTokenSlot)
        return;

    // A pod by its name; a caller that is no pod (standalone mode) by the bindings file entry that matched it, a
    // set the file bounds; anything else under _node.
    std::string_view ns, pod = kNodePodLabel;
    std::string by_binding;
    if (r.caller.pod) {
        ns = r.caller.pod->ns;
        pod = r.caller.pod->name;
    } else if (!r.binding_name.empty()) {
        by_binding = kBindingPodLabelPrefix + r.binding_name;
        pod = by_binding;
    }
    count_token_request(ns, pod, !r.granted_identity.empty() ? r.granted_identity : r.requested_identity, r.status);
}

pm::Histogram& Metrics::duration_histogram(int kind, size_t code_class_index, const AuditRecord& r) {
    static_assert(static_cast<size_t>(RequestKind::selfcheck) + 1 == kKinds &&
                  std::size(kCodeClassNames) == kCodeClasses);
    const auto kind_index = static_cast<size_t>(kind);
    auto& slot = durations_[kind_index][code_class_index];
    if (pm::Histogram* h = slot.load(std::memory_order_acquire))
        return *h;
    // Two threads may both get here: Family::Add returns the same histogram for the same labels.
    auto& h = request_duration_.Add(
        {{"kind", to_string(static_cast<RequestKind>(kind_index))}, {"code_class", kCodeClassNames[code_class_index]}},
        request_duration_buckets());
    slot.store(&h, std::memory_order_release);
    return h;
}

pm::Counter& Metrics::denial_counter(Reason reason) {
    const auto index = static_cast<size_t>(reason);
    if (index >= kReasons)
        return denials_.Add({{"reason", to_string(reason)}});
    auto& slot = denials_by_reason_[index];
    if (pm::Counter* c = slot.load(std::memory_order_acquire))
        return *c;
    auto& c = denials_.Add({{"reason", to_string(reason)}});
    slot.store(&c, std::memory_order_release);
    return c;
}

size_t Metrics::PodKeyHash::operator()(PodKeyView k) const noexcept {
    const size_t h = std::hash<std::string_view>()(k.ns);
    return h ^ (std::hash<std::string_view>()(k.name) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

void Metrics::count_token_request(std::string_view ns, std::string_view pod, const std::string& identity,
                                  unsigned status) {
    // Under the lock: forget_pod() may delete these counters from another thread.
    std::lock_guard lock(mu_);
    auto it = pods_.find(PodKeyView{ns, pod});
    if (it == pods_.end())
        it = pods_.emplace(PodKey{std::string(ns), std::string(pod)}, std::vector<TokenSeries>{}).first;
    // A pod has a few series (identities times statuses): a scan beats any index.
    for (const TokenSeries& s : it->second) {
        if (s.status == status && s.identity == identity) {
            s.counter->Increment();
            return;
        }
    }
    auto& c = token_requests_.Add({{"namespace", std::string(ns)},
                                   {"pod", std::string(pod)},
                                   {"identity", identity},
                                   {"code", std::to_string(status)}});
    it->second.push_back(TokenSeries{identity, status, &c});
    c.Increment();
}

void Metrics::on_connection(int delta) { connections_open_.Increment(delta); }

void Metrics::on_accept_wait(double seconds) { accept_wait_.Observe(seconds); }

void Metrics::on_request_begin() {
    ++in_flight_count_;
    in_flight_.Increment();
}

void Metrics::on_upstream(int status, double seconds) {
    upstream_requests_.Add({{"code", std::to_string(status)}}).Increment();
    upstream_duration_.Observe(seconds);
}

void Metrics::forget_pod(const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = pods_.find(PodKeyView{ns, name});
    if (it == pods_.end())
        return;
    for (const TokenSeries& s : it->second)
        token_requests_.Remove(s.counter);
    pods_.erase(it);
}

void Metrics::add_collectable(const pm::Collectable* collectable) {
    std::lock_guard lock(mu_);
    collectables_.push_back(collectable);
}

std::string Metrics::scrape() const {
    std::vector<pm::MetricFamily> families;
    std::vector<const pm::Collectable*> others{scrape_time_.get()};
    {
        std::lock_guard lock(mu_);  // a Family::Remove must not run while the registry copies samples
        families = registry_->Collect();
        others.insert(others.end(), collectables_.begin(), collectables_.end());
    }
    for (const auto* c : others) {
        auto more = c->Collect();
        families.insert(families.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    }
    // A family with no samples yet (no denial so far) is left out: its HELP/TYPE lines alone say nothing.
    families.erase(std::remove_if(families.begin(), families.end(), [](const auto& f) { return f.metric.empty(); }),
                   families.end());
    return pm::TextSerializer().Serialize(families);
}

size_t Metrics::pod_series() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [pod, series] : pods_)
        n += series.size();
    return n;
}

}  // namespace podid
