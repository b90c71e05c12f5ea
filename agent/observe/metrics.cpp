#include "observe/metrics.h"

#include <algorithm>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace podid {

namespace pm = prometheus;

namespace {

pm::MetricFamily family(std::string name, std::string help, pm::MetricType type) {
    pm::MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    return f;
}

void add_sample(pm::MetricFamily& f, std::vector<pm::ClientMetric::Label> labels, double value) {
    pm::ClientMetric m;
    m.label = std::move(labels);
    if (f.type == pm::MetricType::Counter)
        m.counter.value = value;
    else
        m.gauge.value = value;
    f.metric.push_back(std::move(m));
}

const std::vector<double>& upstream_duration_buckets() {
    // IMDS answers in milliseconds when healthy; retries with backoff stretch a miss to tens of seconds.
    static const std::vector<double> b{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20};
    return b;
}

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
            auto f =
                family("podid_pods_tracked", "Pods in the agent's pod directory (this node).", pm::MetricType::Gauge);
            add_sample(f, {}, static_cast<double>(p_.pods_tracked()));
            out.push_back(std::move(f));
        }
        if (p_.cgroups_tracked) {
            auto f = family("podid_cgroups_tracked", "Cgroups with decision counters in the BPF map.",
                            pm::MetricType::Gauge);
            add_sample(f, {}, static_cast<double>(p_.cgroups_tracked()));
            out.push_back(std::move(f));
        }
        if (p_.kube_watches) {
            auto restarts = family("podid_kube_watch_restarts_total",
                                   "Kubernetes watches re-established (errors, timeouts, relists), by resource.",
                                   pm::MetricType::Counter);
            auto events = family("podid_kube_watch_events_total", "Kubernetes watch events applied, by resource.",
                                 pm::MetricType::Counter);
            for (const auto& [resource, c] : p_.kube_watches()) {
                add_sample(restarts, {{"resource", resource}}, static_cast<double>(c.restarts));
                add_sample(events, {{"resource", resource}}, static_cast<double>(c.events));
            }
            out.push_back(std::move(restarts));
            out.push_back(std::move(events));
        }
        if (p_.bpf_programs_attached) {
            auto f = family("podid_bpf_programs_attached", "BPF programs the agent attached or took over.",
                            pm::MetricType::Gauge);
            add_sample(f, {}, static_cast<double>(p_.bpf_programs_attached()));
            out.push_back(std::move(f));
        }
        if (p_.guard) {
            GuardMetrics g = p_.guard();
            auto dropped = family("podid_guard_dropped_frames_total",
                                  "Frames to 169.254.169.254 the interface guard dropped on pods' host-side "
                                  "interfaces (AF_PACKET bypass attempts), by IP family.",
                                  pm::MetricType::Counter);
            add_sample(dropped, {{"family", "ipv4"}}, static_cast<double>(g.dropped_ipv4));
            add_sample(dropped, {{"family", "ipv6"}}, static_cast<double>(g.dropped_ipv6));
            out.push_back(std::move(dropped));
            auto interfaces = family("podid_guard_interfaces", "Interfaces the interface guard is attached to.",
                                     pm::MetricType::Gauge);
            add_sample(interfaces, {}, static_cast<double>(g.interfaces));
            out.push_back(std::move(interfaces));
        }
        if (p_.ready) {
            auto f = family("podid_ready",
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
            auto f = family(name, help, pm::MetricType::Counter);
            add_sample(f, {}, static_cast<double>(v));
            out.push_back(std::move(f));
        };
        counter("podid_token_cache_hits_total", "Token requests answered from the cache without waiting.", s.hits);
        counter("podid_token_cache_misses_total", "Token requests that started an upstream fetch.", s.misses);
        counter("podid_token_cache_shared_total", "Token requests that waited on a fetch another request started.",
                s.shared);
        auto entries =
            family("podid_token_cache_entries", "Identities (token keys) in the cache.", pm::MetricType::Gauge);
        add_sample(entries, {}, static_cast<double>(s.entries));
        out.push_back(std::move(entries));
        auto refreshes =
            family("podid_token_refreshes_total", "Background token refreshes, by result.", pm::MetricType::Counter);
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
    request_duration_
        .Add({{"kind", r.kind.empty() ? "unknown" : r.kind}, {"code_class", code_class(r.status)}},
             request_duration_buckets())
        .Observe(r.latency_ms / 1000.0);
    if (is_denial(r.reason))
        denials_.Add({{"reason", to_string(r.reason)}}).Increment();
    if (r.kind != "token" && r.kind != "host_token")
        return;

    std::string ns, pod = kNodePodLabel;
    if (r.caller.pod) {
        ns = r.caller.pod->ns;
        pod = r.caller.pod->name;
    }
    const std::string& identity = !r.granted_identity.empty() ? r.granted_identity : r.requested_identity;
    std::lock_guard lock(mu_);
    // Under the lock: forget_pod() may delete this counter from another thread.
    auto& c = token_requests_.Add(
        {{"namespace", ns}, {"pod", pod}, {"identity", identity}, {"code", std::to_string(r.status)}});
    auto& held = pods_[{ns, pod}];
    if (std::find(held.begin(), held.end(), &c) == held.end())
        held.push_back(&c);
    c.Increment();
}

void Metrics::on_connection(int delta) { connections_open_.Increment(delta); }

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
    auto it = pods_.find({ns, name});
    if (it == pods_.end())
        return;
    for (auto* c : it->second)
        token_requests_.Remove(c);
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
    for (const auto& [pod, counters] : pods_)
        n += counters.size();
    return n;
}

}  // namespace podid
