// Bindings from Kubernetes objects: AAD Pod Identity CRDs (managed mode) and Workload Identity service-account
// annotations, resolved for one pod against one snapshot. Pure: the API-server watch that builds snapshots lives
// elsewhere. The rules and their precedence are written for users in docs/bindings.md; in short:
//   1. an AzurePodIdentityException in the pod's namespace with any one podLabels key=value on the pod
//      -> node identity (exception wins over everything, as in NMI);
//   2. AzureIdentityBindings in the pod's namespace whose selector equals the pod's "aadpodidbinding" label,
//      sorted by binding name then identity name -> their AzureIdentities: type 0 through the node's IMDS, types
//      1/2 (service principals) from Entra ID with the Secret their clientPassword names in their own namespace;
//      incomplete ones and unknown types are reported as unsupported, never served;
//   3. label azure.workload.identity/use=true and the service account's azure.workload.identity/client-id
//      -> that client id, after the AAD identities: federated with Entra ID by default, or through the node's
//      IMDS (KubeBindingOptions);
//   4. otherwise none, with an explanation of what was looked at.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "caller/caller.h"
#include "kube/objects.h"
#include "policy/binding.h"

namespace podid {

struct KubeResolution {
    Binding binding;
    // Non-empty only for AAD Pod Identity: the agent audits these as deny_unsupported_identity, in particular when
    // binding.identities ended up empty because of them (the handler then answers "Identity not found").
    std::vector<UnsupportedIdentity> unsupported;
    // binding.explanation as separate steps, in the order the rules were applied (`podidctl explain`).
    std::vector<std::string> steps;
};

// How Kubernetes bindings become identities (agent flags).
struct KubeBindingOptions {
    // --workload-identity: federated (default) exchanges the pod's service-account token with Entra ID; node asks
    // the node's IMDS for the client id (the identity must then be assigned to the node).
    bool federated_workload_identity = true;
    std::string default_tenant;  // --tenant-id: for service accounts without azure.workload.identity/tenant-id
};

// Deterministic for a given pod and snapshot, whatever order the snapshot's lists are in.
KubeResolution resolve_kube(const PodInfo& pod, const kube::Snapshot& s, const KubeBindingOptions& options = {});

// resolve_kube(pod, s, options).binding.
Binding resolve_kube_binding(const PodInfo& pod, const kube::Snapshot& s, const KubeBindingOptions& options = {});

// Well-known names, shared with the watch (which needs to know what to list) and with tests.
inline constexpr const char* kAadPodIdBindingLabel = "aadpodidbinding";
inline constexpr const char* kWorkloadIdentityUseLabel = "azure.workload.identity/use";
inline constexpr const char* kWorkloadIdentityClientIdAnnotation = "azure.workload.identity/client-id";
inline constexpr const char* kWorkloadIdentityTenantIdAnnotation = "azure.workload.identity/tenant-id";
inline constexpr const char* kWorkloadIdentityTokenExpirationAnnotation =
    "azure.workload.identity/service-account-token-expiration";

class KubeBindingSource : public BindingSource {
public:
    using SnapshotProvider = std::function<kube::SnapshotPtr()>;
    using ReadyFlag = std::function<bool()>;

    // `snapshot` is called once per lookup and may return null (nothing synced: every caller resolves to none).
    // Both functions must be safe to call from any thread.
    KubeBindingSource(SnapshotProvider snapshot, ReadyFlag ready, KubeBindingOptions options = {});

    Binding bindings_for(const Caller& caller) const override;
    bool ready() const override;
    BindingTrace trace(const Caller& caller) const override;

    // bindings_for() with the unsupported identities, for the audit log and `podidctl explain`.
    KubeResolution resolve(const Caller& caller) const;

private:
    SnapshotProvider snapshot_;
    ReadyFlag ready_;
    KubeBindingOptions options_;
};

}  // namespace podid
