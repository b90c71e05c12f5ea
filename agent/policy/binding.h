// What identities a caller may use, and why: the output of every bindings source
// (static file, AAD Pod Identity CRDs, Workload Identity annotations).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "caller/caller.h"

namespace podid {

// Where an identity's tokens come from.
enum class TokenSource : uint8_t {
    node_imds,           // the node's IMDS (an identity assigned to the node)
    federated,           // Entra ID, with the pod's service-account token as client assertion (Workload Identity)
    client_secret,       // Entra ID, service principal with a client secret (AzureIdentity type 1)
    client_certificate,  // Entra ID, service principal with a certificate (AzureIdentity type 2)
};
const char* to_string(TokenSource source);  // "node_imds", "federated", ...

// What an Entra ID token source needs besides the client id. Part of the token cache's key: a federated token is
// cached per pod (its assertion is bound to the pod), a service principal's per secret.
struct EntraRef {
    TokenSource source = TokenSource::federated;
    std::string tenant;  // directory (tenant) id or domain
    // federated: the pod whose service-account token is the client assertion
    std::string pod_ns, pod_name, pod_uid, service_account;
    int64_t assertion_lifetime_s = 3600;  // requested lifetime of that service-account token
    // client_secret / client_certificate: the Secret that holds it (AzureIdentity spec.clientPassword)
    std::string secret_ns, secret_name;

    bool operator==(const EntraRef&) const = default;
    // What Entra sees as the assertion's subject: "system:serviceaccount:<ns>:<sa>" (federated only).
    std::string subject() const;
};

// One identity. At least one of client_id / resource_id / object_id is set; an Entra identity has a client_id.
struct Identity {
    std::string client_id;
    std::string resource_id;  // ARM id of a user-assigned identity (IMDS msi_res_id)
    std::string object_id;
    std::string name;                 // human label: AzureIdentity name, bindings entry, service account
    std::optional<EntraRef> entra{};  // empty: served through the node's IMDS

    TokenSource source() const { return entra ? entra->source : TokenSource::node_imds; }
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
    // Selected, but some identities it names cannot be served (unknown AzureIdentity types, incomplete service
    // principals): with no identity left the audit says deny_unsupported_identity, else deny_identity_missing.
    bool unsupported_identities = false;
    // Bindings file: the entry's name ("name", else "entry-<n>"), which labels standalone callers in the metrics
    // (a set bounded by the file). Empty for other sources: their callers are pods.
    std::string name{};
};

// An AzureIdentity a pod's binding names but podid cannot serve: an unknown type, or a service principal without a
// client id, tenant or Secret in its own namespace.
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
