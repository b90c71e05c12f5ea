#include "app/agent.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <thread>

#include "caller/cgroup_paths.h"
#include "caller/local_caller_resolver.h"
#include "datapath/datapath.h"
#include "http/server.h"
#include "observe/audit.h"
#include "observe/log.h"
#include "policy/static_bindings.h"
#include "token/imds_client.h"
#include "token/imds_token_upstream.h"
#include "token/token_cache.h"

namespace podid {

namespace asio = boost::asio;

namespace {

class DatapathOrigins : public OriginSource {
public:
    explicit DatapathOrigins(const Datapath& dp) : dp_(dp) {}
    std::optional<Origin> origin_of(int fd) const override { return dp_.origin_of(fd); }

private:
    const Datapath& dp_;
};

// Without --bindings nobody is bound: every token request gets IMDS's "Identity not found".
class NoBindings : public BindingSource {
public:
    Binding bindings_for(const Caller&) const override { return {}; }
    bool ready() const override { return true; }
};

class ClientForwarder : public Forwarder {
public:
    explicit ClientForwarder(ImdsClient& client) : client_(client) {}
    asio::awaitable<HttpResponse> forward(const HttpRequest& req) override {
        auto res = co_await client_.forward(req);
        if (res)
            co_return std::move(*res);
        log_warn("forwarding to IMDS failed", kv("path", std::string(req.target())) + kv("error", res.error().message));
        co_return imds_error(req, 502, "bad_gateway", "IMDS did not answer");
    }

private:
    ImdsClient& client_;
};

class AuditSink : public RequestSink {
public:
    explicit AuditSink(AuditLog& log) : log_(log) {}
    void on_request(const AuditRecord& r) override {
        // Every identity request is audited; other paths only when something was denied.
        if (r.kind == "token" || r.kind == "host_token" || is_denial(r.reason))
            log_.write(r);
    }

private:
    AuditLog& log_;
};

int64_t now_epoch() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Resolves the cgroup paths of the exempt set: the agent's own cgroup plus --exempt-cgroup.
Result<std::vector<uint64_t>> exempt_ids(const AgentOptions& o, CgroupPathResolver& paths) {
    std::vector<uint64_t> ids;
    std::string own = own_cgroup_path();
    if (own.empty())
        return make_error("cannot find the agent's own cgroup in /proc/self/cgroup; podid needs cgroup v2", ENOENT);
    uint64_t own_id = paths.id_of(own);
    if (own_id == 0)
        return make_error("the agent's cgroup " + own + " is not visible under " + paths.mount() +
                              " (mount the host's cgroup2 filesystem into the container)",
                          ENOENT);
    ids.push_back(own_id);
    for (const auto& p : o.exempt_cgroups) {
        uint64_t id = paths.id_of(p);
        if (id == 0)
            return make_error("--exempt-cgroup: " + p + " does not exist under " + paths.mount(), ENOENT);
        ids.push_back(id);
    }
    return ids;
}

}  // namespace

int run_agent(const AgentOptions& o) {
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
            log_error("cannot find the kubepods cgroup", kv("reason", rel.error().message) +
                                                            kv("fix", "pass --cgroup-root"));
            return 1;
        }
        cgroup_root = *mount + (*rel == "/" ? "" : *rel);
    }
    if (cgroup_root.rfind(*mount, 0) != 0 || (cgroup_root.size() > mount->size() && cgroup_root[mount->size()] != '/')) {
        log_error("--cgroup-root is not under the cgroup2 mount",
                  kv("cgroup_root", cgroup_root) + kv("cgroup2_mount", *mount));
        return 1;
    }
    const std::string kubepods_rel = cgroup_root.size() == mount->size() ? "/" : cgroup_root.substr(mount->size());
    auto exempt = exempt_ids(o, **paths);
    if (!exempt) {
        log_error("cannot build the exempt cgroup set", kv("reason", exempt.error().message));
        return 1;
    }

    DatapathConfig dc;
    dc.cgroup_root = cgroup_root;
    dc.pin_dir = o.bpffs;
    dc.agent_ip4 = *parse_ip4(o.node_ip);
    dc.agent_port = o.port;
    dc.exempt_cgroups = *exempt;
    auto dp = Datapath::install(dc);
    if (!dp) {
        log_error("cannot install the datapath", kv("reason", dp.error().message));
        return 1;
    }
    for (const auto& r : dp->report())
        log_info("program attached", kv("program", r.program) + kv("how", r.how) + kv("cgroup", cgroup_root));

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

    asio::io_context io(static_cast<int>(o.threads));
    ImdsClientOptions client_options;
    client_options.url = *url;
    ImdsClient imds(io.get_executor(), client_options);
    ImdsTokenUpstream upstream(imds, now_epoch);
    TokenCacheOptions cache_options;
    cache_options.request_deadline = o.upstream_timeout;
    CachingTokenProvider tokens(io.get_executor(), upstream, cache_options);
    if (file_bindings)
        file_bindings->watch(io);

    DatapathOrigins origins(*dp);
    LocalCallerResolver callers(**paths, kubepods_rel);
    ClientForwarder forwarder(imds);
    AuditSink audit_sink(**audit);

    ServerDeps deps;
    deps.origins = &origins;
    deps.callers = &callers;
    deps.bindings = bindings;
    deps.tokens = &tokens;
    deps.forwarder = &forwarder;
    deps.sinks = {&audit_sink};
    ServerLimits limits;
    limits.request_timeout = o.request_timeout;
    limits.idle_timeout = o.idle_timeout;
    limits.max_connections = o.max_connections;
    HandlerOptions handler_options;
    handler_options.block_instance_metadata = o.block_instance_metadata;
    Server server(io, deps, handler_options, limits);

    using tcp = asio::ip::tcp;
    for (auto [address, loopback] : {std::pair{o.node_ip, false}, std::pair{std::string("127.0.0.1"), true}}) {
        auto ep = server.listen(tcp::endpoint(asio::ip::make_address(address), o.port), loopback);
        if (!ep) {
            log_error("cannot listen", kv("reason", ep.error().message));
            return 1;
        }
    }

    // SIGTERM (what Kubernetes sends) and SIGINT drain; SIGHUP reopens the audit log and reloads bindings.
    // The BPF pins stay: while no agent runs, pods' metadata connections are refused, never let through.
    asio::signal_set stop_signals(io, SIGTERM, SIGINT);
    asio::signal_set hup(io, SIGHUP);
    asio::steady_timer drain_timer(io);
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
        log_info("draining", kv("signal", signo == SIGTERM ? "SIGTERM" : "SIGINT") +
                                  kv("in_flight_connections", std::to_string(server.connections())));
        server.shutdown();
        hup.cancel();
        auto deadline = std::chrono::steady_clock::now() + limits.drain_timeout;
        std::function<void()> check = [&, deadline] {
            if (server.connections() == 0 || std::chrono::steady_clock::now() >= deadline) {
                log_info("stopped; BPF programs stay pinned", kv("bpffs", o.bpffs));
                io.stop();
                return;
            }
            drain_timer.expires_after(std::chrono::milliseconds(20));
            drain_timer.async_wait([&check](const boost::system::error_code&) { check(); });
        };
        check();
    });

    log_info("podid-agent ready", kv("node_ip", o.node_ip) + kv("port", std::to_string(o.port)) +
                                      kv("cgroup_root", cgroup_root) + kv("bpffs", o.bpffs) +
                                      kv("imds_url", o.imds_url) +
                                      kv("bindings", o.bindings_file.empty() ? "none" : o.bindings_file));

    std::vector<std::thread> workers;
    for (unsigned i = 1; i < o.threads; ++i)
        workers.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : workers)
        t.join();
    return 0;
}

}  // namespace podid
