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

}  // namespace

int run_agent(const AgentOptions& o) {
    const int64_t started_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    auto mount = find_cgroup2_mount();
    if (!mount) {
        log_error("no cgroup2 mount", kv("reason", mount.error().message) +
                                          kv("fix", "podid needs the unified cgroup hierarchy (cgroup v2)"));
        return 1;
    }
    auto paths = CgroupPathResolver::open(*mount);
    if (!paths) {
        log_error("cannot open the cgroup2 mount", kv("reason", paths.error().message));
        return 1;
    }
    std::string cgroup_root = o.cgroup_root;
    if (cgroup_root.empty()) {
        auto rel = detect_kubepods_root(*mount);
        if (!rel) {
            log_error("cannot find the kubepods cgroup",
                      kv("reason", rel.error().message) + kv("fix", "pass --cgroup-root"));
            return 1;
        }
        cgroup_root = *mount + (*rel == "/" ? "" : *rel);
    }
    if (cgroup_root.rfind(*mount, 0) != 0 ||
        (cgroup_root.size() > mount->size() && cgroup_root[mount->size()] != '/')) {
        log_error("--cgroup-root is not under the cgroup2 mount",
                  kv("cgroup_root", cgroup_root) + kv("cgroup2_mount", *mount));
        return 1;
    }
    const std::string kubepods_rel = cgroup_root.size() == mount->size() ? "/" : cgroup_root.substr(mount->size());
    auto exempt = exempt_cgroup_ids(o.exempt_cgroups, **paths);
    if (!exempt) {
        log_error("cannot build the exempt cgroup set", kv("reason", exempt.error().message));
        return 1;
    }
    // The agent's own cgroup is always exempt, so its upstream calls reach the real IMDS.
    uint64_t own_id = own_cgroup_id_from_proc(**paths);
    if (own_id != 0)
        exempt->push_back(own_id);
    // The agent's own cgroup when it lies below the cgroup root (a DaemonSet pod does), else 0: where the self-check
    // moves if the kernel refuses it a cgroup directly below the root (nsdelegate). Known from /proc/self/cgroup
    // here, or from the redirect once the agent listens (inside a cgroup namespace).
    std::atomic<uint64_t> own_below_root{0};
    if (own_id != 0) {
        auto rel = (*paths)->path_of(own_id);
        if (rel && (kubepods_rel == "/" || rel->rfind(kubepods_rel + "/", 0) == 0))
            own_below_root = own_id;
    }

    // The capabilities, then every kernel feature the datapath relies on, each failure naming the feature and the
    // kernel that has it, before anything is loaded or asked of a running agent (docs/kernels.md). The attach
    // probes' throwaway cgroup goes below the cgroup root, which the agent may write (the mount's root is 0555).
    std::string missing_features;
    for (const auto& f : probe_kernel_features_report(cgroup_root)) {
        if (f.ok)
            continue;
        if (f.requirement->kind == ProbeKind::privileges) {
            log_error("podid-agent lacks a privilege it needs", kv("reason", f.detail));
            return 1;
        }
        missing_features += (missing_features.empty() ? "" : "; ") + f.detail;
    }
    if (!missing_features.empty()) {
        log_error("this kernel cannot run podid", kv("reason", missing_features));
        return 1;
    }

    // An upgrade: take the running agent's listeners first. It stays exempt (its own cgroup among what it exempts)
    // until it has drained, so its last token fetches still reach IMDS.
    HandoverState handover_state;
    std::optional<HandoverClient> predecessor = ask_predecessor(o);
    std::vector<uint64_t> datapath_exempt = *exempt;
    if (predecessor) {
        for (uint64_t id : predecessor->offer().exempt)
            if (std::find(datapath_exempt.begin(), datapath_exempt.end(), id) == datapath_exempt.end())
                datapath_exempt.push_back(id);
        handover_state.predecessor_pid = predecessor->offer().pid;
        handover_state.received = 1;
    }

    DatapathConfig dc;
    dc.cgroup_root = cgroup_root;
    dc.pin_dir = o.bpffs;
    dc.agent_ip4 = *parse_ip4(o.node_ip);
    dc.agent_port = o.port;
    dc.exempt_cgroups = datapath_exempt;
    auto dp = Datapath::install(dc);
    if (!dp) {
        log_error("cannot install the datapath", kv("reason", dp.error().message));
        return 1;
    }
    handover_state.holding_since_ms = now_epoch_ms();
    for (const auto& r : dp->report())
        log_info("program attached", kv("program", r.program) + kv("how", r.how) + kv("cgroup", cgroup_root));
    // Task: sockops takes the origin from the connecting task (newer kernels, docs/kernels.md); socket storage: the
    // connect hook keeps it.
    log_info("origin recording", kv("from", origin_recording_name(dp->origin_recording())));

    // The interface guard: AF_PACKET frames from pods' interfaces to 169.254.169.254, which no cgroup hook sees.
    // A failure is loud but not fatal: the cgroup datapath already covers every inet socket.
    std::unique_ptr<InterfaceGuard> guard;
    if (o.guard_interfaces != "none") {
        auto loaded = InterfaceGuard::load(o.bpffs, *parse_guard_selector(o.guard_interfaces));
        if (!loaded) {
            log_error("interface guard not loaded: pods with CAP_NET_RAW could reach 169.254.169.254 with AF_PACKET",
                      kv("reason", loaded.error().message));
        } else {
            guard = std::move(*loaded);  // attached below, once the io_context that follows rtnetlink exists
        }
    }

    auto audit = AuditLog::open(o.audit_log);
    if (!audit) {
        log_error("cannot open the audit log", kv("reason", audit.error().message));
        return 1;
    }

    auto url = parse_imds_url(o.imds_url);
    if (!url) {
        log_error("bad --imds-url", kv("reason", url.error().message));
        return 1;
    }

    std::unique_ptr<StaticBindings> file_bindings;
    NoBindings no_bindings;
    const BindingSource* bindings = &no_bindings;
    if (!o.bindings_file.empty()) {
        file_bindings = std::make_unique<StaticBindings>(o.bindings_file, [](const std::string& message) {
            log_error("bindings file rejected; keeping the previous bindings", kv("reason", message));
        });
        if (auto r = file_bindings->load(); !r) {
            log_error("invalid bindings file", kv("file", o.bindings_file) + kv("reason", r.error().message));
            return 1;
        }
        bindings = file_bindings.get();
    }

    // One io_context per I/O thread (see http/server.h): `io` also carries the control plane (API server
    // watches, upstream IMDS client, admin and metrics endpoints, signals); the others serve pods only.
    asio::io_context io(1);
    std::vector<std::unique_ptr<asio::io_context>> serving_only;
    std::vector<asio::io_context*> serving = {&io};
    for (unsigned i = 1; i < o.threads; ++i)
        serving.push_back(serving_only.emplace_back(std::make_unique<asio::io_context>(1)).get());
    // Built once everything it reads exists; the token cache and the pod watch report to it before that
    // through this pointer (null until then).
    std::unique_ptr<Metrics> metrics;
    std::unique_ptr<BpfCollector> bpf_collector;
    ImdsClientOptions client_options;
    client_options.url = *url;
    // One attempt never outlasts the whole client-facing deadline (an IMDS that hangs under --upstream-timeout 2s).
    client_options.request_timeout = std::min(client_options.request_timeout, o.upstream_timeout);
    ImdsClient imds(io.get_executor(), client_options);
    ImdsTokenUpstream upstream(imds, now_epoch);
    TokenCacheOptions cache_options;
    cache_options.request_deadline = o.upstream_timeout;
    cache_options.on_upstream = [&metrics](int status, double seconds) {
        if (metrics)
            metrics->on_upstream(status, seconds);
    };
    // Tokens survive a restart: written to a root-only file after each store, read back here (the previous agent
    // wrote its last ones before it handed over).
    std::unique_ptr<TokenCachePersister> persister;
    if (!o.token_cache_file.empty()) {
        persister = std::make_unique<TokenCachePersister>(io.get_executor(), o.token_cache_file);
        cache_options.on_stored = persister->on_stored();
    }
    // Each key goes to its identity's source: the node's IMDS, or Entra ID (set up in Kubernetes mode below).
    SourceRoutedUpstream routed(upstream);
    CachingTokenProvider tokens(io.get_executor(), routed, cache_options);
    if (persister) {
        auto loaded = load_token_cache(o.token_cache_file, now_epoch());
        if (!loaded) {
            log_warn("token cache file not read; starting with an empty cache",
                     kv("reason", loaded.error().message) + kv("path", o.token_cache_file));
        } else {
            const std::size_t taken = tokens.seed(std::move(loaded->tokens));
            log_info("token cache restored",
                     kv("tokens", std::to_string(taken)) + kv("expired", std::to_string(loaded->expired)) +
                         kv("malformed", std::to_string(loaded->malformed)) + kv("path", o.token_cache_file));
        }
        persister->attach(tokens);
    }
    if (file_bindings)
        file_bindings->watch(io);
    if (guard) {
        // watch() subscribes to rtnetlink first and then guards what exists, so no interface falls in between.
        if (auto r = guard->watch(io); !r) {
            log_error("interface guard: cannot follow new interfaces", kv("reason", r.error().message));
            if (auto n = guard->attach_existing(); !n)
                log_error("interface guard: some interfaces are not guarded", kv("reason", n.error().message));
        }
        log_info("interface guard attached",
                 kv("interfaces", std::to_string(guard->guarded().size())) + kv("selector", o.guard_interfaces));
    }

    // Kubernetes mode: node-scoped pod watch, CRDs and service accounts.
    std::shared_ptr<kube::Client> kube_requests;  // TokenRequests and Secret reads
    std::unique_ptr<kube::ServiceAccountTokens> sa_tokens;
    std::unique_ptr<kube::SecretReader> secrets;
    std::unique_ptr<entra::EntraClient> entra_client;
    std::unique_ptr<EntraUpstream> entra_upstream;
    std::unique_ptr<kube::KubeState> kube_state;
    std::unique_ptr<KubeBindingSource> kube_bindings;
    std::unique_ptr<ChainedBindings> chained;
    std::unique_ptr<KubeHostTokens> host_tokens;
    std::unique_ptr<CallerResolver> callers;
    if (o.kubernetes) {
        auto policy = HostTokenPolicy::parse(o.host_token_callers);
        if (!policy) {
            log_error("bad --host-token-callers", kv("reason", policy.error().message));
            return 1;
        }
        auto config = kube::load_config(o.kubeconfig);
        if (!config) {
            log_error("cannot load the Kubernetes client configuration", kv("reason", config.error().message));
            return 1;
        }
        kube_state = std::make_unique<kube::KubeState>();
        kube_state->on_pod_deleted([&metrics, &bpf_collector, &sa_tokens, &tokens](const PodInfo& pod) {
            // A deleted pod's service-account token and the access tokens it was exchanged for go with it.
            if (sa_tokens)
                sa_tokens->forget_pod(pod.uid);
            tokens.forget([&pod](const TokenKey& key) { return key.entra && key.entra->pod_uid == pod.uid; });
            if (metrics)
                metrics->forget_pod(pod.ns, pod.name);
            if (bpf_collector)
                bpf_collector->forget_pod(pod.ns, pod.name);
        });
        if (auto r = kube_state->start(io, *config, o.node_name); !r) {
            log_error("cannot start the Kubernetes watch", kv("reason", r.error().message));
            return 1;
        }
        // Entra ID token exchange: TokenRequests and Secret reads through the API server, tokens from Entra ID.
        // A TokenRequest or a Secret read is part of a pod's request: it never outlasts the client-facing deadline.
        kube::ClientOptions request_options;
        request_options.request_timeout = std::min(request_options.request_timeout, o.upstream_timeout);
        auto requests = kube::Client::create(*config, request_options);
        if (!requests) {
            log_error("cannot create the Kubernetes client", kv("reason", requests.error().message));
            return 1;
        }
        kube_requests = *requests;
        entra::EntraClientOptions entra_options;
        entra_options.authority_host = o.authority_host;
        // One attempt never outlasts the whole client-facing deadline, as for IMDS.
        entra_options.request_timeout = std::min(entra_options.request_timeout, o.upstream_timeout);
        auto client = entra::EntraClient::create(io.get_executor(), entra_options);
        if (!client) {
            log_error("cannot set up the Entra ID client",
                      kv("reason", client.error().message) + kv("authority_host", o.authority_host));
            return 1;
        }
        entra_client = std::move(*client);
        kube::ServiceAccountTokensOptions sa_options;
        sa_options.audience = o.sa_token_audience;
        sa_tokens = std::make_unique<kube::ServiceAccountTokens>(io.get_executor(), *requests, sa_options);
        secrets = std::make_unique<kube::SecretReader>(io.get_executor(), *requests);
        entra_upstream = std::make_unique<EntraUpstream>(*entra_client, kube_sources(*sa_tokens, *secrets));
        routed.set_entra(entra_upstream.get());
        KubeBindingOptions binding_options;
        binding_options.federated_workload_identity = o.federated_workload_identity;
        binding_options.default_tenant = o.tenant_id;
        auto* state = kube_state.get();
        kube_bindings = std::make_unique<KubeBindingSource>([state] { return state->snapshot(); },
                                                            [state] { return state->synced(); }, binding_options);
        if (file_bindings) {
            chained = std::make_unique<ChainedBindings>(*file_bindings, *kube_bindings);
            bindings = chained.get();
        } else {
            bindings = kube_bindings.get();
        }
        host_tokens = std::make_unique<KubeHostTokens>(std::move(*policy), *kube_state, binding_options);
        callers = std::make_unique<KubeCallerResolver>(**paths, kubepods_rel, *kube_state, o.pod_wait);
        log_info("kubernetes mode", kv("node_name", o.node_name) +
                                        kv("kubeconfig", o.kubeconfig.empty() ? "in-cluster" : o.kubeconfig) +
                                        kv("host_token_callers", o.host_token_callers) +
                                        kv("workload_identity", o.federated_workload_identity ? "federated" : "node") +
                                        kv("tenant_id", o.tenant_id.empty() ? "(from annotations)" : o.tenant_id) +
                                        kv("authority_host", o.authority_host));
    } else {
        callers = std::make_unique<LocalCallerResolver>(**paths, kubepods_rel);
    }

    RecentConnections recent_conns(1024);
    RecordedOrigins origins(*dp, recent_conns);
    ImdsForwarder forwarder(imds);
    AuditSink audit_sink(**audit);

    // Readiness: programs attached, the self-check (a process in a probe cgroup under the cgroup root
    // dials 169.254.169.254 and must come back attributed to that cgroup), bindings loaded/synced.
    SelfCheckOptions self_check_options;
    self_check_options.cgroup_root = cgroup_root;
    self_check_options.own_cgroup = [&own_below_root, &paths, mount = *mount]() -> std::string {
        const uint64_t id = own_below_root.load();
        if (id == 0)
            return "";
        auto rel = (*paths)->path_of(id);
        return rel ? mount + *rel : "";
    };
    self_check_options.on_result = [last = std::make_shared<std::optional<bool>>()](const SelfCheckStatus& st) {
        if (*last != st.passed)
            (st.passed ? log_info : log_warn)(st.passed ? "self-check passed" : "self-check failed",
                                              kv("detail", st.detail));
        *last = st.passed;
    };
    SelfCheck self_check(self_check_options);
    HealthSources health_sources;
    health_sources.programs_attached = [&dp] { return dp->report().size(); };
    health_sources.programs_expected = dp->report().size();
    health_sources.self_check = [&self_check] { return self_check.status(); };
    health_sources.bindings_ready = [bindings] { return bindings->ready(); };
    health_sources.retired = [&handover_state]() -> std::string {
        const int successor = handover_state.successor_pid.load();
        return successor == 0 ? "" : "handed over to the agent with pid " + std::to_string(successor);
    };
    Health health(health_sources);
    BpfCollectorSources bpf_sources;
    bpf_sources.counters = [&dp] { return dp->counters(); };
    bpf_sources.cgroup_path = [&paths](uint64_t id) -> std::optional<std::string> {
        auto p = (*paths)->path_of(id);
        return p ? std::optional<std::string>(*p) : std::nullopt;
    };
    bpf_sources.kubepods_root = kubepods_rel;
    if (kube_state)
        bpf_sources.pod_by_uid = [state = kube_state.get()](const std::string& uid) { return state->pod_by_uid(uid); };
    bpf_collector = std::make_unique<BpfCollector>(bpf_sources);
    metrics = std::make_unique<Metrics>(PODID_VERSION, [&] {
        MetricsProviders p;
        p.token_cache = [&tokens] { return tokens.stats(); };
        if (kube_state) {
            p.pods_tracked = [state = kube_state.get()] { return state->pods_count(); };
            p.kube_watches = [state = kube_state.get()] {
                std::map<std::string, WatchCounters> out;
                for (const auto& [resource, st] : state->informer_stats())
                    out[resource] = WatchCounters{st.watches > 0 ? st.watches - 1 : 0, st.events, st.nudges};
                return out;
            };
        }
        p.cgroups_tracked = [&dp] { return dp->counters().size(); };
        p.bpf_programs_attached = [&dp] { return dp->report().size(); };
        p.ready = [&health] { return health.readiness().ready; };
        if (guard)
            p.guard = [&guard] {
                GuardCounters c = guard->counters();
                return GuardMetrics{c[PODID_GUARD_DROP_V4], c[PODID_GUARD_DROP_V6], guard->guarded().size()};
            };
        return p;
    }());
    metrics->add_collectable(bpf_collector.get());
    AuditMetrics audit_metrics(**audit);  // podid_audit_lines_dropped_total
    metrics->add_collectable(&audit_metrics);
    HandoverMetrics handover_metrics(
        handover_state);  // podid_handovers_total, podid_handover_drained_connections_total
    metrics->add_collectable(&handover_metrics);
    std::unique_ptr<AdminServer> admin;
    if (!o.metrics_addr.empty()) {
        auto ep = parse_listen_address(o.metrics_addr);
        if (!ep) {
            log_error("bad --metrics-addr", kv("reason", ep.error().message));
            return 1;
        }
        AdminHandlers handlers;
        handlers.metrics = [&metrics] { return metrics->scrape(); };
        handlers.readiness = [&health] { return health.readiness(); };
        admin = std::make_unique<AdminServer>(io, handlers);
        Fd passed = passed_listener(predecessor, kHandoverMetrics, *ep);
        auto bound = passed.valid() ? admin->adopt(std::move(passed)) : admin->listen(*ep);
        if (!bound) {
            log_error("cannot serve metrics", kv("reason", bound.error().message));
            return 1;
        }
        log_info("serving /metrics, /healthz and /readyz",
                 kv("address", bound->address().to_string() + ":" + std::to_string(bound->port())));
    }

    ServerDeps deps;
    deps.origins = &origins;
    deps.callers = callers.get();
    deps.host_tokens = host_tokens.get();
    deps.bindings = bindings;
    deps.tokens = &tokens;
    deps.forwarder = &forwarder;
    deps.sinks = {&audit_sink, metrics.get()};
    ServerLimits limits;
    limits.request_timeout = o.request_timeout;
    limits.idle_timeout = o.idle_timeout;
    limits.max_connections = o.max_connections;
    limits.max_connections_per_caller = o.caller_max_connections;
    limits.caller_requests_per_second = static_cast<double>(o.caller_rate);
    limits.caller_request_burst = static_cast<double>(o.caller_burst);
    HandlerOptions handler_options;
    handler_options.block_instance_metadata = o.block_instance_metadata;
    Server server(serving, deps, handler_options, limits);

    using tcp = asio::ip::tcp;
    for (auto [address, loopback] : {std::pair{o.node_ip, false}, std::pair{std::string("127.0.0.1"), true}}) {
        const tcp::endpoint wanted(asio::ip::make_address(address), o.port);
        Fd passed = passed_listener(predecessor, loopback ? kHandoverImdsLoopback : kHandoverImds, wanted);
        auto ep = passed.valid() ? server.adopt(std::move(passed), loopback) : server.listen(wanted, loopback);
        if (!ep) {
            log_error("cannot listen", kv("reason", ep.error().message));
            return 1;
        }
    }

    // Inside a cgroup namespace, the agent's own cgroup is found through its own redirected connection, now that its
    // listener queues pods' connections instead of refusing them (they are served once the I/O threads run).
    if (own_id == 0) {
        auto discovered = own_cgroup_id_from_redirect(*dp, o.node_ip, o.port);
        if (!discovered) {
            log_error("cannot find the agent's own cgroup", kv("reason", discovered.error().message));
            return 1;
        }
        if (*discovered != 0) {
            own_below_root = *discovered;
            exempt->push_back(*discovered);
            datapath_exempt.push_back(*discovered);
            if (auto r = dp->set_exempt(datapath_exempt); !r) {
                log_error("cannot exempt the agent's own cgroup", kv("reason", r.error().message));
                return 1;
            }
            log_info("agent cgroup found through the redirect (cgroup namespace)",
                     kv("cgroup_id", std::to_string(*discovered)));
        } else {
            log_info("the agent runs outside the cgroup root; it needs no exemption");
        }
    }

    // The admin socket for podidctl (root only; no TCP listener, so pods never reach it).
    IntrospectSources views_sources;
    views_sources.version = PODID_VERSION;
    views_sources.started_ms = started_ms;
    views_sources.node_ip = o.node_ip;
    views_sources.port = o.port;
    views_sources.node_name = o.kubernetes ? o.node_name : "";
    views_sources.cgroup_root = cgroup_root;
    views_sources.kubepods_rel = kubepods_rel;
    views_sources.bpffs = o.bpffs;
    views_sources.datapath = &*dp;
    views_sources.paths = paths->get();
    views_sources.kube = kube_state.get();
    views_sources.kube_bindings = kube_bindings.get();
    views_sources.file_bindings = file_bindings.get();
    views_sources.bindings = bindings;
    views_sources.tokens = &tokens;
    views_sources.health = &health;
    views_sources.self_check = &self_check;
    views_sources.conns = &recent_conns;
    views_sources.guard = guard.get();
    views_sources.connections_open = [&server] { return server.connections(); };
    views_sources.pins = [&handover_state] { return handover_state.to_json(); };
    Introspection views(std::move(views_sources));
    std::unique_ptr<AdminSocketServer> admin_socket;
    if (!o.admin_socket.empty()) {
        admin_socket = std::make_unique<AdminSocketServer>(
            io, [&views](const AdminRequest& req) { return introspect_response(req, views); });
        if (auto r = admin_socket->listen(o.admin_socket); !r) {
            log_error("cannot open the admin socket",
                      kv("reason", r.error().message) + kv("fix", "pass --admin-socket PATH, or \"\" to disable it"));
            return 1;
        }
        log_info("serving podidctl on the admin socket", kv("path", o.admin_socket));
    }

    // SIGTERM (what Kubernetes sends) and SIGINT drain; SIGHUP reopens the audit log and reloads bindings.
    // The BPF pins stay: while no agent runs, pods' metadata connections are refused, never let through.
    asio::signal_set stop_signals(io, SIGTERM, SIGINT);
    asio::signal_set hup(io, SIGHUP);
    asio::steady_timer drain_timer(io);
    std::unique_ptr<HandoverServer> handover;
    bool draining = false;
    // Lives as long as the I/O loop: the drain timer calls it again every 20 ms after the signal handler returned.
    std::function<void()> drain_check;
    auto stop_io = [&] {
        if (kube_state)
            kube_state->stop();
        if (kube_requests)
            kube_requests->shutdown();
        for (auto& context : serving_only)
            context->stop();
        io.stop();
    };
    // Stops accepting and lets in-flight requests finish; `drained` runs once they have (or the drain timed out).
    // Handed over, the listeners live on in the next agent: idle connections get a linger for their next request,
    // the token cache file is the next agent's now, and the hand-over socket file stays.
    auto begin_drain = [&](bool handed_over, std::function<void()> drained) {
        if (draining)
            return;
        draining = true;
        server.shutdown(handed_over ? kHandoverIdleLinger : std::chrono::milliseconds(0));
        if (admin)
            admin->shutdown();
        if (handover)
            handover->shutdown();
        if (handed_over)
            persister.reset();  // its last write was before the hand-over; later ones would overwrite the next agent's
        self_check.stop();
        if (guard)
            guard->stop();  // the filters stay: tc keeps them in force while no agent runs
        auto deadline = std::chrono::steady_clock::now() + limits.drain_timeout;
        drain_check = [&, deadline, drained = std::move(drained)] {
            if ((server.connections() == 0 && !server.accepting()) || std::chrono::steady_clock::now() >= deadline) {
                (*audit)->flush();
                if (persister)
                    if (auto r = persister->flush(); !r)
                        log_warn("cannot write the token cache file", kv("reason", r.error().message));
                drained();
                return;
            }
            drain_timer.expires_after(std::chrono::milliseconds(20));
            drain_timer.async_wait([&drain_check](const boost::system::error_code&) { drain_check(); });
        };
        drain_check();
    };
    std::function<void()> wait_hup = [&] {
        hup.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec)
                return;
            if (auto r = (*audit)->reopen(); !r)
                log_error("cannot reopen the audit log", kv("reason", r.error().message));
            if (file_bindings)
                file_bindings->reload();
            log_info("SIGHUP: audit log reopened, bindings reloaded");
            wait_hup();
        });
    };
    wait_hup();
    stop_signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (ec)
            return;
        hup.cancel();
        if (draining) {  // handed over already (and waiting for this signal), or a second signal
            log_info("stopped", kv("signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"));
            stop_io();
            return;
        }
        log_info("draining", kv("signal", signo == SIGTERM ? "SIGTERM" : "SIGINT") +
                                 kv("in_flight_connections", std::to_string(server.connections())));
        if (admin_socket)
            admin_socket->shutdown();
        begin_drain(false, [&] {
            log_info("stopped; BPF programs stay pinned", kv("bpffs", o.bpffs));
            stop_io();
        });
    });

    // Upgrades: the next agent asks here for the listeners (admin/handover.h).
    if (!o.handover_socket.empty()) {
        HandoverHooks hooks;
        hooks.offer = [&] {
            // The next agent reads the token cache file right after this: write the latest tokens now.
            if (persister)
                if (auto r = persister->flush(); !r)
                    log_warn("hand-over: cannot write the token cache file", kv("reason", r.error().message));
            HandoverContent content;
            for (auto [fd, loopback] : server.listeners())
                content.listeners.emplace_back(loopback ? kHandoverImdsLoopback : kHandoverImds, fd);
            if (admin && admin->listener_fd() >= 0)
                content.listeners.emplace_back(kHandoverMetrics, admin->listener_fd());
            content.exempt = dp->exempt();
            content.holding_since_ms = handover_state.holding_since_ms.load();
            content.version = PODID_VERSION;
            return content;
        };
        hooks.drain = [&](int successor_pid, std::function<void()> done) {
            const std::size_t in_flight = server.connections();
            handover_state.successor_pid = successor_pid;
            handover_state.handed_over_ms = now_epoch_ms();
            handover_state.given = 1;
            handover_state.drained_connections = in_flight;
            log_info("hand-over: the new agent serves; draining",
                     kv("successor_pid", std::to_string(successor_pid)) +
                         kv("in_flight_connections", std::to_string(in_flight)));
            begin_drain(true, [&, done = std::move(done)] {
                done();
                if (o.exit_after_handover) {
                    log_info("hand-over: drained; exiting (the new agent holds the pins)");
                    if (admin_socket)
                        admin_socket->shutdown();
                    // Let the "drained" line reach the new agent before the loop stops.
                    drain_timer.expires_after(std::chrono::milliseconds(50));
                    drain_timer.async_wait([&](const boost::system::error_code&) { stop_io(); });
                } else {
                    log_info("hand-over: drained; waiting for SIGTERM (the new agent holds the pins)");
                }
            });
            return in_flight;
        };
        handover = std::make_unique<HandoverServer>(io, std::move(hooks));
        Fd passed = predecessor ? predecessor->offer().take(kHandoverSocket) : Fd();
        auto opened = passed.valid() ? handover->adopt(std::move(passed), o.handover_socket)
                                     : handover->listen(o.handover_socket);
        if (!opened) {
            log_error("cannot open the hand-over socket",
                      kv("reason", opened.error().message) +
                          kv("fix",
                             "pass --handover-socket PATH (shared by the agents of one node), or \"\" to "
                             "disable hand-over"));
            return 1;
        }
    }
    // The previous agent serves until told to drain, which it is now that this one serves. It stays exempt until it
    // says it has drained.
    // Asked from the I/O loop, so that this agent's accept loops run by then.
    if (predecessor)
        asio::post(io, [&] {
            auto draining_count = predecessor->drain(std::chrono::seconds(5));
            if (!draining_count) {
                log_warn("hand-over: the previous agent did not acknowledge the drain",
                         kv("reason", draining_count.error().message));
            } else {
                log_info("hand-over: serving; the previous agent drains",
                         kv("predecessor_pid", std::to_string(predecessor->offer().pid)) +
                             kv("its_connections", std::to_string(*draining_count)));
            }
            predecessor->on_drained(io, [&, pid = predecessor->offer().pid] {
                if (auto r = dp->set_exempt(*exempt); !r)
                    log_warn("cannot drop the previous agent's exemption", kv("reason", r.error().message));
                log_info("hand-over: complete; the previous agent has drained",
                         kv("predecessor_pid", std::to_string(pid)));
            });
        });

    log_info("podid-agent ready", kv("node_ip", o.node_ip) + kv("port", std::to_string(o.port)) +
                                      kv("cgroup_root", cgroup_root) + kv("bpffs", o.bpffs) +
                                      kv("imds_url", o.imds_url) +
                                      kv("bindings", o.bindings_file.empty() ? "none" : o.bindings_file));

    self_check.start();  // runs in its own thread: the I/O threads must be running to answer it
    std::vector<std::thread> workers;
    for (auto& context : serving_only)
        workers.emplace_back([&context] {
            auto busy = asio::make_work_guard(*context);  // runs until the drain stops it
            context->run();
        });
    io.run();
    for (auto& t : workers)
        t.join();
    return 0;
}

}  // namespace podid
