#include "app/options.h"

#include "datapath/guard.h"

#include <arpa/inet.h>

#include <charconv>
#include <functional>

namespace podid {

namespace {

Result<uint64_t> parse_uint(const std::string& flag, const std::string& text, uint64_t min, uint64_t max) {
    uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value < min || value > max)
        return make_error(
            flag + ": '" + text + "' is not a number from " + std::to_string(min) + " to " + std::to_string(max),
            EINVAL);
    return value;
}

bool is_ip4(const std::string& text) {
    in_addr a{};
    return inet_pton(AF_INET, text.c_str(), &a) == 1;
}

}  // namespace

Result<std::chrono::milliseconds> parse_duration(const std::string& text) {
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    if (digits == 0 || digits > 12)
        return make_error("'" + text + "' is not a duration (use e.g. 500ms, 5s, 2m)", EINVAL);
    uint64_t n = std::stoull(text.substr(0, digits));
    std::string unit = text.substr(digits);
    uint64_t ms;
    if (unit == "ms")
        ms = n;
    else if (unit == "s" || unit.empty())
        ms = n * 1000;
    else if (unit == "m")
        ms = n * 60'000;
    else if (unit == "h")
        ms = n * 3'600'000;
    else
        return make_error("'" + text + "' has an unknown unit '" + unit + "' (use ms, s, m or h)", EINVAL);
    return std::chrono::milliseconds(ms);
}

std::string agent_usage() {
    return R"(usage: podid-agent [flags]            run the agent
       podid-agent uninstall [--bpffs DIR]   detach the programs and remove every pin

Datapath:
  --node-ip IP              node IP pods are redirected to and the agent listens on (default $NODE_IP)
  --port N                  agent port (default 2579)
  --cgroup-root DIR         cgroup the programs attach to (default: the kubepods cgroup under the cgroup2
                            mount found in /proc/self/mountinfo)
  --bpffs DIR               where links and maps are pinned (default /sys/fs/bpf/podid)
  --exempt-cgroup PATH      cgroup (path under the cgroup2 mount) the programs leave alone; repeatable.
                            The agent's own cgroup is always exempt.
  --guard-interfaces LIST   pod interfaces that get the tc guard against AF_PACKET frames to 169.254.169.254:
                            "veth" (every veth: the default), comma-separated name globs, or "none"

Token service:
  --imds-url URL            the node's IMDS (default http://169.254.169.254)
  --bindings FILE           standalone bindings (cgroup glob -> identities), reloaded on SIGHUP and on change
  --audit-log PATH|-        one JSON line per token request (default -: stdout; "" disables); reopened on SIGHUP
  --block-instance-metadata answer /metadata/instance with 403 instead of forwarding it
  --threads N               I/O threads (default 2)
  --request-timeout DUR     a request must arrive within this (default 10s)
  --idle-timeout DUR        keep-alive idle limit (default 90s)
  --upstream-timeout DUR    how long a client waits for IMDS on a cache miss, retries included (default 20s)
  --max-connections N       concurrent client connections (default 10000)
  --caller-max-connections N  concurrent connections from one caller (cgroup) (default 1000; 0 = no limit)
  --caller-rate N           requests per second one caller may send on average before IMDS's 429 (default 200;
                            0 = no limit)
  --caller-burst N          requests one caller may send at once above its rate (default 1000)

Kubernetes mode (on when --kubeconfig is given or $KUBERNETES_SERVICE_HOST is set):
  --kubeconfig FILE         kubeconfig to use instead of the in-cluster service account
  --node-name NAME          this node's name, for the pod watch (default $NODE_NAME)
  --pod-wait DUR            how long a token request from a pod the watch has not delivered yet waits (default 5s)
  --host-token-callers LIST who may call /host/token: namespace or namespace/serviceaccount, comma-separated;
                            "host" admits node processes outside kubepods, "none" nobody (default kube-system)

Entra ID token exchange (Kubernetes mode):
  --workload-identity MODE  federated (default): Workload Identity pods get tokens by exchanging their
                            service-account token with Entra ID; node: ask the node's IMDS for the client id
  --tenant-id ID            tenant for service accounts without azure.workload.identity/tenant-id
                            (default $AZURE_TENANT_ID)
  --authority-host URL      Entra ID (default $AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com/);
                            TLS verified against the system trust store ($SSL_CERT_FILE overrides it)
  --sa-token-audience AUD   audience of the service-account tokens podid requests (default api://AzureADTokenExchange)

Observability:
  --metrics-addr HOST:PORT  /metrics, /healthz and /readyz (default 0.0.0.0:9090; "" disables)
  --admin-socket PATH       unix socket for podidctl, root only (default /run/podid/admin.sock; "" disables)

restarts and upgrades (docs/upgrades.md):
  --handover-socket PATH    where the running agent hands its listeners to a new one, so an upgrade fails no
                            request; must be shared by both agents (default /run/podid/handover.sock; "" disables)
  --after-handover exit|wait  after handing over and draining: exit (default), or wait for SIGTERM (a
                            DaemonSet container, which the kubelet would restart if it exited)
  --token-cache-file PATH   tokens survive a restart: a root-only 0600 file, to be kept on a tmpfs
                            (default /run/podid/token-cache.json; "" disables)

  --help, --version
)";
}

Result<AgentOptions> parse_agent_options(const std::vector<std::string>& args,
                                         const std::map<std::string, std::string>& env) {
    AgentOptions o;
    if (auto it = env.find("NODE_IP"); it != env.end())
        o.node_ip = it->second;
    if (auto it = env.find("NODE_NAME"); it != env.end())
        o.node_name = it->second;
    if (auto it = env.find("KUBERNETES_SERVICE_HOST"); it != env.end() && !it->second.empty())
        o.kubernetes = true;
    if (auto it = env.find("AZURE_AUTHORITY_HOST"); it != env.end() && !it->second.empty())
        o.authority_host = it->second;
    if (auto it = env.find("AZURE_TENANT_ID"); it != env.end())
        o.tenant_id = it->second;

    size_t i = 0;
    if (!args.empty() && args[0] == "uninstall") {
        o.command = AgentOptions::Command::uninstall;
        i = 1;
    }

    using Setter = std::function<Result<void>(const std::string&)>;
    auto text = [](std::string& field) -> Setter {
        return [&field](const std::string& v) -> Result<void> {
            field = v;
            return {};
        };
    };
    auto duration = [](const std::string& flag, std::chrono::milliseconds& field) -> Setter {
        return [flag, &field](const std::string& v) -> Result<void> {
            auto d = parse_duration(v);
            if (!d)
                return make_error(flag + ": " + d.error().message, EINVAL);
            field = *d;
            return {};
        };
    };
    const std::map<std::string, Setter> with_value = {
        {"--node-ip", text(o.node_ip)},
        {"--port",
         [&o](const std::string& v) -> Result<void> {
             auto n = parse_uint("--port", v, 1, 65535);
             if (!n)
                 return n.error();
             o.port = static_cast<uint16_t>(*n);
             return {};
         }},
        {"--cgroup-root", text(o.cgroup_root)},
        {"--bpffs", text(o.bpffs)},
        {"--exempt-cgroup",
         [&o](const std::string& v) -> Result<void> {
             o.exempt_cgroups.push_back(v);
             return {};
         }},
        {"--imds-url", text(o.imds_url)},
        {"--bindings", text(o.bindings_file)},
        {"--audit-log", text(o.audit_log)},
        {"--threads",
         [&o](const std::string& v) -> Result<void> {
             auto n = parse_uint("--threads", v, 1, 64);
             if (!n)
                 return n.error();
             o.threads = static_cast<unsigned>(*n);
             return {};
         }},
        {"--request-timeout", duration("--request-timeout", o.request_timeout)},
        {"--idle-timeout", duration("--idle-timeout", o.idle_timeout)},
        {"--upstream-timeout", duration("--upstream-timeout", o.upstream_timeout)},
        {"--kubeconfig",
         [&o](const std::string& v) -> Result<void> {
             o.kubeconfig = v;
             o.kubernetes = true;
             return {};
         }},
        {"--node-name", text(o.node_name)},
        {"--pod-wait", duration("--pod-wait", o.pod_wait)},
        {"--host-token-callers", text(o.host_token_callers)},
        {"--authority-host", text(o.authority_host)},
        {"--tenant-id", text(o.tenant_id)},
        {"--sa-token-audience", text(o.sa_token_audience)},
        {"--workload-identity",
         [&o](const std::string& v) -> Result<void> {
             if (v != "federated" && v != "node")
                 return make_error("--workload-identity: '" + v + "' is not federated or node", EINVAL);
             o.federated_workload_identity = v == "federated";
             return {};
         }},
        {"--metrics-addr", text(o.metrics_addr)},
        {"--guard-interfaces", text(o.guard_interfaces)},
        {"--admin-socket", text(o.admin_socket)},
        {"--handover-socket", text(o.handover_socket)},
        {"--token-cache-file", text(o.token_cache_file)},
        {"--after-handover",
         [&o](const std::string& v) -> Result<void> {
             if (v != "exit" && v != "wait")
                 return make_error("--after-handover: '" + v + "' is not exit or wait", EINVAL);
             o.exit_after_handover = v == "exit";
             return {};
         }},
        {"--caller-max-connections",
         [&o](const std::string& v) -> Result<void> {
             auto n = parse_uint("--caller-max-connections", v, 0, 1'000'000);
             if (!n)
                 return n.error();
             o.caller_max_connections = *n;
             return {};
         }},
        {"--caller-rate",
         [&o](const std::string& v) -> Result<void> {
             auto n = parse_uint("--caller-rate", v, 0, 10'000'000);
             if (!n)
                 return n.error();
             o.caller_rate = *n;
             return {};
         }},
        {"--caller-burst",
         [&o](const std::string& v) -> Result<void> {
             auto n = parse_uint("--caller-burst", v, 1, 10'000'000);
             if (!n)
                 return n.error();
             o.caller_burst = *n;
             return {};
         }},
        {"--max-connections",
         [&o](const std::string& v) -> Result<void> {
             auto n = parse_uint("--max-connections", v, 1, 1'000'000);
             if (!n)
                 return n.error();
             o.max_connections = *n;
             return {};
         }},
    };
    const std::map<std::string, bool*> switches = {
        {"--block-instance-metadata", &o.block_instance_metadata},
    };

    for (; i < args.size(); ++i) {
        std::string arg = args[i];
        if (arg == "--help" || arg == "-h") {
            o.command = AgentOptions::Command::help;
            return o;
        }
        if (arg == "--version") {
            o.command = AgentOptions::Command::version;
            return o;
        }
        std::string value;
        bool inline_value = false;
        if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            inline_value = true;
        }
        if (auto s = switches.find(arg); s != switches.end()) {
            if (inline_value)
                return make_error(arg + " takes no value", EINVAL);
            *s->second = true;
            continue;
        }
        auto f = with_value.find(arg);
        if (f == with_value.end())
            return make_error("unknown flag '" + arg + "' (see --help)", EINVAL);
        if (o.command == AgentOptions::Command::uninstall && arg != "--bpffs")
            return make_error("uninstall takes only --bpffs", EINVAL);
        if (!inline_value) {
            if (i + 1 >= args.size())
                return make_error(arg + " needs a value", EINVAL);
            value = args[++i];
        }
        if (auto r = f->second(value); !r)
            return r.error();
    }

    if (o.command == AgentOptions::Command::run) {
        if (o.node_ip.empty())
            return make_error(
                "the node IP is not set: pass --node-ip or set $NODE_IP (the DaemonSet sets it from "
                "status.hostIP)",
                EINVAL);
        if (!is_ip4(o.node_ip))
            return make_error("--node-ip: '" + o.node_ip + "' is not an IPv4 address", EINVAL);
        if (o.kubernetes && o.node_name.empty())
            return make_error(
                "Kubernetes mode needs the node name: pass --node-name or set $NODE_NAME (the DaemonSet "
                "sets it from spec.nodeName)",
                EINVAL);
        if (!o.metrics_addr.empty() && o.metrics_addr.rfind(':') == std::string::npos)
            return make_error("--metrics-addr: '" + o.metrics_addr + "' is not HOST:PORT", EINVAL);
        if (o.guard_interfaces != "none")
            if (auto g = parse_guard_selector(o.guard_interfaces); !g)
                return g.error();
        if (!o.admin_socket.empty() && o.admin_socket[0] != '/')
            return make_error("--admin-socket: '" + o.admin_socket + "' must be an absolute path", EINVAL);
        if (!o.handover_socket.empty() && o.handover_socket[0] != '/')
            return make_error("--handover-socket: '" + o.handover_socket + "' must be an absolute path", EINVAL);
        if (!o.handover_socket.empty() && o.handover_socket == o.admin_socket)
            return make_error("--handover-socket and --admin-socket must differ", EINVAL);
        if (!o.token_cache_file.empty() && o.token_cache_file[0] != '/')
            return make_error("--token-cache-file: '" + o.token_cache_file + "' must be an absolute path", EINVAL);
        if (o.authority_host.rfind("https://", 0) != 0)
            return make_error("--authority-host: '" + o.authority_host +
                                  "' must be an https:// URL (token requests carry credentials)",
                              EINVAL);
        if (o.sa_token_audience.empty())
            return make_error("--sa-token-audience must not be empty", EINVAL);
        if (!o.cgroup_root.empty() && o.cgroup_root[0] != '/')
            return make_error("--cgroup-root: '" + o.cgroup_root + "' must be an absolute path", EINVAL);
    }
    if (o.bpffs.empty() || o.bpffs[0] != '/')
        return make_error("--bpffs: '" + o.bpffs + "' must be an absolute path", EINVAL);
    return o;
}

}  // namespace podid
