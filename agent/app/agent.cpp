#include "app/agent.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "admin/admin_http.h"
#include "admin/admin_socket.h"
#include "admin/handover.h"
#include "admin/introspect.h"
#include "caller/cgroup_paths.h"
#include "caller/local_caller_resolver.h"
#include "caller/own_cgroup.h"
#include "common/listen.h"
#include "common/log.h"
#include "datapath/datapath.h"
#include "datapath/guard.h"
#include "datapath/probe.h"
#include "entra/entra_upstream.h"
#include "http/imds_forwarder.h"
#include "http/server.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/kube_caller_resolver.h"
#include "kube/state.h"
#include "observe/audit.h"
#include "observe/audit_metrics.h"
#include "observe/audit_sink.h"
#include "observe/bpf_collector.h"
#include "observe/health.h"
#include "observe/metrics.h"
#include "observe/recent_conns.h"
#include "observe/selfcheck.h"
#include "policy/chained_bindings.h"
#include "policy/host_token_policy.h"
#include "policy/kube_bindings.h"
#include "policy/kube_host_tokens.h"
#include "policy/static_bindings.h"
#include "token/imds_client.h"
#include "token/imds_token_upstream.h"
#include "token/token_cache.h"
#include "token/token_cache_file.h"

namespace podid {

namespace asio = boost::asio;

namespace {

int64_t now_epoch() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int64_t now_epoch_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// How long a handed-over agent keeps an idle keep-alive connection open for the client's next request (answered
// with `Connection: close`), so that the close never races a request the client is sending.
constexpr std::chrono::milliseconds kHandoverIdleLinger{2000};

// An upgrade: the running agent's listeners, asked for before this agent binds anything (admin/handover.h). Empty
// when no agent runs, or when it cannot hand over (then this agent binds its own, as at a first start).
std::optional<HandoverClient> ask_predecessor(const AgentOptions& o) {
    if (o.handover_socket.empty())
        return std::nullopt;
    auto asked = HandoverClient::request(o.handover_socket, std::chrono::seconds(5));
    if (!asked) {
        log_warn("hand-over: the running agent did not hand over; binding the listeners",
                 kv("reason", asked.error().message) + kv("socket", o.handover_socket));
        return std::nullopt;
    }
    if (!*asked)
        return std::nullopt;
    HandoverOffer& offer = (*asked)->offer();
    log_info("hand-over: listeners received from the running agent",
             kv("predecessor_pid", std::to_string(offer.pid)) + kv("predecessor_version", offer.version) +
                 kv("listeners", std::to_string(offer.listeners.size())));
    return std::move(**asked);
}

// The passed listener with `role` when it is bound where this agent would listen; else empty (bind anew).
Fd passed_listener(std::optional<HandoverClient>& predecessor, const char* role,
                   const boost::asio::ip::tcp::endpoint& wanted) {
    if (!predecessor)
        return Fd();
    Fd fd = predecessor->offer().take(role);
    if (!fd.valid())
        return fd;
    auto bound = bound_endpoint(fd.get());
    if (!bound || *bound != wanted) {
        log_warn("hand-over: a passed listener is bound elsewhere than this agent's flags say; not used",
                 kv("role", role) +
                     kv("passed", bound ? bound->address().to_string() + ":" + std::to_string(bound->port())
                                        : bound.error().message) +
                     kv("wanted", wanted.address().to_string() + ":" + std::to_string(wanted.port())));
        return Fd();
    }
    return fd;
}

// The agent, built one step at a time (run_agent lists the steps). Each step logs why it failed and returns false;
// the members are declared in the order the steps make them, so they are destroyed in reverse, as locals would be.
class Agent {
public:
    explicit Agent(const AgentOptions& o) : o_(o) {}

    bool find_cgroups();
    bool check_kernel();
    void ask_predecessor();
    bool install_datapath();
    void load_interface_guard();
    bool open_audit_log();
    bool load_bindings_file();
    bool build_token_pipeline();
    bool connect_kubernetes();
    void build_request_stages();
    bool serve_metrics();
    bool serve_imds();
    bool find_own_cgroup();
    bool serve_admin_socket();
    void handle_signals();
    bool serve_handover();
    void take_over();
    int run();

private:
    void stop_io();
    void begin_drain(bool handed_over, std::function<void()> drained);
    void wait_hup();

    const AgentOptions& o_;
    const int64_t started_ms_ = now_epoch_ms();

    // find_cgroups
    std::string mount_;
    std::unique_ptr<CgroupPathResolver> paths_;
    std::string cgroup_root_;
    std::string kubepods_rel_;
    std::vector<uint64_t> exempt_;
    uint64_t own_id_ = 0;
    // The agent's own cgroup when it lies below the cgroup root (a DaemonSet pod does), else 0: where the self-check
    // moves if the kernel refuses it a cgroup directly below the root (nsdelegate). Known from /proc/self/cgroup
    // at first, or from the redirect once the agent listens (inside a cgroup namespace).
    std::atomic<uint64_t> own_below_root_{0};

    // ask_predecessor, install_datapath, load_interface_guard
    HandoverState handover_state_;
    std::optional<HandoverClient> predecessor_;
    std::atomic<bool> predecessor_drained_{false};  // it closed its copies of the listeners (or exited)
    std::vector<uint64_t> datapath_exempt_;
    std::optional<Datapath> dp_;
    std::unique_ptr<InterfaceGuard> guard_;

    // open_audit_log, load_bindings_file
    std::unique_ptr<AuditLog> audit_;
    std::unique_ptr<StaticBindings> file_bindings_;
    NoBindings no_bindings_;
    const BindingSource* bindings_ = &no_bindings_;

    // One io_context per I/O thread (see http/server.h): `io_` also carries the control plane (API server
    // watches, upstream IMDS client, admin and metrics endpoints, signals); the others serve pods only.
    asio::io_context io_{1};
    std::vector<std::unique_ptr<asio::io_context>> serving_only_;
    std::vector<asio::io_context*> serving_ = {&io_};
    // Built once everything they read exists; the token cache and the pod watch report to them before that
    // through these pointers (null until then).
    std::unique_ptr<Metrics> metrics_;
    std::unique_ptr<BpfCollector> bpf_collector_;

    // build_token_pipeline
    std::unique_ptr<ImdsClient> imds_;
    std::unique_ptr<ImdsTokenUpstream> upstream_;
    std::unique_ptr<TokenCachePersister> persister_;
    std::unique_ptr<SourceRoutedUpstream> routed_;
    std::unique_ptr<CachingTokenProvider> tokens_;

    // connect_kubernetes
    std::shared_ptr<kube::Client> kube_requests_;  // TokenRequests and Secret reads
    std::unique_ptr<kube::ServiceAccountTokens> sa_tokens_;
    std::unique_ptr<kube::SecretReader> secrets_;
    std::unique_ptr<entra::EntraClient> entra_client_;
    std::unique_ptr<EntraUpstream> entra_upstream_;
    std::unique_ptr<kube::KubeState> kube_state_;
    std::unique_ptr<KubeBindingSource> kube_bindings_;
    std::unique_ptr<ChainedBindings> chained_;
    std::unique_ptr<KubeHostTokens> host_tokens_;
    std::unique_ptr<CallerResolver> callers_;

    // build_request_stages
    RecentConnections recent_conns_{1024};
    std::unique_ptr<RecordedOrigins> origins_;
    std::unique_ptr<ImdsForwarder> forwarder_;
    std::unique_ptr<AuditSink> audit_sink_;
    std::unique_ptr<SelfCheck> self_check_;
    std::unique_ptr<Health> health_;
    std::unique_ptr<AuditMetrics> audit_metrics_;
    std::unique_ptr<HandoverMetrics> handover_metrics_;

    // serve_metrics, serve_imds, serve_admin_socket
    std::unique_ptr<AdminServer> admin_;
    ServerLimits limits_;
    std::unique_ptr<Server> server_;
    std::unique_ptr<Introspection> views_;
    std::unique_ptr<AdminSocketServer> admin_socket_;

    // handle_signals, serve_handover
    std::unique_ptr<asio::signal_set> stop_signals_;
    std::unique_ptr<asio::signal_set> hup_;
    std::unique_ptr<asio::steady_timer> drain_timer_;
    std::unique_ptr<HandoverServer> handover_;
    bool draining_ = false;
    // Lives as long as the I/O loop: the drain timer calls it again every 20 ms after the signal handler returned.
    std::function<void()> drain_check_;
};

bool Agent::find_cgroups() {
    auto mount = find_cgroup2_mount();
    if (!mount) {
        log_error("no cgroup2 mount", kv("reason", mount.error().message) +
                                          kv("fix", "podid needs the unified cgroup hierarchy (cgroup v2)"));
        return false;
    }
    mount_ = *mount;
    auto paths = CgroupPathResolver::open(mount_);
    if (!paths) {
        log_error("cannot open the cgroup2 mount", kv("reason", paths.error().message));
        return false;
    }
    paths_ = std::move(*paths);
    cgroup_root_ = o_.cgroup_root;
    if (cgroup_root_.empty()) {
        auto rel = detect_kubepods_root(mount_);
        if (!rel) {
            log_error("cannot find the kubepods cgroup",
                      kv("reason", rel.error().message) + kv("fix", "pass --cgroup-root"));
            return false;
        }
        cgroup_root_ = mount_ + (*rel == "/" ? "" : *rel);
    }
    if (cgroup_root_.rfind(mount_, 0) != 0 ||
        (cgroup_root_.size() > mount_.size() && cgroup_root_[mount_.size()] != '/')) {
        log_error("--cgroup-root is not under the cgroup2 mount",
                  kv("cgroup_root", cgroup_root_) + kv("cgroup2_mount", mount_));
        return false;
    }
    kubepods_rel_ = cgroup_root_.size() == mount_.size() ? "/" : cgroup_root_.substr(mount_.size());
    auto exempt = exempt_cgroup_ids(o_.exempt_cgroups, *paths_);
    if (!exempt) {
        log_error("cannot build the exempt cgroup set", kv("reason", exempt.error().message));
        return false;
    }
    exempt_ = std::move(*exempt);
    // The agent's own cgroup is always exempt, so its upstream calls reach the real IMDS.
    own_id_ = own_cgroup_id_from_proc(*paths_);
    if (own_id_ != 0) {
        exempt_.push_back(own_id_);
        auto rel = paths_->path_of(own_id_);
        if (rel && (kubepods_rel_ == "/" || rel->rfind(kubepods_rel_ + "/", 0) == 0))
            own_below_root_ = own_id_;
    }
    return true;
}

// The capabilities, then every kernel feature the datapath relies on, each failure naming the feature and the
// kernel that has it, before anything is loaded or asked of a running agent (docs/kernels.md). The attach
// probes' throwaway cgroup goes below the cgroup root, which the agent may write (the mount's root is 0555).
bool Agent::check_kernel() {
    std::string missing_features;
    std::size_t probed = 0;
    for (const auto& f : probe_kernel_features_report(cgroup_root_)) {
        ++probed;
        if (f.ok)
            continue;
        if (f.requirement->kind == ProbeKind::privileges) {
            log_error("podid-agent lacks a privilege it needs", kv("reason", f.detail));
            return false;
        }
        missing_features += (missing_features.empty() ? "" : "; ") + f.detail;
    }
    if (!missing_features.empty()) {
        log_error("this kernel cannot run podid", kv("reason", missing_features));
        return false;
    }
    log_info("kernel features probed: all present", kv("probes", std::to_string(probed)));
    return true;
}

// An upgrade: take the running agent's listeners first. It stays exempt (its own cgroup among what it exempts)
// until it has drained, so its last token fetches still reach IMDS.
void Agent::ask_predecessor() {
    predecessor_ = podid::ask_predecessor(o_);
    datapath_exempt_ = exempt_;
    if (predecessor_) {
        for (uint64_t id : predecessor_->offer().exempt)
            if (std::find(datapath_exempt_.begin(), datapath_exempt_.end(), id) == datapath_exempt_.end())
                datapath_exempt_.push_back(id);
        handover_state_.predecessor_pid = predecessor_->offer().pid;
        handover_state_.received = 1;
    }
}

bool Agent::install_datapath() {
    DatapathConfig dc;
    dc.cgroup_root = cgroup_root_;
    dc.pin_dir = o_.bpffs;
    dc.agent_ip4 = *parse_ip4(o_.node_ip);
    dc.agent_port = o_.port;
    dc.exempt_cgroups = datapath_exempt_;
    auto dp = Datapath::install(dc);
    if (!dp) {
        log_error("cannot install the datapath", kv("reason", dp.error().message));
        return false;
    }
    dp_.emplace(std::move(*dp));
    handover_state_.holding_since_ms = now_epoch_ms();
    for (const auto& r : dp_->report())
        log_info("program attached", kv("program", r.program) + kv("how", r.how) + kv("cgroup", cgroup_root_));
    // Task: sockops takes the origin from the connecting task (newer kernels, docs/kernels.md); socket storage: the
    // connect hook keeps it.
    log_info("origin recording", kv("from", origin_recording_name(dp_->origin_recording())));
    return true;
}

// The interface guard: AF_PACKET frames from pods' interfaces to 169.254.169.254, which no cgroup hook sees.
// A failure is loud but not fatal: the cgroup datapath already covers every inet socket.
void Agent::load_interface_guard() {
    if (o_.guard_interfaces == "none")
        return;
    auto loaded = InterfaceGuard::load(o_.bpffs, *parse_guard_selector(o_.guard_interfaces));
    if (!loaded) {
        log_error("interface guard not loaded: pods with CAP_NET_RAW could reach 169.254.169.254 with AF_PACKET",
                  kv("reason", loaded.error().message));
    } else {
        // Attached in build_token_pipeline, once the io_context that follows rtnetlink exists.
        guard_ = std::move(*loaded);
    }
}

bool Agent::open_audit_log() {
    auto audit = AuditLog::open(o_.audit_log);
    if (!audit) {
        log_error("cannot open the audit log", kv("reason", audit.error().message));
        return false;
    }
    audit_ = std::move(*audit);
    return true;
}

bool Agent::load_bindings_file() {
    if (o_.bindings_file.empty())
        return true;
    file_bindings_ = std::make_unique<StaticBindings>(o_.bindings_file, [](const std::string& message) {
        log_error("bindings file rejected; keeping the previous bindings", kv("reason", message));
    });
    if (auto r = file_bindings_->load(); !r) {
        log_error("invalid bindings file", kv("file", o_.bindings_file) + kv("reason", r.error().message));
        return false;
    }
    bindings_ = file_bindings_.get();
    return true;
}

// The upstream IMDS client, the token cache in front of it (restored from the token cache file), and the I/O
// threads' contexts; then what follows the control-plane context (bindings file, interfaces).
bool Agent::build_token_pipeline() {
    auto url = parse_imds_url(o_.imds_url);
    if (!url) {
        log_error("bad --imds-url", kv("reason", url.error().message));
        return false;
    }
    for (unsigned i = 1; i < o_.threads; ++i)
        serving_.push_back(serving_only_.emplace_back(std::make_unique<asio::io_context>(1)).get());
    ImdsClientOptions client_options;
    client_options.url = *url;
    // One attempt never outlasts the whole client-facing deadline (an IMDS that hangs under --upstream-timeout 2s).
    client_options.request_timeout = std::min(client_options.request_timeout, o_.upstream_timeout);
    imds_ = std::make_unique<ImdsClient>(io_.get_executor(), client_options);
    upstream_ = std::make_unique<ImdsTokenUpstream>(*imds_, now_epoch);
    TokenCacheOptions cache_options;
    cache_options.request_deadline = o_.upstream_timeout;
    cache_options.on_upstream = [this](int status, double seconds) {
        if (metrics_)
            metrics_->on_upstream(status, seconds);
    };
    // Tokens survive a restart: written to a root-only file after each store, read back here (the previous agent
    // wrote its last ones before it handed over).
    if (!o_.token_cache_file.empty()) {
        persister_ = std::make_unique<TokenCachePersister>(io_.get_executor(), o_.token_cache_file);
        cache_options.on_stored = persister_->on_stored();
    }
    // Each key goes to its identity's source: the node's IMDS, or Entra ID (set up in Kubernetes mode).
    routed_ = std::make_unique<SourceRoutedUpstream>(*upstream_);
    tokens_ = std::make_unique<CachingTokenProvider>(io_.get_executor(), *routed_, cache_options);
    if (persister_) {
        auto loaded = load_token_cache(o_.token_cache_file, now_epoch());
        if (!loaded) {
            log_warn("token cache file not read; starting with an empty cache",
                     kv("reason", loaded.error().message) + kv("path", o_.token_cache_file));
        } else {
            const std::size_t taken = tokens_->seed(std::move(loaded->tokens));
            log_info("token cache restored",
                     kv("tokens", std::to_string(taken)) + kv("expired", std::to_string(loaded->expired)) +
                         kv("malformed", std::to_string(loaded->malformed)) + kv("path", o_.token_cache_file));
        }
        persister_->attach(*tokens_);
    }
    if (file_bindings_)
        file_bindings_->watch(io_);
    if (guard_) {
        // watch() subscribes to rtnetlink first and then guards what exists, so no interface falls in between.
        if (auto r = guard_->watch(io_); !r) {
            log_error("interface guard: cannot follow new interfaces", kv("reason", r.error().message));
            if (auto n = guard_->attach_existing(); !n)
                log_error("interface guard: some interfaces are not guarded", kv("reason", n.error().message));
        }
        log_info("interface guard attached",
                 kv("interfaces", std::to_string(guard_->guarded().size())) + kv("selector", o_.guard_interfaces));
    }
    return true;
}

// Kubernetes mode: node-scoped pod watch, CRDs and service accounts; Entra ID token exchange. Standalone, callers
// are cgroup paths matched by the bindings file.
bool Agent::connect_kubernetes() {
    if (!o_.kubernetes) {
        callers_ = std::make_unique<LocalCallerResolver>(*paths_, kubepods_rel_);
        return true;
    }
    auto policy = HostTokenPolicy::parse(o_.host_token_callers);
    if (!policy) {
        log_error("bad --host-token-callers", kv("reason", policy.error().message));
        return false;
    }
    auto config = kube::load_config(o_.kubeconfig);
    if (!config) {
        log_error("cannot load the Kubernetes client configuration", kv("reason", config.error().message));
        return false;
    }
    kube_state_ = std::make_unique<kube::KubeState>();
    kube_state_->on_pod_deleted([this](const PodInfo& pod) {
        // A deleted pod's service-account token and the access tokens it was exchanged for go with it.
        if (sa_tokens_)
            sa_tokens_->forget_pod(pod.uid);
        tokens_->forget([&pod](const TokenKey& key) { return key.entra && key.entra->pod_uid == pod.uid; });
        if (metrics_)
            metrics_->forget_pod(pod.ns, pod.name);
        if (bpf_collector_)
            bpf_collector_->forget_pod(pod.ns, pod.name);
    });
    if (auto r = kube_state_->start(io_, *config, o_.node_name); !r) {
        log_error("cannot start the Kubernetes watch", kv("reason", r.error().message));
        return false;
    }
    // Entra ID token exchange: TokenRequests and Secret reads through the API server, tokens from Entra ID.
    // A TokenRequest or a Secret read is part of a pod's request: it never outlasts the client-facing deadline.
    kube::ClientOptions request_options;
    request_options.request_timeout = std::min(request_options.request_timeout, o_.upstream_timeout);
    auto requests = kube::Client::create(*config, request_options);
    if (!requests) {
        log_error("cannot create the Kubernetes client", kv("reason", requests.error().message));
        return false;
    }
    kube_requests_ = *requests;
    entra::EntraClientOptions entra_options;
    entra_options.authority_host = o_.authority_host;
    // One attempt never outlasts the whole client-facing deadline, as for IMDS.
    entra_options.request_timeout = std::min(entra_options.request_timeout, o_.upstream_timeout);
    auto client = entra::EntraClient::create(io_.get_executor(), entra_options);
    if (!client) {
        log_error("cannot set up the Entra ID client",
                  kv("reason", client.error().message) + kv("authority_host", o_.authority_host));
        return false;
    }
    entra_client_ = std::move(*client);
    kube::ServiceAccountTokensOptions sa_options;
    sa_options.audience = o_.sa_token_audience;
    sa_tokens_ = std::make_unique<kube::ServiceAccountTokens>(io_.get_executor(), *requests, sa_options);
    secrets_ = std::make_unique<kube::SecretReader>(io_.get_executor(), *requests);
    entra_upstream_ = std::make_unique<EntraUpstream>(*entra_client_, kube_sources(*sa_tokens_, *secrets_));
    routed_->set_entra(entra_upstream_.get());
    KubeBindingOptions binding_options;
    binding_options.federated_workload_identity = o_.federated_workload_identity;
    binding_options.default_tenant = o_.tenant_id;
    auto* state = kube_state_.get();
    kube_bindings_ = std::make_unique<KubeBindingSource>([state] { return state->snapshot(); },
                                                         [state] { return state->synced(); }, binding_options);
    if (file_bindings_) {
        chained_ = std::make_unique<ChainedBindings>(*file_bindings_, *kube_bindings_);
        bindings_ = chained_.get();
    } else {
        bindings_ = kube_bindings_.get();
    }
    host_tokens_ = std::make_unique<KubeHostTokens>(std::move(*policy), *kube_state_, binding_options);
    callers_ = std::make_unique<KubeCallerResolver>(*paths_, kubepods_rel_, *kube_state_, o_.pod_wait);
    log_info("kubernetes mode", kv("node_name", o_.node_name) +
                                    kv("kubeconfig", o_.kubeconfig.empty() ? "in-cluster" : o_.kubeconfig) +
                                    kv("host_token_callers", o_.host_token_callers) +
                                    kv("workload_identity", o_.federated_workload_identity ? "federated" : "node") +
                                    kv("tenant_id", o_.tenant_id.empty() ? "(from annotations)" : o_.tenant_id) +
                                    kv("authority_host", o_.authority_host));
    return true;
}

// The request's side stages (origins, forwarder, audit) and what reports on the agent: readiness (programs
// attached, the self-check, bindings loaded/synced) and metrics.
void Agent::build_request_stages() {
    origins_ = std::make_unique<RecordedOrigins>(*dp_, recent_conns_);
    forwarder_ = std::make_unique<ImdsForwarder>(*imds_);
    audit_sink_ = std::make_unique<AuditSink>(*audit_);

    // The self-check: a process in a probe cgroup under the cgroup root dials 169.254.169.254 and must come back
    // attributed to that cgroup.
    SelfCheckOptions self_check_options;
    self_check_options.cgroup_root = cgroup_root_;
    self_check_options.own_cgroup = [this]() -> std::string {
        const uint64_t id = own_below_root_.load();
        if (id == 0)
            return "";
        auto rel = paths_->path_of(id);
        return rel ? mount_ + *rel : "";
    };
    self_check_options.on_result = [last = std::make_shared<std::optional<bool>>()](const SelfCheckStatus& st) {
        if (*last != st.passed)
            (st.passed ? log_info : log_warn)(st.passed ? "self-check passed" : "self-check failed",
                                              kv("detail", st.detail));
        *last = st.passed;
    };
    self_check_ = std::make_unique<SelfCheck>(self_check_options);
    HealthSources health_sources;
    health_sources.programs_attached = [this] { return dp_->report().size(); };
    health_sources.programs_expected = dp_->report().size();
    health_sources.self_check = [this] { return self_check_->status(); };
    health_sources.bindings_ready = [bindings = bindings_] { return bindings->ready(); };
    health_sources.retired = [this]() -> std::string {
        const int successor = handover_state_.successor_pid.load();
        return successor == 0 ? "" : "handed over to the agent with pid " + std::to_string(successor);
    };
    health_ = std::make_unique<Health>(health_sources);

    BpfCollectorSources bpf_sources;
    bpf_sources.counters = [this] { return dp_->counters(); };
    bpf_sources.cgroup_path = [this](uint64_t id) -> std::optional<std::string> {
        auto p = paths_->path_of(id);
        return p ? std::optional<std::string>(*p) : std::nullopt;
    };
    bpf_sources.kubepods_root = kubepods_rel_;
    if (kube_state_)
        bpf_sources.pod_by_uid = [state = kube_state_.get()](const std::string& uid) { return state->pod_by_uid(uid); };
    bpf_collector_ = std::make_unique<BpfCollector>(bpf_sources);
    MetricsProviders p;
    p.token_cache = [this] { return tokens_->stats(); };
    if (kube_state_) {
        p.pods_tracked = [state = kube_state_.get()] { return state->pods_count(); };
        p.kube_watches = [state = kube_state_.get()] {
            std::map<std::string, WatchCounters> out;
            for (const auto& [resource, st] : state->informer_stats())
                out[resource] = WatchCounters{st.watches > 0 ? st.watches - 1 : 0, st.events, st.nudges};
            return out;
        };
    }
    p.cgroups_tracked = [this] { return dp_->counters().size(); };
    p.bpf_programs_attached = [this] { return dp_->report().size(); };
    p.ready = [this] { return health_->readiness().ready; };
    if (guard_)
        p.guard = [this] {
            GuardCounters c = guard_->counters();
            return GuardMetrics{c[PODID_GUARD_DROP_V4], c[PODID_GUARD_DROP_V6], guard_->guarded().size()};
        };
    metrics_ = std::make_unique<Metrics>(PODID_VERSION, std::move(p));
    metrics_->add_collectable(bpf_collector_.get());
    audit_metrics_ = std::make_unique<AuditMetrics>(*audit_);  // podid_audit_lines_dropped_total
    metrics_->add_collectable(audit_metrics_.get());
    // podid_handovers_total, podid_handover_drained_connections_total
    handover_metrics_ = std::make_unique<HandoverMetrics>(handover_state_);
    metrics_->add_collectable(handover_metrics_.get());
}

// /metrics, /healthz and /readyz: on the listener the previous agent passed, or bound anew.
bool Agent::serve_metrics() {
    if (o_.metrics_addr.empty())
        return true;
    auto ep = parse_listen_address(o_.metrics_addr);
    if (!ep) {
        log_error("bad --metrics-addr", kv("reason", ep.error().message));
        return false;
    }
    AdminHandlers handlers;
    handlers.metrics = [this] { return metrics_->scrape(); };
    handlers.readiness = [this] { return health_->readiness(); };
    admin_ = std::make_unique<AdminServer>(io_, handlers);
    Fd passed = passed_listener(predecessor_, kHandoverMetrics, *ep);
    auto bound = passed.valid() ? admin_->adopt(std::move(passed)) : admin_->listen(*ep);
    if (!bound) {
        log_error("cannot serve metrics", kv("reason", bound.error().message));
        return false;
    }
    log_info("serving /metrics, /healthz and /readyz",
             kv("address", bound->address().to_string() + ":" + std::to_string(bound->port())));
    return true;
}

// The IMDS server on the node IP and on 127.0.0.1 (host-network callers): the passed listeners, or bound anew.
bool Agent::serve_imds() {
    ServerDeps deps;
    deps.origins = origins_.get();
    deps.callers = callers_.get();
    deps.host_tokens = host_tokens_.get();
    deps.bindings = bindings_;
    deps.tokens = tokens_.get();
    deps.forwarder = forwarder_.get();
    deps.sinks = {audit_sink_.get(), metrics_.get()};
    limits_.request_timeout = o_.request_timeout;
    limits_.idle_timeout = o_.idle_timeout;
    limits_.max_connections = o_.max_connections;
    limits_.max_connections_per_caller = o_.caller_max_connections;
    limits_.caller_requests_per_second = static_cast<double>(o_.caller_rate);
    limits_.caller_request_burst = static_cast<double>(o_.caller_burst);
    HandlerOptions handler_options;
    handler_options.block_instance_metadata = o_.block_instance_metadata;
    server_ = std::make_unique<Server>(serving_, deps, handler_options, limits_);

    using tcp = asio::ip::tcp;
    for (auto [address, loopback] : {std::pair{o_.node_ip, false}, std::pair{std::string("127.0.0.1"), true}}) {
        const tcp::endpoint wanted(asio::ip::make_address(address), o_.port);
        Fd passed = passed_listener(predecessor_, loopback ? kHandoverImdsLoopback : kHandoverImds, wanted);
        auto ep = passed.valid() ? server_->adopt(std::move(passed), loopback) : server_->listen(wanted, loopback);
        if (!ep) {
            log_error("cannot listen", kv("reason", ep.error().message));
            return false;
        }
    }
    return true;
}

// Inside a cgroup namespace, the agent's own cgroup is found through its own redirected connection, now that its
// listener queues pods' connections instead of refusing them (they are served once the I/O threads run).
bool Agent::find_own_cgroup() {
    if (own_id_ != 0)
        return true;
    auto discovered = own_cgroup_id_from_redirect(*dp_, o_.node_ip, o_.port);
    if (!discovered) {
        log_error("cannot find the agent's own cgroup", kv("reason", discovered.error().message));
        return false;
    }
    if (*discovered == 0) {
        log_info("the agent runs outside the cgroup root; it needs no exemption");
        return true;
    }
    own_below_root_ = *discovered;
    exempt_.push_back(*discovered);
    datapath_exempt_.push_back(*discovered);
    if (auto r = dp_->set_exempt(datapath_exempt_); !r) {
        log_error("cannot exempt the agent's own cgroup", kv("reason", r.error().message));
        return false;
    }
    log_info("agent cgroup found through the redirect (cgroup namespace)",
             kv("cgroup_id", std::to_string(*discovered)));
    return true;
}

// The admin socket for podidctl (root only; no TCP listener, so pods never reach it).
bool Agent::serve_admin_socket() {
    IntrospectSources views_sources;
    views_sources.version = PODID_VERSION;
    views_sources.started_ms = started_ms_;
    views_sources.node_ip = o_.node_ip;
    views_sources.port = o_.port;
    views_sources.node_name = o_.kubernetes ? o_.node_name : "";
    views_sources.cgroup_root = cgroup_root_;
    views_sources.kubepods_rel = kubepods_rel_;
    views_sources.bpffs = o_.bpffs;
    views_sources.datapath = &*dp_;
    views_sources.paths = paths_.get();
    views_sources.kube = kube_state_.get();
    views_sources.kube_bindings = kube_bindings_.get();
    views_sources.file_bindings = file_bindings_.get();
    views_sources.bindings = bindings_;
    views_sources.tokens = tokens_.get();
    views_sources.health = health_.get();
    views_sources.self_check = self_check_.get();
    views_sources.conns = &recent_conns_;
    views_sources.guard = guard_.get();
    views_sources.connections_open = [this] { return server_->connections(); };
    views_sources.pins = [this] { return handover_state_.to_json(); };
    views_ = std::make_unique<Introspection>(std::move(views_sources));
    if (o_.admin_socket.empty())
        return true;
    admin_socket_ = std::make_unique<AdminSocketServer>(
        io_, [this](const AdminRequest& req) { return introspect_response(req, *views_); });
    if (auto r = admin_socket_->listen(o_.admin_socket); !r) {
        log_error("cannot open the admin socket",
                  kv("reason", r.error().message) + kv("fix", "pass --admin-socket PATH, or \"\" to disable it"));
        return false;
    }
    log_info("serving podidctl on the admin socket", kv("path", o_.admin_socket));
    return true;
}

void Agent::stop_io() {
    if (kube_state_)
        kube_state_->stop();
    if (kube_requests_)
        kube_requests_->shutdown();
    for (auto& context : serving_only_)
        context->stop();
    io_.stop();
}

// Stops accepting and lets in-flight requests finish; `drained` runs once they have (or the drain timed out).
// Handed over, the listeners live on in the next agent: idle connections get a linger for their next request,
// the token cache file is the next agent's now, and the hand-over socket file stays.
void Agent::begin_drain(bool handed_over, std::function<void()> drained) {
    if (draining_)
        return;
    draining_ = true;
    // Listeners are shared while a hand-over is under way: passed to a new agent (which may not have asked this one
    // to drain yet), or received from an old agent that has not drained yet. A SIGTERM then must leave them alone.
    const bool shared =
        handed_over || (handover_ && handover_->listeners_passed()) || (predecessor_ && !predecessor_drained_.load());
    server_->shutdown(handed_over ? kHandoverIdleLinger : std::chrono::milliseconds(0),
                      shared ? Server::Listeners::live_on : Server::Listeners::close_for_good);
    if (admin_)
        admin_->shutdown();
    if (handover_)
        handover_->shutdown();
    if (handed_over)
        persister_.reset();  // its last write was before the hand-over; later ones would overwrite the next agent's
    self_check_->stop();
    if (guard_)
        guard_->stop();  // the filters stay: tc keeps them in force while no agent runs
    auto deadline = std::chrono::steady_clock::now() + limits_.drain_timeout;
    drain_check_ = [this, deadline, drained = std::move(drained)] {
        if ((server_->connections() == 0 && !server_->accepting()) || std::chrono::steady_clock::now() >= deadline) {
            audit_->flush();
            if (persister_)
                if (auto r = persister_->flush(); !r)
                    log_warn("cannot write the token cache file", kv("reason", r.error().message));
            drained();
            return;
        }
        drain_timer_->expires_after(std::chrono::milliseconds(20));
        drain_timer_->async_wait([this](const boost::system::error_code&) { drain_check_(); });
    };
    drain_check_();
}

void Agent::wait_hup() {
    hup_->async_wait([this](const boost::system::error_code& ec, int) {
        if (ec)
            return;
        if (auto r = audit_->reopen(); !r)
            log_error("cannot reopen the audit log", kv("reason", r.error().message));
        if (file_bindings_)
            file_bindings_->reload();
        log_info("SIGHUP: audit log reopened, bindings reloaded");
        wait_hup();
    });
}

// SIGTERM (what Kubernetes sends) and SIGINT drain; SIGHUP reopens the audit log and reloads bindings.
// The BPF pins stay: while no agent runs, pods' metadata connections are refused, never let through.
void Agent::handle_signals() {
    stop_signals_ = std::make_unique<asio::signal_set>(io_, SIGTERM, SIGINT);
    hup_ = std::make_unique<asio::signal_set>(io_, SIGHUP);
    drain_timer_ = std::make_unique<asio::steady_timer>(io_);
    wait_hup();
    stop_signals_->async_wait([this](const boost::system::error_code& ec, int signo) {
        if (ec)
            return;
        hup_->cancel();
        if (draining_) {  // handed over already (and waiting for this signal), or a second signal
            log_info("stopped", kv("signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"));
            stop_io();
            return;
        }
        log_info("draining", kv("signal", signo == SIGTERM ? "SIGTERM" : "SIGINT") +
                                 kv("in_flight_connections", std::to_string(server_->connections())));
        if (admin_socket_)
            admin_socket_->shutdown();
        begin_drain(false, [this] {
            log_info("stopped; BPF programs stay pinned", kv("bpffs", o_.bpffs));
            stop_io();
        });
    });
}

// Upgrades: the next agent asks here for the listeners (admin/handover.h).
bool Agent::serve_handover() {
    if (o_.handover_socket.empty())
        return true;
    HandoverHooks hooks;
    hooks.offer = [this] {
        // The next agent reads the token cache file right after this: write the latest tokens now.
        if (persister_)
            if (auto r = persister_->flush(); !r)
                log_warn("hand-over: cannot write the token cache file", kv("reason", r.error().message));
        HandoverContent content;
        for (auto [fd, loopback] : server_->listeners())
            content.listeners.emplace_back(loopback ? kHandoverImdsLoopback : kHandoverImds, fd);
        if (admin_ && admin_->listener_fd() >= 0)
            content.listeners.emplace_back(kHandoverMetrics, admin_->listener_fd());
        content.exempt = dp_->exempt();
        content.holding_since_ms = handover_state_.holding_since_ms.load();
        content.version = PODID_VERSION;
        return content;
    };
    hooks.drain = [this](int successor_pid, std::function<void()> done) {
        const std::size_t in_flight = server_->connections();
        handover_state_.successor_pid = successor_pid;
        handover_state_.handed_over_ms = now_epoch_ms();
        handover_state_.given = 1;
        handover_state_.drained_connections = in_flight;
        log_info("hand-over: the new agent serves; draining",
                 kv("successor_pid", std::to_string(successor_pid)) +
                     kv("in_flight_connections", std::to_string(in_flight)));
        begin_drain(true, [this, done = std::move(done)] {
            done();
            if (o_.exit_after_handover) {
                log_info("hand-over: drained; exiting (the new agent holds the pins)");
                if (admin_socket_)
                    admin_socket_->shutdown();
                // Let the "drained" line reach the new agent before the loop stops.
                drain_timer_->expires_after(std::chrono::milliseconds(50));
                drain_timer_->async_wait([this](const boost::system::error_code&) { stop_io(); });
            } else {
                log_info("hand-over: drained; waiting for SIGTERM (the new agent holds the pins)");
            }
        });
        return in_flight;
    };
    handover_ = std::make_unique<HandoverServer>(io_, std::move(hooks));
    Fd passed = predecessor_ ? predecessor_->offer().take(kHandoverSocket) : Fd();
    auto opened = passed.valid() ? handover_->adopt(std::move(passed), o_.handover_socket)
                                 : handover_->listen(o_.handover_socket);
    if (!opened) {
        log_error("cannot open the hand-over socket",
                  kv("reason", opened.error().message) +
                      kv("fix",
                         "pass --handover-socket PATH (shared by the agents of one node), or \"\" to "
                         "disable hand-over"));
        return false;
    }
    return true;
}

// The previous agent serves until told to drain, which it is now that this one serves. It stays exempt until it
// says it has drained. Asked from the I/O loop, so that this agent's accept loops run by then.
void Agent::take_over() {
    if (!predecessor_)
        return;
    asio::post(io_, [this] {
        auto draining_count = predecessor_->drain(std::chrono::seconds(5));
        if (!draining_count) {
            log_warn("hand-over: the previous agent did not acknowledge the drain",
                     kv("reason", draining_count.error().message));
        } else {
            log_info("hand-over: serving; the previous agent drains",
                     kv("predecessor_pid", std::to_string(predecessor_->offer().pid)) +
                         kv("its_connections", std::to_string(*draining_count)));
        }
        predecessor_->on_drained(io_, [this, pid = predecessor_->offer().pid] {
            predecessor_drained_ = true;
            if (auto r = dp_->set_exempt(exempt_); !r)
                log_warn("cannot drop the previous agent's exemption", kv("reason", r.error().message));
            log_info("hand-over: complete; the previous agent has drained", kv("predecessor_pid", std::to_string(pid)));
        });
    });
}

int Agent::run() {
    log_info("podid-agent ready", kv("node_ip", o_.node_ip) + kv("port", std::to_string(o_.port)) +
                                      kv("cgroup_root", cgroup_root_) + kv("bpffs", o_.bpffs) +
                                      kv("imds_url", o_.imds_url) +
                                      kv("bindings", o_.bindings_file.empty() ? "none" : o_.bindings_file));
    self_check_->start();  // runs in its own thread: the I/O threads must be running to answer it
    std::vector<std::thread> workers;
    for (auto& context : serving_only_)
        workers.emplace_back([&context] {
            auto busy = asio::make_work_guard(*context);  // runs until the drain stops it
            context->run();
        });
    io_.run();
    for (auto& t : workers)
        t.join();
    return 0;
}

}  // namespace

int run_agent(const AgentOptions& o) {
    Agent agent(o);
    // Kernel and cgroups first, then the running agent's listeners (an upgrade), before anything is bound.
    if (!agent.find_cgroups() || !agent.check_kernel())
        return 1;
    agent.ask_predecessor();
    // The datapath, then the stages of a request, then the listeners (passed on or bound).
    if (!agent.install_datapath())
        return 1;
    agent.load_interface_guard();
    if (!agent.open_audit_log() || !agent.load_bindings_file() || !agent.build_token_pipeline() ||
        !agent.connect_kubernetes())
        return 1;
    agent.build_request_stages();
    if (!agent.serve_metrics() || !agent.serve_imds() || !agent.find_own_cgroup() || !agent.serve_admin_socket())
        return 1;
    // Signals, the hand-over socket for the next agent, the drain of the previous one; then serve.
    agent.handle_signals();
    if (!agent.serve_handover())
        return 1;
    agent.take_over();
    return agent.run();
}

}  // namespace podid
