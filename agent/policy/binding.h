// What identities a caller may use, and why: the output of every bindings source
// (static file, AAD Pod Identity CRDs, Workload Identity annotations).
#pragma once

#include <string>
#include <vector>

#include "caller/caller.h"

namespace podid {

// One managed identity. At least one of client_id / resource_id / object_id is set.
struct Identity {
    std::string client_id;
    std::string resource_id;  // ARM id of a user-assigned identity (IMDS msi_res_id)
    std::string object_id;
    std::string name;  // human label: AzureIdentity name, bindings entry, service account
};

enum class BindingKind {
    none,               // nothing matched: IMDS "Identity not found"
    static_file,        // --bindings entry
    aad_pod_identity,   // AzureIdentityBinding selector
    workload_identity,  // service-account annotation
    node_identity,      // AzurePodIdentityException: pass through as the node
};

const char* to_string(BindingKind kind);

struct Binding {
    BindingKind kind = BindingKind::none;
    std::vector<Identity> identities;  // first one is the default
    std::string explanation;           // why: "bindings entry 2 (/kubepods.slice/*pod1234*)", ...
};

// An AzureIdentity a pod's binding names but podid cannot serve through the node's IMDS (service principals).
struct UnsupportedIdentity {
    std::string binding;   // "ns/name" of the AzureIdentityBinding
    std::string identity;  // "ns/name" of the AzureIdentity
    int type = 0;          // AzureIdentity spec.type: 1 SP secret, 2 SP certificate, or an unknown value
};

// How a source reached its answer, step by step, for `podidctl explain`: the same lookup the request path makes.
struct BindingTrace {
    Binding binding;
    std::string decided_by = "none";  // "bindings_file", "kubernetes", or "none"
    std::vector<std::string> steps;
    std::vector<UnsupportedIdentity> unsupported;
};

// A source of bindings; implementations are thread-safe.
class BindingSource {
public:
    virtual ~BindingSource() = default;
    virtual Binding bindings_for(const Caller& caller) const = 0;
    // bindings_for() with its reasoning. The default has one step, the binding's explanation.
    virtual BindingTrace trace(const Caller& caller) const;
    // False until the source has loaded (file parsed, first lists synced).
    virtual bool ready() const = 0;
};

}  // namespace podid
