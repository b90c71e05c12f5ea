// The Kubernetes objects podid reads, as plain typed values (decoded from API JSON in
// agent/kube/decode.*), and a snapshot of what is known at one moment for binding decisions.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "caller/caller.h"

namespace podid::kube {

struct ObjectMeta {
    std::string ns;
    std::string name;
    std::string uid;
    std::string resource_version;
    std::map<std::string, std::string> labels;
    std::map<std::string, std::string> annotations;
};

struct Pod {
    ObjectMeta meta;
    std::string node_name;
    std::string service_account;  // spec.serviceAccountName ("default" when empty)
    std::string phase;
    bool host_network = false;
    std::vector<std::string> container_ids;  // status.containerStatuses[].containerID without the "runtime://" prefix
    PodInfo info() const;                    // the caller-facing view (caller/caller.h)
};

// aadpodidentity.k8s.io/v1 AzureIdentity
struct AzureIdentity {
    ObjectMeta meta;
    int type = 0;  // 0 user-assigned MSI, 1 service principal (secret), 2 service principal (certificate)
    std::string resource_id;
    std::string client_id;
    std::string tenant_id;
    // spec.clientPassword (service principals): the Secret holding the client secret or the certificate.
    std::string password_secret_ns;
    std::string password_secret_name;
};

// aadpodidentity.k8s.io/v1 AzureIdentityBinding
struct AzureIdentityBinding {
    ObjectMeta meta;
    std::string azure_identity;  // name of an AzureIdentity in the same namespace
    std::string selector;        // matches the pod label aadpodidbinding
};

// aadpodidentity.k8s.io/v1 AzurePodIdentityException
struct AzurePodIdentityException {
    ObjectMeta meta;
    std::map<std::string, std::string> pod_labels;
};

struct ServiceAccount {
    ObjectMeta meta;  // annotations carry azure.workload.identity/client-id
};

// Everything bindings depend on, per namespace, immutable once published (swapped atomically).
struct Snapshot {
    std::map<std::string, std::vector<AzureIdentity>> identities;                   // by namespace
    std::map<std::string, std::vector<AzureIdentityBinding>> bindings;              // by namespace
    std::map<std::string, std::vector<AzurePodIdentityException>> exceptions;       // by namespace
    std::map<std::string, std::map<std::string, ServiceAccount>> service_accounts;  // namespace -> name -> SA
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace podid::kube
