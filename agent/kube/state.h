// What podid knows about the cluster: the pods of this node (by UID and by namespace/name) and the
// objects bindings depend on (AAD Pod Identity CRDs, Workload Identity service accounts), kept current
// by informers and readable from any thread.
//
// Memory stays proportional to the node: pods are watched with spec.nodeName=<node>, and pods keep no
// annotations. CRDs are cluster-wide (few, small). ServiceAccounts are watched cluster-wide — a pod of
// any namespace may land here — but only those carrying an "azure.workload.identity/" annotation are
// kept, and only those annotations: a service account without one yields no identity anyway.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "caller/caller.h"
#include "common/result.h"
#include "kube/api.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/informer.h"
#include "kube/objects.h"

namespace podid::kube {

struct KubeStateOptions {
    InformerOptions informer;
    ClientOptions client;
    bool aad_pod_identity = true;  // watch the aadpodidentity.k8s.io/v1 CRDs (absent CRDs count as empty)
    bool service_accounts = true;  // watch ServiceAccounts for Workload Identity annotations
    // wait_for_pod: a pod still unknown this long after it asked makes the pod watch reconnect (InformerBase::nudge).
    // Normally its ADDED event comes within milliseconds; an event this late means the watch went silent or is
    // backing off after an outage.
    std::chrono::milliseconds nudge_after{1'000};
};

inline constexpr std::string_view kWorkloadIdentityPrefix = "azure.workload.identity/";

class KubeState {
public:
    explicit KubeState(KubeStateOptions options = {});
    ~KubeState();  // stops; destroy it before the io_context it was started on (stop() posts to it)
    KubeState(const KubeState&) = delete;
    KubeState& operator=(const KubeState&) = delete;

    // Connects with `config` and starts the informers on a strand of `io`. Fails only when the TLS
    // material does not load; an unreachable API server is retried in the background.
    Result<void> start(boost::asio::io_context& io, const KubeConfig& config, std::string node_name);
    // The same over any API (tests inject a fake).
    void start(boost::asio::any_io_executor executor, std::shared_ptr<KubeApi> api, std::string node_name);
    // Any thread: ends the informers and the calls in flight, wakes waiters. Known objects stay readable.
    void stop();

    // Called on the informers' strand after a pod left the node (metrics cleanup). Set before start().
    void on_pod_deleted(std::function<void(const PodInfo&)> hook);

    // Any thread. UIDs match case-insensitively (cgroup paths spell them in lower case).
    std::optional<PodInfo> pod_by_uid(std::string_view uid) const;
    std::optional<PodInfo> pod_by_name(std::string_view ns, std::string_view name) const;
    std::optional<Pod> pod(std::string_view uid) const;  // the whole object (container ids, phase)
    std::size_t pods_count() const;
    std::vector<PodInfo> pods() const;  // every pod of this node, sorted by namespace/name (podidctl)
    SnapshotPtr snapshot() const;       // never null; republished whole when a CRD or service account changes
    bool synced() const;                // every informer has listed once

    // The pod when it is known, or as soon as the pod watch reports it, or nullopt after `max`. Woken by
    // watch events, not by polling: a new pod's first IMDS call can beat its ADDED event. Still unknown after
    // options.nudge_after, it has the pod watch reconnect rather than trust it.
    boost::asio::awaitable<std::optional<PodInfo>> wait_for_pod(std::string uid, std::chrono::milliseconds max);

    std::vector<std::pair<std::string, InformerStats>> informer_stats() const;  // per resource name

    struct Impl;

private:
    KubeStateOptions options_;
    std::shared_ptr<Impl> impl_;
};

// The decoders KubeState's informers use, with its memory rules (exposed for tests).
std::optional<Pod> keep_pod(const nlohmann::json& object, const std::string& node_name);
std::optional<ServiceAccount> keep_service_account(const nlohmann::json& object);

}  // namespace podid::kube
