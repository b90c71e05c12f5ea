// What the agent knows, as JSON for the admin socket (`podidctl status|pods|explain|conns`).
//
// Read-only views over the running parts; every method is safe to call from the I/O threads while requests are
// being served. No token value ever appears here (cache entries carry expiry times only). The JSON shapes are
// documented for scripts in docs/observability.md ("Admin socket API"); fields are only ever added.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "admin/admin_http.h"
#include "podid/abi.h"

namespace podid {

class BindingSource;
class CgroupPathResolver;
class CachingTokenProvider;
class Datapath;
class Health;
class InterfaceGuard;
class KubeBindingSource;
class RecentConnections;
class SelfCheck;
class StaticBindings;
namespace kube {
class KubeState;
}

struct IntrospectSources {
    std::string version;
    int64_t started_ms = 0;  // epoch milliseconds
    std::string node_ip;
    uint16_t port = 0;
    std::string node_name;
    std::string cgroup_root;   // absolute
    std::string kubepods_rel;  // relative to the cgroup2 mount
    std::string bpffs;
    const Datapath* datapath = nullptr;
    CgroupPathResolver* paths = nullptr;
    const kube::KubeState* kube = nullptr;             // null in standalone mode
    const KubeBindingSource* kube_bindings = nullptr;  // null in standalone mode
    const StaticBindings* file_bindings = nullptr;     // null without --bindings
    const BindingSource* bindings = nullptr;           // what the request path asks (explain and pods use it too)
    const CachingTokenProvider* tokens = nullptr;
    const Health* health = nullptr;
    const SelfCheck* self_check = nullptr;
    const RecentConnections* conns = nullptr;
    const InterfaceGuard* guard = nullptr;  // null with --guard-interfaces none (or not loaded)
    std::function<size_t()> connections_open;
    std::function<nlohmann::json()> pins;  // who holds the pins and since when (admin/handover.h); optional
};

class Introspection {
public:
    explicit Introspection(IntrospectSources sources) : s_(std::move(sources)) {}

    nlohmann::json status() const;
    nlohmann::json pods() const;
    // Which identity a pod (or, in standalone mode, a cgroup) gets and why. Error: unknown pod / bad cgroup.
    Result<nlohmann::json> explain_pod(const std::string& ns, const std::string& name) const;
    Result<nlohmann::json> explain_cgroup(const std::string& cgroup_path) const;
    nlohmann::json conns(size_t limit) const;

private:
    IntrospectSources s_;
};

// {"redirected": n, "blocked": n, "by_reason": {counter name: n}} over one set of BPF counters (shared with podidctl,
// which reads the pinned map itself).
nlohmann::json counters_summary(const std::array<uint64_t, PODID_CTR_MAX>& counters);
// Per-cgroup counters summed over every cgroup (the node's totals).
std::array<uint64_t, PODID_CTR_MAX> sum_counters(
    const std::map<uint64_t, std::array<uint64_t, PODID_CTR_MAX>>& by_cgroup);

// GET /v1/status, /v1/pods, /v1/explain?pod=NS/NAME | ?cgroup=PATH, /v1/conns?limit=N -> application/json.
// Errors are {"error": "...", "error_description": "..."} with 400 (bad query), 404 (unknown path or pod), 405.
AdminResponse introspect_response(const AdminRequest& req, const Introspection& views);

}  // namespace podid
