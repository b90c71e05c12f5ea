#include "policy/binding.h"

namespace podid {

const char* to_string(BindingKind kind) {
    switch (kind) {
    case BindingKind::none: return "none";
    case BindingKind::static_file: return "static_file";
    case BindingKind::aad_pod_identity: return "aad_pod_identity";
    case BindingKind::workload_identity: return "workload_identity";
    case BindingKind::node_identity: return "node_identity";
    }
    return "unknown";  // a value cast from an out-of-range integer
}

const char* to_string(TokenSource source) {
    switch (source) {
    case TokenSource::node_imds: return "node_imds";
    case TokenSource::federated: return "federated";
    case TokenSource::client_secret: return "client_secret";
    case TokenSource::client_certificate: return "client_certificate";
    }
    return "unknown";
}

std::string EntraRef::subject() const {
    return source == TokenSource::federated ? "system:serviceaccount:" + pod_ns + ":" + service_account : "";
}

BindingTrace BindingSource::trace(const Caller& caller) const {
    BindingTrace t;
    t.binding = bindings_for(caller);
    if (t.binding.kind != BindingKind::none)
        t.decided_by = to_string(t.binding.kind);
    t.steps.push_back(t.binding.explanation);
    return t;
}

}  // namespace podid
