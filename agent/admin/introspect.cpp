#include "admin/introspect.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>

#include "caller/cgroup_paths.h"
#include "caller/kubelet_cgroup.h"
#include "datapath/datapath.h"
#include "datapath/guard.h"
#include "http/request_target.h"
#include "kube/state.h"
#include "observe/bpf_collector.h"
#include "observe/health.h"
#include "observe/recent_conns.h"
#include "observe/selfcheck.h"
#include "policy/chained_bindings.h"
#include "policy/kube_bindings.h"
#include "policy/static_bindings.h"
#include "token/token_cache.h"

namespace podid {

namespace {

// Sources made without a binding source (tests of the other views) explain as an agent with none configured.
const BindingSource& bindings_or_nobody(const BindingSource* bindings) {
    static const NoBindings nobody;
    return bindings ? *bindings : nobody;
}

}  // namespace

using nlohmann::json;
namespace http = boost::beast::http;

namespace {

std::string rfc3339_ms(int64_t epoch_ms) {
    std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(epoch_ms % 1000));
    return out;
}

int64_t epoch_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

json identity_json(const Identity& id, bool is_default) {
    json j = json::object();
    if (!id.client_id.empty())
        j["client_id"] = id.client_id;
    if (!id.resource_id.empty())
        j["resource_id"] = id.resource_id;
    if (!id.object_id.empty())
        j["object_id"] = id.object_id;
    if (!id.name.empty())
        j["name"] = id.name;
    // Where its tokens come from: the node's IMDS, or Entra ID (federated with the subject Entra will see, or a
    // service principal with the Secret that holds its credential; never the credential).
    j["source"] = to_string(id.source());
    if (id.entra) {
        j["tenant"] = id.entra->tenant;
        if (id.entra->source == TokenSource::federated)
            j["subject"] = id.entra->subject();
        else
            j["secret"] = id.entra->secret_ns + "/" + id.entra->secret_name;
    }
    j["default"] = is_default;
    return j;
}

json identities_json(const std::vector<Identity>& ids) {
    json out = json::array();
    for (size_t i = 0; i < ids.size(); ++i)
        out.push_back(identity_json(ids[i], i == 0));
    return out;
}

}  // namespace

json counters_summary(const CgroupCounters& c) {
    json by_reason = json::object();
    uint64_t redirected = 0, blocked = 0;
    for (int slot = 0; slot < PODID_CTR_MAX; ++slot) {
        const char* name = counter_name(slot);
        if (name == nullptr || c[slot] == 0)
            continue;
        by_reason[name] = c[slot];
        if (is_redirect_slot(slot))
            redirected += c[slot];
        if (is_blocked_slot(slot))
            blocked += c[slot];
    }
    return json{{"redirected", redirected}, {"blocked", blocked}, {"by_reason", by_reason}};
}

namespace {

void add_counters(CgroupCounters& into, const CgroupCounters& c) {
    for (int i = 0; i < PODID_CTR_MAX; ++i)
        into[i] += c[i];
}

}  // namespace

CgroupCounters sum_counters(const std::map<uint64_t, CgroupCounters>& by_cgroup) {
    CgroupCounters total{};
    for (const auto& [id, c] : by_cgroup)
        add_counters(total, c);
    return total;
}

namespace {

json pod_json(const PodInfo& p) {
    return json{{"namespace", p.ns},
                {"name", p.name},
                {"uid", p.uid},
                {"service_account", p.service_account},
                {"host_network", p.host_network},
                {"labels", p.labels}};
}

// The cgroups kubelet made for each pod on this node: uid -> pod-level path and container paths.
struct PodCgroups {
    std::string pod_path;
    std::vector<std::pair<std::string, PodRef>> containers;  // path, parsed
};

std::map<std::string, PodCgroups> scan_pod_cgroups(const std::string& mount, const std::string& kubepods_rel) {
    std::map<std::string, PodCgroups> out;
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path root = fs::path(mount) / fs::path(kubepods_rel).relative_path();
    // kubepods[/qos]/pod[/container]: nothing kubelet makes is deeper than three levels below the root.
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it.depth() >= 2)
            it.disable_recursion_pending();
        if (!it->is_directory(ec))
            continue;
        std::string rel = it->path().string().substr(mount.size());
        auto ref = parse_kubelet_cgroup(rel, kubepods_rel);
        if (!ref)
            continue;
        auto& entry = out[ref->uid];
        if (ref->container_id.empty())
            entry.pod_path = rel;
        else
            entry.containers.emplace_back(rel, *ref);
    }
    return out;
}

json error_body(const std::string& error, const std::string& description) {
    return json{{"error", error}, {"error_description", description}};
}

}  // namespace

json Introspection::status() const {
    json j;
    j["version"] = s_.version;
    j["pid"] = ::getpid();
    j["started"] = rfc3339_ms(s_.started_ms);
    j["uptime_seconds"] = (epoch_ms_now() - s_.started_ms) / 1000;
    j["mode"] = s_.kube ? "kubernetes" : "standalone";
    j["node_ip"] = s_.node_ip;
    j["port"] = s_.port;
    if (!s_.node_name.empty())
        j["node_name"] = s_.node_name;
    j["cgroup_root"] = s_.cgroup_root;
    j["bpffs"] = s_.bpffs;
    if (s_.pins) {
        json pins = s_.pins();
        for (const char* field : {"holding_since_ms", "handed_over_ms"})
            if (pins.contains(field) && pins[field].is_number_integer()) {
                const int64_t ms = pins[field].get<int64_t>();
                pins.erase(field);
                if (ms != 0)
                    pins[std::string(field).substr(0, std::string(field).size() - 3)] = rfc3339_ms(ms);
            }
        j["pins_holder"] = pins;
    }
    if (s_.health) {
        Readiness r = s_.health->readiness();
        j["ready"] = r.ready;
        if (!r.ready)
            j["not_ready_reason"] = r.reason;
    }
    if (s_.self_check) {
        SelfCheckStatus st = s_.self_check->status();
        json sc{{"passed", st.passed}, {"detail", st.detail}};
        if (st.finished_ms != 0)
            sc["age_seconds"] = (steady_now_ms() - st.finished_ms) / 1000;
        j["self_check"] = sc;
    }
    if (s_.datapath) {
        json programs = json::array();
        for (const auto& r : s_.datapath->report())
            programs.push_back(json{{"program", r.program}, {"how", r.how}});
        j["programs"] = programs;
        j["origin_recording"] = origin_recording_name(s_.datapath->origin_recording());
        json exempt = json::array();
        for (uint64_t id : s_.datapath->exempt()) {
            json e{{"id", id}};
            if (s_.paths)
                if (auto p = s_.paths->path_of(id))
                    e["path"] = *p;
            exempt.push_back(e);
        }
        j["exempt_cgroups"] = exempt;
        auto counters = s_.datapath->counters();
        j["cgroups_tracked"] = counters.size();
        j["counters"] = counters_summary(sum_counters(counters));
    }
    if (s_.guard) {
        json drops = json::object();
        GuardCounters c = s_.guard->counters();
        for (int slot = 0; slot < PODID_GUARD_CTR_MAX; ++slot)
            if (const char* name = guard_counter_name(slot))
                drops[name] = c[slot];
        j["interface_guard"] = json{{"interfaces", s_.guard->guarded()}, {"dropped", drops}};
    } else {
        j["interface_guard"] = nullptr;
    }
    if (s_.connections_open)
        j["connections_open"] = s_.connections_open();
    if (s_.conns)
        j["connections_accepted"] = s_.conns->total();
    if (s_.tokens) {
        TokenCacheStats st = s_.tokens->stats();
        json cache{{"entries", st.entries},
                   {"hits", st.hits},
                   {"misses", st.misses},
                   {"shared", st.shared},
                   {"forced", st.forced},
                   {"negative_hits", st.negative_hits},
                   {"refreshes_ok", st.refreshes_ok},
                   {"refreshes_failed", st.refreshes_failed}};
        json upstream = json::object();
        for (const auto& [status, n] : st.upstream_by_status)
            upstream[status == 0 ? "no_answer" : std::to_string(status)] = n;
        cache["upstream_by_status"] = upstream;
        json entries = json::array();
        for (const auto& e : s_.tokens->entries()) {
            json row{{"resource", e.key.resource}, {"fetching", e.fetching}, {"negative", e.negative}};
            if (!e.key.client_id.empty())
                row["client_id"] = e.key.client_id;
            if (!e.key.msi_res_id.empty())
                row["msi_res_id"] = e.key.msi_res_id;
            if (!e.key.object_id.empty())
                row["object_id"] = e.key.object_id;
            if (e.key.entra) {
                row["source"] = to_string(e.key.entra->source);
                if (!e.key.entra->pod_name.empty())
                    row["pod"] = e.key.entra->pod_ns + "/" + e.key.entra->pod_name;
            }
            if (e.expires_on != 0)
                row["expires_on"] = e.expires_on;
            if (e.refresh_at != 0)
                row["refresh_at"] = e.refresh_at;
            entries.push_back(row);
        }
        cache["tokens"] = entries;
        j["token_cache"] = cache;
    }
    json bindings{{"sources", json::array()}};
    if (s_.file_bindings) {
        bindings["sources"].push_back("file");
        bindings["file"] = s_.file_bindings->path();
        auto table = s_.file_bindings->table();
        bindings["file_entries"] = table ? table->entries().size() : 0;
    }
    if (s_.kube_bindings)
        bindings["sources"].push_back("kubernetes");
    j["bindings"] = bindings;
    if (s_.kube) {
        json watches = json::object();
        for (const auto& [resource, st] : s_.kube->informer_stats())
            watches[resource] =
                json{{"synced", st.synced}, {"lists", st.lists},   {"relists", st.relists}, {"watches", st.watches},
                     {"events", st.events}, {"errors", st.errors}, {"nudges", st.nudges}};
        j["kubernetes"] = json{{"pods", s_.kube->pods_count()}, {"synced", s_.kube->synced()}, {"watches", watches}};
    }
    return j;
}

json Introspection::pods() const {
    const std::string mount = s_.paths ? s_.paths->mount() : "";
    auto cgroups = s_.paths ? scan_pod_cgroups(mount, s_.kubepods_rel) : std::map<std::string, PodCgroups>{};

    // Counters by pod UID; cgroups that are not pods are listed on their own.
    std::map<std::string, CgroupCounters> by_uid;
    json others = json::array();
    if (s_.datapath) {
        for (const auto& [id, c] : s_.datapath->counters()) {
            auto path = s_.paths ? s_.paths->path_of(id) : Result<std::string>(make_error("no resolver"));
            auto ref = path ? parse_kubelet_cgroup(*path, s_.kubepods_rel) : std::nullopt;
            if (ref) {
                auto [it, fresh] = by_uid.try_emplace(ref->uid, CgroupCounters{});
                add_counters(it->second, c);
                continue;
            }
            json row{{"id", id}, {"counters", counters_summary(c)}};
            if (path) {
                row["path"] = *path;
                if (s_.file_bindings) {
                    Caller caller;
                    caller.cgroup_path = *path;
                    Binding b = s_.file_bindings->bindings_for(caller);
                    row["binding"] = to_string(b.kind);
                    row["identities"] = identities_json(b.identities);
                }
            } else {
                row["path"] = nullptr;  // the cgroup is gone; the LRU map still holds its counters
            }
            others.push_back(row);
        }
    }

    auto cgroup_rows = [&](const std::string& uid) {
        json rows = json::array();
        auto it = cgroups.find(uid);
        if (it == cgroups.end())
            return rows;
        if (!it->second.pod_path.empty())
            rows.push_back(json{{"path", it->second.pod_path}, {"id", s_.paths->id_of(it->second.pod_path)}});
        for (const auto& [path, ref] : it->second.containers)
            rows.push_back(json{{"path", path}, {"id", s_.paths->id_of(path)}, {"container_id", ref.container_id}});
        return rows;
    };

    json pods = json::array();
    auto add_row = [&](json row, const std::string& uid, const Caller& caller) {
        Binding b = bindings_or_nobody(s_.bindings).trace(caller).binding;
        row["binding"] = to_string(b.kind);
        row["identities"] = identities_json(b.identities);
        row["explanation"] = b.explanation;
        row["cgroups"] = cgroup_rows(uid);
        auto c = by_uid.find(uid);
        row["counters"] = counters_summary(c == by_uid.end() ? CgroupCounters{} : c->second);
        pods.push_back(std::move(row));
    };
    if (s_.kube) {
        for (const PodInfo& pod : s_.kube->pods()) {
            Caller caller;
            caller.pod = pod;
            if (auto it = cgroups.find(pod.uid); it != cgroups.end())
                caller.cgroup_path = it->second.pod_path;
            add_row(pod_json(pod), pod.uid, caller);
        }
    } else {
        // Standalone: no pod directory; the pods are what kubelet-shaped cgroups say is on the node.
        for (const auto& [uid, pc] : cgroups) {
            Caller caller;
            caller.cgroup_path = pc.pod_path;
            caller.pod_ref = parse_kubelet_cgroup(pc.pod_path, s_.kubepods_rel);
            add_row(json{{"uid", uid}}, uid, caller);
        }
    }
    return json{{"mode", s_.kube ? "kubernetes" : "standalone"}, {"pods", pods}, {"other_cgroups", others}};
}

namespace {

// The decision for one caller: the request path's own binding source, asked for its reasoning.
json explain_caller(const Caller& caller, const BindingSource& bindings) {
    BindingTrace t = bindings.trace(caller);
    json unsupported = json::array();
    for (const auto& u : t.unsupported)
        unsupported.push_back(json{{"binding", u.binding}, {"identity", u.identity}, {"type", u.type}});
    const Binding& decided = t.binding;
    const std::string& decided_by = t.decided_by;
    json steps = t.steps;

    json j;
    j["decided_by"] = decided_by;
    j["binding"] = to_string(decided.kind);
    j["identities"] = identities_json(decided.identities);
    j["steps"] = steps;
    j["unsupported"] = unsupported;
    // What each kind of request from this caller gets, as the handler decides it.
    std::string plain;
    if (decided.kind == BindingKind::node_identity)
        plain = "forwarded as the node (AzurePodIdentityException): the node's own identity";
    else if (decided.identities.empty())
        plain = "400 Identity not found (SDK credential chains move on)";
    else
        plain = "the default identity above";
    j["requests"] = json{{"without_identity_parameter", plain},
                         {"with_client_id_msi_res_id_or_object_id",
                          decided.kind == BindingKind::node_identity
                              ? "forwarded as the node"
                              : "served only when it names one of the identities above, else 400 Identity not found"}};
    return j;
}

}  // namespace

Result<json> Introspection::explain_pod(const std::string& ns, const std::string& name) const {
    if (!s_.kube)
        return make_error("standalone mode has no pod directory: explain a cgroup instead (--cgroup PATH)", ENOENT);
    auto pod = s_.kube->pod_by_name(ns, name);
    if (!pod)
        return make_error("pod " + ns + "/" + name + " is not on this node (" + std::to_string(s_.kube->pods_count()) +
                              " pods known)",
                          ENOENT);
    Caller caller;
    caller.pod = pod;
    if (s_.paths) {
        auto cgroups = scan_pod_cgroups(s_.paths->mount(), s_.kubepods_rel);
        if (auto it = cgroups.find(pod->uid); it != cgroups.end()) {
            caller.cgroup_path = it->second.pod_path;
            caller.pod_ref = parse_kubelet_cgroup(caller.cgroup_path, s_.kubepods_rel);
        }
    }
    json j = explain_caller(caller, bindings_or_nobody(s_.bindings));
    j["pod"] = pod_json(*pod);
    j["cgroup"] = caller.cgroup_path.empty() ? json(nullptr) : json(caller.cgroup_path);
    return j;
}

Result<json> Introspection::explain_cgroup(const std::string& cgroup_path) const {
    if (cgroup_path.empty() || cgroup_path.front() != '/')
        return make_error("cgroup path must start with / (relative to the cgroup2 mount): " + cgroup_path, EINVAL);
    if (!s_.paths || s_.paths->id_of(cgroup_path) == 0)
        return make_error("no cgroup " + cgroup_path + " under " + (s_.paths ? s_.paths->mount() : "?"), ENOENT);
    Caller caller;
    caller.cgroup_path = cgroup_path;
    caller.pod_ref = parse_kubelet_cgroup(cgroup_path, s_.kubepods_rel);
    if (caller.pod_ref && s_.kube)
        caller.pod = s_.kube->pod_by_uid(caller.pod_ref->uid);
    json j = explain_caller(caller, bindings_or_nobody(s_.bindings));
    j["cgroup"] = cgroup_path;
    const std::string root_rel = s_.kubepods_rel == "/" ? "" : s_.kubepods_rel;
    bool under_root = cgroup_path == s_.kubepods_rel || cgroup_path.rfind(root_rel + "/", 0) == 0;
    j["redirected"] = under_root;  // outside the cgroup root the programs never see the caller
    if (caller.pod_ref)
        j["pod_uid"] = caller.pod_ref->uid;
    if (caller.pod)
        j["pod"] = pod_json(*caller.pod);
    return j;
}

json Introspection::conns(size_t limit) const {
    json rows = json::array();
    if (s_.conns) {
        for (const auto& r : s_.conns->latest(limit)) {
            json row{{"seq", r.seq}, {"time", rfc3339_ms(r.time_ms)}, {"peer", r.peer}, {"listener", r.listener}};
            if (!r.origin) {
                row["attributed"] = false;
                rows.push_back(row);
                continue;
            }
            const Origin& o = *r.origin;
            row["attributed"] = true;
            row["cgroup_id"] = o.cgroup_id;
            row["pid"] = o.pid;
            row["comm"] = o.comm;
            row["orig_dst"] = o.orig_dst;
            row["redirected"] = o.redirected;
            if (s_.paths) {
                if (auto path = s_.paths->path_of(o.cgroup_id)) {
                    row["cgroup"] = *path;
                    if (auto ref = parse_kubelet_cgroup(*path, s_.kubepods_rel)) {
                        row["pod_uid"] = ref->uid;
                        if (!ref->container_id.empty())
                            row["container_id"] = ref->container_id;
                        if (s_.kube)
                            if (auto pod = s_.kube->pod_by_uid(ref->uid)) {
                                row["namespace"] = pod->ns;
                                row["pod"] = pod->name;
                            }
                    }
                } else {
                    row["cgroup"] = nullptr;  // gone since
                }
            }
            rows.push_back(row);
        }
    }
    return json{{"total", s_.conns ? s_.conns->total() : 0},
                {"capacity", s_.conns ? s_.conns->capacity() : 0},
                {"conns", rows}};
}

AdminResponse introspect_response(const AdminRequest& req, const Introspection& views) {
    auto reply = [&](http::status status, const json& body) {
        AdminResponse res(status, req.version());
        res.set(http::field::content_type, "application/json");
        res.set(http::field::cache_control, "no-store");
        res.keep_alive(req.keep_alive());
        res.body() = body.dump() + "\n";
        res.prepare_payload();
        return res;
    };
    if (req.method() != http::verb::get)
        return reply(http::status::method_not_allowed, error_body("method_not_allowed", "only GET is served"));
    SplitTarget target = split_target(req.target());
    auto query = parse_query(target.query);
    if (!query)
        return reply(http::status::bad_request, error_body("bad_request", query.error().message));
    auto param = [&](const std::string& name) -> std::optional<std::string> {
        for (const auto& p : *query)
            if (p.name == name)
                return p.value;
        return std::nullopt;
    };
    try {
        if (target.path == "/v1/status")
            return reply(http::status::ok, views.status());
        if (target.path == "/v1/pods")
            return reply(http::status::ok, views.pods());
        if (target.path == "/v1/conns") {
            size_t limit = 50;
            if (auto l = param("limit")) {
                auto [end, ec] = std::from_chars(l->data(), l->data() + l->size(), limit);
                if (ec != std::errc() || end != l->data() + l->size() || limit == 0)
                    return reply(http::status::bad_request,
                                 error_body("bad_request", "limit must be a positive integer, got \"" + *l + "\""));
            }
            return reply(http::status::ok, views.conns(limit));
        }
        if (target.path == "/v1/explain") {
            Result<json> r = make_error("give pod=NAMESPACE/NAME or cgroup=PATH", EINVAL);
            if (auto pod = param("pod")) {
                auto slash = pod->find('/');
                if (slash == std::string::npos || slash == 0 || slash + 1 == pod->size() ||
                    pod->find('/', slash + 1) != std::string::npos)
                    return reply(http::status::bad_request,
                                 error_body("bad_request", "pod must be NAMESPACE/NAME, got \"" + *pod + "\""));
                r = views.explain_pod(pod->substr(0, slash), pod->substr(slash + 1));
            } else if (auto cgroup = param("cgroup")) {
                r = views.explain_cgroup(*cgroup);
            }
            if (!r)
                return reply(r.error().code == EINVAL ? http::status::bad_request : http::status::not_found,
                             error_body(r.error().code == EINVAL ? "bad_request" : "not_found", r.error().message));
            return reply(http::status::ok, *r);
        }
    } catch (const std::exception& e) {
        // A view must never take the agent down: json type errors and allocation failures end here.
        return reply(http::status::internal_server_error, error_body("internal_error", e.what()));
    }
    return reply(http::status::not_found,
                 error_body("not_found", "unknown path; try /v1/status, /v1/pods, /v1/explain, /v1/conns"));
}

}  // namespace podid
