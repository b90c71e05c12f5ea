#include "cli.h"

#include <charconv>
#include <ostream>

#include <nlohmann/json.hpp>

#include "client.h"
#include "common/url.h"
#include "pins.h"
#include "render.h"

namespace podid::ctl {

using nlohmann::json;

std::string ctl_usage() {
    return R"(podidctl: inspect the podid agent on this node (run as root, on the node or in the agent's container)

usage: podidctl [--socket PATH] [--bpffs DIR] [-o table|json] COMMAND

commands:
  status                  the agent (ready?, self-check, bindings, token cache) and, read straight from bpffs,
                          the pinned links, maps and counters: works with the agent down (fail-closed check)
  pods                    pods on this node with their binding, default identity and BPF counters
  explain NAMESPACE/POD   which identity the pod gets and why (binding, selector, exception, precedence)
  explain --cgroup PATH   the same for a cgroup (standalone mode, or any process under the cgroup root)
  conns [--limit N]       the last connections the agent accepted, with the kernel's origin record (default 50)
  version

options:
  --socket PATH   the agent's admin socket (default /run/podid/admin.sock, or $PODID_ADMIN_SOCKET)
  --bpffs DIR     the agent's pin directory (default /sys/fs/bpf/podid, or $PODID_BPFFS)
  -o FORMAT       table (default) or json

exit status: 0 ok; 1 agent unreachable, not ready (status) or an error answer; 2 bad usage
)";
}

Result<CtlOptions> parse_ctl_options(const std::vector<std::string>& args, const std::string& env_socket,
                                     const std::string& env_bpffs) {
    CtlOptions o;
    if (!env_socket.empty())
        o.socket = env_socket;
    if (!env_bpffs.empty())
        o.bpffs = env_bpffs;
    std::vector<std::string> positional;
    bool have_command = false;
    for (size_t i = 0; i < args.size(); ++i) {
        std::string arg = args[i];
        std::string value;
        bool inline_value = false;
        if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            inline_value = true;
        }
        auto take = [&](const std::string& flag) -> Result<std::string> {
            if (inline_value)
                return value;
            if (i + 1 >= args.size())
                return make_error(flag + " needs a value", EINVAL);
            return args[++i];
        };
        if (arg == "-h" || arg == "--help" || arg == "help") {
            o.command = CtlOptions::Command::help;
            return o;
        }
        if (arg == "--socket" || arg == "--bpffs" || arg == "-o" || arg == "--output" || arg == "--cgroup" ||
            arg == "--limit") {
            auto v = take(arg);
            if (!v)
                return v.error();
            if (arg == "--socket") {
                o.socket = *v;
            } else if (arg == "--bpffs") {
                o.bpffs = *v;
            } else if (arg == "-o" || arg == "--output") {
                if (*v != "json" && *v != "table")
                    return make_error("-o: '" + *v + "' is not table or json", EINVAL);
                o.json = *v == "json";
            } else if (arg == "--cgroup") {
                o.explain_cgroup = *v;
            } else {
                auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), o.limit);
                if (ec != std::errc() || end != v->data() + v->size() || o.limit == 0 || o.limit > 100'000)
                    return make_error("--limit: '" + *v + "' is not a number from 1 to 100000", EINVAL);
            }
            continue;
        }
        if (arg == "-ojson" || arg == "-otable") {
            o.json = arg == "-ojson";
            continue;
        }
        if (!arg.empty() && arg[0] == '-')
            return make_error("unknown flag '" + arg + "' (see podidctl --help)", EINVAL);
        if (!have_command) {
            have_command = true;
            if (arg == "status")
                o.command = CtlOptions::Command::status;
            else if (arg == "pods")
                o.command = CtlOptions::Command::pods;
            else if (arg == "explain")
                o.command = CtlOptions::Command::explain;
            else if (arg == "conns")
                o.command = CtlOptions::Command::conns;
            else if (arg == "version")
                o.command = CtlOptions::Command::version;
            else
                return make_error("unknown command '" + arg + "' (status, pods, explain, conns, version)", EINVAL);
            continue;
        }
        positional.push_back(arg);
    }
    if (!have_command)
        return make_error("no command given (status, pods, explain, conns, version; see --help)", EINVAL);
    if (o.command == CtlOptions::Command::explain) {
        if (positional.size() == 1 && o.explain_cgroup.empty()) {
            const std::string& p = positional[0];
            auto slash = p.find('/');
            if (slash == std::string::npos || slash == 0 || slash + 1 == p.size() ||
                p.find('/', slash + 1) != std::string::npos)
                return make_error("explain: '" + p + "' is not NAMESPACE/POD", EINVAL);
            o.explain_pod = p;
        } else if (!(positional.empty() && !o.explain_cgroup.empty())) {
            return make_error("explain takes NAMESPACE/POD or --cgroup PATH", EINVAL);
        }
    } else if (!positional.empty()) {
        return make_error("unexpected argument '" + positional[0] + "'", EINVAL);
    } else if (!o.explain_cgroup.empty()) {
        return make_error("--cgroup goes with explain", EINVAL);
    }
    if (o.socket.empty() || o.socket[0] != '/')
        return make_error("--socket must be an absolute path", EINVAL);
    return o;
}

namespace {

// The agent's answer as JSON, or a printed error and exit status 1.
int fetch(const CtlOptions& o, const std::string& target, std::ostream& err, json& body) {
    auto reply = admin_get(o.socket, target);
    if (!reply) {
        err << "podidctl: " << reply.error().message << "\n";
        return 1;
    }
    if (reply->status != 200) {
        err << "podidctl: "
            << reply->body.value("error_description", "the agent answered " + std::to_string(reply->status)) << "\n";
        return 1;
    }
    body = std::move(reply->body);
    return 0;
}

}  // namespace

int run_ctl(const CtlOptions& o, std::ostream& out, std::ostream& err) {
    json body;
    switch (o.command) {
    case CtlOptions::Command::help: out << ctl_usage(); return 0;
    case CtlOptions::Command::version: out << "podidctl " << PODID_VERSION << "\n"; return 0;
    case CtlOptions::Command::status: {
        json agent;
        auto reply = admin_get(o.socket, "/v1/status");
        if (!reply)
            agent = json{{"error", reply.error().message}};
        else if (reply->status != 200)
            agent = json{{"error", reply->body.value("error_description", "HTTP " + std::to_string(reply->status))}};
        else
            agent = std::move(reply->body);
        json pins = read_pins(o.bpffs);
        if (o.json)
            out << json{{"agent", agent}, {"datapath", pins}}.dump(2) << "\n";
        else
            out << render_status(agent, pins);
        return agent.contains("error") || !agent.value("ready", false) ? 1 : 0;
    }
    case CtlOptions::Command::pods:
        if (int rc = fetch(o, "/v1/pods", err, body))
            return rc;
        out << (o.json ? body.dump(2) + "\n" : render_pods(body));
        return 0;
    case CtlOptions::Command::explain: {
        std::string target = o.explain_cgroup.empty() ? "/v1/explain?pod=" + percent_encode(o.explain_pod)
                                                      : "/v1/explain?cgroup=" + percent_encode(o.explain_cgroup);
        if (int rc = fetch(o, target, err, body))
            return rc;
        out << (o.json ? body.dump(2) + "\n" : render_explain(body));
        return 0;
    }
    case CtlOptions::Command::conns:
        if (int rc = fetch(o, "/v1/conns?limit=" + std::to_string(o.limit), err, body))
            return rc;
        out << (o.json ? body.dump(2) + "\n" : render_conns(body));
        return 0;
    }
    return 2;
}

}  // namespace podid::ctl
