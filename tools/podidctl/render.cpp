#include "render.h"

#include <algorithm>
#include <map>
#include <sstream>

namespace podid::ctl {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key, const std::string& fallback = "") {
    if (!j.is_object() || !j.contains(key) || j[key].is_null())
        return fallback;
    const json& v = j[key];
    return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string identity_text(const json& id) {
    std::string s;
    if (id.contains("client_id"))
        s = "client_id " + id["client_id"].get<std::string>();
    else if (id.contains("resource_id"))
        s = "resource_id " + id["resource_id"].get<std::string>();
    else if (id.contains("object_id"))
        s = "object_id " + id["object_id"].get<std::string>();
    if (id.contains("name") && !id["name"].get<std::string>().empty())
        s += " (" + id["name"].get<std::string>() + ")";
    // Tokens from Entra ID rather than the node's IMDS: say from where, and as whom.
    const std::string source = str(id, "source", "node_imds");
    if (source == "federated")
        s += ", federated: tenant " + str(id, "tenant", "?") + ", subject " + str(id, "subject", "?");
    else if (source == "client_secret" || source == "client_certificate")
        s += ", service principal (" + source + " in Secret " + str(id, "secret", "?") + "): tenant " +
             str(id, "tenant", "?");
    return s;
}

// The default identity's id, "+N" when more are bound.
std::string identity_cell(const json& ids) {
    if (!ids.is_array() || ids.empty())
        return "-";
    const json& first = ids[0];
    std::string s = first.contains("client_id")     ? first["client_id"].get<std::string>()
                    : first.contains("resource_id") ? first["resource_id"].get<std::string>()
                                                    : str(first, "object_id", "?");
    if (ids.size() > 1)
        s += " (+" + std::to_string(ids.size() - 1) + ")";
    return s;
}

void line(std::ostringstream& out, const std::string& key, const std::string& value) {
    out << key << std::string(key.size() < 13 ? 13 - key.size() : 1, ' ') << value << "\n";
}

}  // namespace

std::string format_duration(int64_t seconds) {
    if (seconds < 0)
        seconds = 0;
    int64_t h = seconds / 3600, m = (seconds % 3600) / 60, s = seconds % 60;
    if (h > 0)
        return std::to_string(h) + "h" + std::to_string(m) + "m";
    if (m > 0)
        return std::to_string(m) + "m" + std::to_string(s) + "s";
    return std::to_string(s) + "s";
}

std::string format_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> width(header.size());
    for (size_t c = 0; c < header.size(); ++c)
        width[c] = header[c].size();
    for (const auto& r : rows)
        for (size_t c = 0; c < r.size() && c < width.size(); ++c)
            width[c] = std::max(width[c], r[c].size());
    std::ostringstream out;
    auto emit = [&](const std::vector<std::string>& cells) {
        std::string l;
        for (size_t c = 0; c < header.size(); ++c) {
            std::string cell = c < cells.size() ? cells[c] : "";
            l += cell;
            if (c + 1 < header.size())
                l += std::string(width[c] - cell.size() + 2, ' ');
        }
        while (!l.empty() && l.back() == ' ')
            l.pop_back();
        out << l << "\n";
    };
    emit(header);
    for (const auto& r : rows)
        emit(r);
    return out.str();
}

std::string render_status(const json& agent, const json& pins) {
    std::ostringstream out;
    const bool reachable = agent.is_object() && !agent.contains("error");
    if (reachable) {
        std::string state =
            agent.value("ready", false) ? "running, ready" : "running, NOT READY: " + str(agent, "not_ready_reason");
        line(out, "agent", state);
        std::string about = "pid " + str(agent, "pid") + ", version " + str(agent, "version") + ", up " +
                            format_duration(agent.value("uptime_seconds", int64_t{0})) + ", " + str(agent, "mode") +
                            " mode";
        if (agent.contains("node_name"))
            about += ", node " + str(agent, "node_name");
        line(out, "", about);
        line(out, "redirect", "169.254.169.254:80 -> " + str(agent, "node_ip") + ":" + str(agent, "port"));
        if (agent.contains("pins_holder") && agent["pins_holder"].is_object()) {
            const json& h = agent["pins_holder"];
            std::string holder;
            if (h.contains("handed_over_to_pid"))
                holder = "handed over to pid " + str(h, "handed_over_to_pid") + " at " + str(h, "handed_over") +
                         " (this agent drains)";
            else
                holder = "this agent (pid " + str(h, "holder_pid") + ") since " + str(h, "holding_since");
            if (h.value("taken_over_from_pid", 0) != 0)
                holder += ", taken over from pid " + str(h, "taken_over_from_pid");
            line(out, "pins held by", holder);
        }
        line(out, "cgroup root", str(agent, "cgroup_root"));
        if (agent.contains("self_check")) {
            const json& sc = agent["self_check"];
            std::string s = sc.value("passed", false) ? "passed" : "FAILED";
            if (sc.contains("age_seconds"))
                s += " " + format_duration(sc["age_seconds"].get<int64_t>()) + " ago";
            else
                s = "not run yet";
            if (!sc.value("passed", false) && !str(sc, "detail").empty())
                s += ": " + str(sc, "detail");
            line(out, "self-check", s);
        }
        if (agent.contains("bindings")) {
            const json& b = agent["bindings"];
            std::vector<std::string> parts;
            if (b.contains("file"))
                parts.push_back("file " + str(b, "file") + " (" + str(b, "file_entries") + " entries)");
            if (agent.contains("kubernetes")) {
                const json& k = agent["kubernetes"];
                parts.push_back(std::string("kubernetes (") + (k.value("synced", false) ? "synced" : "NOT synced") +
                                ", " + str(k, "pods") + " pods on this node)");
            }
            line(
                out, "bindings", parts.empty() ? "none (nobody is bound)" : [&] {
                    std::string s;
                    for (const auto& p : parts)
                        s += (s.empty() ? "" : " + ") + p;
                    return s;
                }());
        }
        if (agent.contains("token_cache")) {
            const json& c = agent["token_cache"];
            std::string s = str(c, "entries") + " tokens, " + str(c, "hits") + " hits, " + str(c, "misses") +
                            " misses, " + str(c, "shared") + " shared";
            std::string up;
            for (auto it = c["upstream_by_status"].begin(); it != c["upstream_by_status"].end(); ++it)
                up += (up.empty() ? "" : ", ") + it.key() + " x" + it.value().dump();
            if (!up.empty())
                s += "; upstream " + up;
            line(out, "token cache", s);
        }
        if (agent.contains("interface_guard")) {
            const json& g = agent["interface_guard"];
            if (g.is_null()) {
                line(out, "guard", "OFF: AF_PACKET frames from pods are not filtered (--guard-interfaces none)");
            } else {
                const json d = g.value("dropped", json::object());
                line(out, "guard",
                     std::to_string(g.value("interfaces", json::array()).size()) + " pod interfaces; dropped " +
                         str(d, "drop_ipv4", "0") + " IPv4 and " + str(d, "drop_ipv6", "0") +
                         " IPv6 frames to 169.254.169.254");
            }
        }
        line(out, "connections",
             str(agent, "connections_open", "0") + " open, " + str(agent, "connections_accepted", "0") +
                 " accepted since start");
    } else {
        line(out, "agent", "NOT REACHABLE: " + str(agent, "error"));
    }

    const size_t present = pins.value("present", size_t{0}), expected = pins.value("expected", size_t{0});
    if (!reachable) {
        if (present == expected && expected > 0)
            line(out, "datapath",
                 "fail closed: the programs are pinned, so pods' connections to 169.254.169.254 are "
                 "refused until an agent starts (none reaches the node's identity)");
        else if (present == 0)
            line(out, "datapath",
                 "nothing pinned in " + str(pins, "bpffs") +
                     ": pods reach 169.254.169.254 directly (podid is not installed on this node)");
        else
            line(out, "datapath",
                 "PARTIAL: " + std::to_string(present) + " of " + std::to_string(expected) + " pins present in " +
                     str(pins, "bpffs"));
    }

    out << "\nLINKS (" << present << "/" << expected << " pins present in " << str(pins, "bpffs") << ")\n";
    std::vector<std::vector<std::string>> links, maps;
    std::map<std::string, std::string> how;
    if (reachable && agent.contains("programs"))
        for (const auto& p : agent["programs"])
            how[str(p, "program")] = str(p, "how");
    for (const auto& p : pins.value("pins", json::array())) {
        const std::string name = str(p, "name");
        if (!p.value("present", false)) {
            (str(p, "kind") == "link" ? links : maps).push_back({name, "MISSING: " + str(p, "error")});
            continue;
        }
        if (str(p, "kind") == "link") {
            const json prog = p.value("program", json::object());
            std::string cgroup = p.contains("cgroup") ? str(p, "cgroup") : "id " + str(p, "cgroup_id");
            if (!p.value("attached", true))
                cgroup = "DETACHED (cgroup removed)";
            // The agent reports links by program name; its report says how this start took them over.
            // The agent names programs podid_<x> for the pin link_<x>.
            // A program with variants (podid_sockops_task for link_sockops) reports under its longer name.
            auto h_it = how.find("podid_" + name.substr(5));
            if (h_it == how.end())
                h_it = std::find_if(how.begin(), how.end(), [&](const auto& kv) {
                    return kv.first.rfind("podid_" + name.substr(5) + "_", 0) == 0;
                });
            std::string h = h_it == how.end() ? "-" : h_it->second;
            links.push_back({name, str(p, "attach_type"), cgroup, str(prog, "name"), str(prog, "id"), h});
        } else {
            maps.push_back({name, str(p, "map_type"), str(p, "entries", "-"), str(p, "max_entries")});
        }
    }
    out << format_table({"LINK", "ATTACH", "CGROUP", "PROGRAM", "PROG ID", "THIS START"}, links);
    if (reachable && agent.contains("origin_recording"))
        out << "origin recorded from: " << str(agent, "origin_recording") << "\n";
    out << "\nMAPS\n" << format_table({"MAP", "TYPE", "ENTRIES", "MAX"}, maps);
    if (pins.contains("counters")) {
        const json& c = pins["counters"];
        out << "\nCOUNTERS (" << str(c, "cgroups") << " cgroups; redirected " << str(c, "redirected") << ", blocked "
            << str(c, "blocked") << ")\n";
        std::vector<std::vector<std::string>> rows;
        for (auto it = c["by_reason"].begin(); it != c["by_reason"].end(); ++it)
            rows.push_back({it.key(), it.value().dump()});
        out << format_table({"REASON", "COUNT"}, rows);
    }
    return out.str();
}

std::string render_pods(const json& body) {
    std::ostringstream out;
    std::vector<std::vector<std::string>> rows;
    const bool kube = str(body, "mode") == "kubernetes";
    for (const auto& p : body.value("pods", json::array())) {
        const json c = p.value("counters", json::object());
        std::string who = kube ? str(p, "namespace") + "/" + str(p, "name") : "uid " + str(p, "uid");
        std::string identity =
            str(p, "binding") == "node_identity" ? "(the node's)" : identity_cell(p.value("identities", json::array()));
        rows.push_back({who, str(p, "binding"), identity, std::to_string(p.value("cgroups", json::array()).size()),
                        str(c, "redirected", "0"), str(c, "blocked", "0")});
    }
    out << format_table({"POD", "BINDING", "IDENTITY", "CGROUPS", "REDIRECTED", "BLOCKED"}, rows);
    const json others = body.value("other_cgroups", json::array());
    if (!others.empty()) {
        std::vector<std::vector<std::string>> orows;
        for (const auto& o : others) {
            const json c = o.value("counters", json::object());
            orows.push_back({o["path"].is_null() ? "(removed) id " + str(o, "id") : str(o, "path"),
                             str(o, "binding", "-"), identity_cell(o.value("identities", json::array())),
                             str(c, "redirected", "0"), str(c, "blocked", "0")});
        }
        out << "\nOTHER CGROUPS (not a pod of this node)\n"
            << format_table({"CGROUP", "BINDING", "IDENTITY", "REDIRECTED", "BLOCKED"}, orows);
    }
    return out.str();
}

std::string render_explain(const json& e) {
    std::ostringstream out;
    if (e.contains("pod")) {
        const json& p = e["pod"];
        line(out, "pod",
             str(p, "namespace") + "/" + str(p, "name") + " (uid " + str(p, "uid") + ", service account " +
                 str(p, "service_account", "default") + ")");
    } else if (e.contains("pod_uid")) {
        line(out, "pod", "uid " + str(e, "pod_uid") + " (not in the pod directory)");
    }
    line(out, "cgroup", str(e, "cgroup", "(none found on this node)"));
    if (e.contains("redirected") && !e["redirected"].get<bool>())
        line(out, "", "outside the cgroup root: its connections are not redirected at all");
    line(out, "decided by",
         str(e, "decided_by") == "none" ? "nothing matched: no binding"
                                        : str(e, "decided_by") + " (" + str(e, "binding") + ")");
    out << "identities\n";
    const json ids = e.value("identities", json::array());
    if (ids.empty())
        out << "  (none)\n";
    for (const auto& id : ids)
        out << "  " << (id.value("default", false) ? "* " : "  ") << identity_text(id)
            << (id.value("default", false) ? "   [default]" : "") << "\n";
    out << "why\n";
    int n = 1;
    for (const auto& s : e.value("steps", json::array()))
        out << "  " << n++ << ". " << s.get<std::string>() << "\n";
    const json unsupported = e.value("unsupported", json::array());
    if (!unsupported.empty()) {
        out << "unsupported (never served)\n";
        for (const auto& u : unsupported)
            out << "  " << str(u, "identity") << " via " << str(u, "binding") << ": type " << str(u, "type") << "\n";
    }
    if (e.contains("requests")) {
        out << "requests\n";
        out << "  without client_id/msi_res_id/object_id: " << str(e["requests"], "without_identity_parameter") << "\n";
        out << "  naming an identity:                     "
            << str(e["requests"], "with_client_id_msi_res_id_or_object_id") << "\n";
    }
    return out.str();
}

std::string render_conns(const json& body) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : body.value("conns", json::array())) {
        std::string time = str(c, "time");
        if (time.size() >= 23)
            time = time.substr(11, 12);  // HH:MM:SS.mmm
        if (!c.value("attributed", false)) {
            rows.push_back({time, "(no kernel record: denied)", "-", "-", "-", str(c, "peer")});
            continue;
        }
        // Most specific name first: the pod; a pod UID (+ short container id) from the cgroup; the cgroup path.
        std::string who;
        if (c.contains("pod"))
            who = str(c, "namespace") + "/" + str(c, "pod");
        else if (c.contains("pod_uid"))
            who = "pod uid " + str(c, "pod_uid") +
                  (c.contains("container_id") ? " container " + str(c, "container_id").substr(0, 12) : "");
        else if (!c.contains("cgroup") || c["cgroup"].is_null())
            who = "(removed cgroup " + str(c, "cgroup_id") + ")";
        else
            who = str(c, "cgroup");
        rows.push_back({time, who, str(c, "pid"), str(c, "comm"),
                        str(c, "orig_dst") + (c.value("redirected", false) ? "" : " (direct)"), str(c, "peer")});
    }
    std::ostringstream out;
    out << format_table({"TIME", "CALLER", "PID", "COMM", "ASKED FOR", "PEER"}, rows);
    out << "(" << rows.size() << " shown of " << str(body, "total", "0") << " since start; the agent keeps the last "
        << str(body, "capacity", "0") << ")\n";
    return out.str();
}

}  // namespace podid::ctl
