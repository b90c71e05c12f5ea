#include "policy/kube_bindings.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <tuple>
#include <utility>

namespace podid {
namespace {

std::string qualified(const std::string& ns, const std::string& name) { return ns + "/" + name; }

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string join(const std::vector<std::string>& parts, const char* separator) {
    std::string out;
    for (const std::string& part : parts) {
        if (!out.empty()) {
            out += separator;
        }
        out += part;
    }
    return out;
}

template <class Map>
const typename Map::mapped_type* find_in(const Map& map, const std::string& key) {
    auto it = map.find(key);
    return it == map.end() ? nullptr : &it->second;
}

// Azure compares GUIDs and ARM ids case-insensitively, so the same identity reached twice is offered once.
std::string identity_key(const Identity& identity) {
    return !identity.client_id.empty() ? "c:" + lower(identity.client_id) : "r:" + lower(identity.resource_id);
}

const char* type_name(int type) {
    switch (type) {
    case 1: return "service principal with client secret";
    case 2: return "service principal with certificate";
    default: return "unknown type";
    }
}

// Collects the identities offered, in order, without repeats.
class Offer {
public:
    // The label of an identity already offered under the same id, if any.
    std::optional<std::string> already(const Identity& identity) const {
        for (const Identity& offered : identities_) {
            if (identity_key(offered) == identity_key(identity)) {
                return offered.name;
            }
        }
        return std::nullopt;
    }
    void add(Identity identity, BindingKind kind) {
        if (identities_.empty()) {
            default_kind_ = kind;
        }
        identities_.push_back(std::move(identity));
    }
    std::vector<Identity>& identities() { return identities_; }
    BindingKind default_kind() const { return default_kind_; }

private:
    std::vector<Identity> identities_;
    BindingKind default_kind_ = BindingKind::none;
};

// NMI's rule: a pod is excepted when any one key=value of an exception's podLabels is on the pod.
std::optional<std::string> matching_label(const kube::AzurePodIdentityException& exception, const PodInfo& pod) {
    for (const auto& [key, value] : exception.pod_labels) {
        const std::string* label = find_in(pod.labels, key);
        if (label != nullptr && *label == value) {
            return key + "=" + value;
        }
    }
    return std::nullopt;
}

// Step 1. The first matching exception by name, so the explanation does not depend on list order.
std::optional<std::string> exception_match(const PodInfo& pod, const kube::Snapshot& s, std::string& looked_at) {
    const auto* exceptions = find_in(s.exceptions, pod.ns);
    if (exceptions == nullptr || exceptions->empty()) {
        looked_at = "no AzurePodIdentityException in namespace " + pod.ns;
        return std::nullopt;
    }
    std::vector<const kube::AzurePodIdentityException*> sorted;
    for (const auto& exception : *exceptions) {
        sorted.push_back(&exception);
    }
    std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->meta.name < b->meta.name; });
    for (const auto* exception : sorted) {
        if (std::optional<std::string> label = matching_label(*exception, pod)) {
            return "AzurePodIdentityException " + qualified(pod.ns, exception->meta.name) + " (podLabels " + *label +
                   ") -> node identity";
        }
    }
    looked_at = "none of " + std::to_string(exceptions->size()) + " AzurePodIdentityException(s) in namespace " +
                pod.ns + " matches the pod's labels";
    return std::nullopt;
}

const kube::AzureIdentity* find_identity(const kube::Snapshot& s, const std::string& ns, const std::string& name) {
    const auto* identities = find_in(s.identities, ns);
    if (identities == nullptr) {
        return nullptr;
    }
    auto it = std::find_if(identities->begin(), identities->end(),
                           [&](const kube::AzureIdentity& identity) { return identity.meta.name == name; });
    return it == identities->end() ? nullptr : &*it;
}

// The namespace of a service principal's Secret: its own, or the AzureIdentity's when the reference names none.
std::string secret_namespace(const kube::AzureIdentity& identity) {
    return identity.password_secret_ns.empty() ? identity.meta.ns : identity.password_secret_ns;
}

// What a service-principal AzureIdentity lacks to be served, or "" when nothing. Its Secret must be in the
// AzureIdentity's own namespace: whoever may create AzureIdentities in one namespace must not make podid use the
// secrets of another (NMI read any namespace's).
std::string service_principal_gap(const kube::AzureIdentity& identity) {
    if (identity.client_id.empty())
        return "has no clientID";
    if (identity.tenant_id.empty())
        return "has no tenantID";
    if (identity.password_secret_name.empty())
        return "has no clientPassword secret reference";
    if (secret_namespace(identity) != identity.meta.ns)
        return "references Secret " + qualified(secret_namespace(identity), identity.password_secret_name) +
               " outside its namespace " + identity.meta.ns + " (not allowed)";
    return "";
}

struct AadOutcome {
    bool selected = false;  // at least one binding's selector matched the pod
    std::vector<std::string> explanations;
};

// Step 2. AAD Pod Identity, managed mode: bindings and identities from the pod's own namespace only.
AadOutcome resolve_aad(const PodInfo& pod, const kube::Snapshot& s, Offer& offer,
                       std::vector<UnsupportedIdentity>& unsupported) {
    AadOutcome out;
    const std::string* selector = find_in(pod.labels, kAadPodIdBindingLabel);
    if (selector == nullptr) {
        out.explanations.push_back(std::string("no ") + kAadPodIdBindingLabel + " label");
        return out;
    }
    // An empty label selects nothing: a binding with an empty selector must not bind every unlabelled-value pod.
    if (selector->empty()) {
        out.explanations.push_back(std::string(kAadPodIdBindingLabel) + " label is empty and selects nothing");
        return out;
    }
    std::vector<const kube::AzureIdentityBinding*> matched;
    const auto* bindings = find_in(s.bindings, pod.ns);
    if (bindings != nullptr) {
        for (const auto& binding : *bindings) {
            if (binding.selector == *selector) {
                matched.push_back(&binding);
            }
        }
    }
    if (matched.empty()) {
        out.explanations.push_back("no AzureIdentityBinding in namespace " + pod.ns + " has selector " + *selector +
                                   " (" + std::to_string(bindings == nullptr ? 0 : bindings->size()) + " looked at)");
        return out;
    }
    out.selected = true;
    std::sort(matched.begin(), matched.end(), [](const auto* a, const auto* b) {
        return std::tie(a->meta.name, a->azure_identity) < std::tie(b->meta.name, b->azure_identity);
    });
    for (const auto* binding : matched) {
        std::string head = "AzureIdentityBinding " + qualified(pod.ns, binding->meta.name) + " (selector " +
                           binding->selector + ") -> ";
        if (binding->azure_identity.empty()) {
            out.explanations.push_back(head + "names no AzureIdentity, skipped");
            continue;
        }
        std::string identity_name = qualified(pod.ns, binding->azure_identity);
        const kube::AzureIdentity* identity = find_identity(s, pod.ns, binding->azure_identity);
        if (identity == nullptr) {
            out.explanations.push_back(head + "AzureIdentity " + identity_name + " not found, skipped");
            continue;
        }
        if (identity->type == 1 || identity->type == 2) {
            std::string why_not = service_principal_gap(*identity);
            if (!why_not.empty()) {
                unsupported.push_back(
                    UnsupportedIdentity{qualified(pod.ns, binding->meta.name), identity_name, identity->type});
                out.explanations.push_back(head + "AzureIdentity " + identity_name + " (" + type_name(identity->type) +
                                           ") " + why_not + ", skipped");
                continue;
            }
            Identity offered{identity->client_id, "", "", binding->azure_identity};
            EntraRef credential;
            credential.source = identity->type == 1 ? TokenSource::client_secret : TokenSource::client_certificate;
            credential.tenant = identity->tenant_id;
            credential.secret_ns = secret_namespace(*identity);
            credential.secret_name = identity->password_secret_name;
            offered.entra = std::move(credential);
            head += "AzureIdentity " + identity_name + " (clientID " + identity->client_id + ", " +
                    type_name(identity->type) + " in Secret " +
                    qualified(offered.entra->secret_ns, offered.entra->secret_name) + ", tenant " +
                    identity->tenant_id + ")";
            if (std::optional<std::string> first = offer.already(offered)) {
                out.explanations.push_back(head + ", already offered as " + *first);
                continue;
            }
            out.explanations.push_back(head);
            offer.add(std::move(offered), BindingKind::aad_pod_identity);
            continue;
        }
        if (identity->type != 0) {
            unsupported.push_back(
                UnsupportedIdentity{qualified(pod.ns, binding->meta.name), identity_name, identity->type});
            out.explanations.push_back(head + "AzureIdentity " + identity_name + " is type " +
                                       std::to_string(identity->type) + " (" + type_name(identity->type) +
                                       "), not served, skipped");
            continue;
        }
        if (identity->client_id.empty() && identity->resource_id.empty()) {
            out.explanations.push_back(head + "AzureIdentity " + identity_name +
                                       " has neither clientID nor resourceID, skipped");
            continue;
        }
        Identity offered{identity->client_id, identity->resource_id, "", binding->azure_identity};
        std::string id =
            !identity->client_id.empty() ? "clientID " + identity->client_id : "resourceID " + identity->resource_id;
        head += "AzureIdentity " + identity_name + " (" + id + ")";
        if (std::optional<std::string> first = offer.already(offered)) {
            out.explanations.push_back(head + ", already offered as " + *first);
            continue;
        }
        out.explanations.push_back(head);
        offer.add(std::move(offered), BindingKind::aad_pod_identity);
    }
    return out;
}

// The service-account token lifetime the service account asks for (3600-86400 s as the webhook allows; 3600
// otherwise).
int64_t assertion_lifetime(const kube::ServiceAccount& account) {
    const std::string* text = find_in(account.meta.annotations, kWorkloadIdentityTokenExpirationAnnotation);
    if (text == nullptr || text->empty() ||
        !std::all_of(text->begin(), text->end(), [](unsigned char c) { return std::isdigit(c); }))
        return 3600;
    if (text->size() > 9)  // more than the cap in any case, and more than stoll may hold
        return 86400;
    return std::clamp<int64_t>(std::stoll(*text), 3600, 86400);
}

// Step 3. Workload Identity: the service account names the client id. Federated (the default): the pod's
// service-account token is exchanged with Entra ID, nothing needs to be assigned to the node. Node mode: the
// node's IMDS is asked for the client id (the node must have that identity assigned).
std::string resolve_workload(const PodInfo& pod, const kube::Snapshot& s, const KubeBindingOptions& options,
                             Offer& offer) {
    const std::string* use = find_in(pod.labels, kWorkloadIdentityUseLabel);
    if (use == nullptr) {
        return std::string("no ") + kWorkloadIdentityUseLabel + " label";
    }
    // Exactly "true", as the workload identity webhook's objectSelector requires.
    if (*use != "true") {
        return std::string("label ") + kWorkloadIdentityUseLabel + " is \"" + *use + "\", not \"true\"";
    }
    const std::string sa_name = pod.service_account.empty() ? "default" : pod.service_account;
    const std::string sa = qualified(pod.ns, sa_name);
    const auto* accounts = find_in(s.service_accounts, pod.ns);
    const kube::ServiceAccount* account = accounts == nullptr ? nullptr : find_in(*accounts, sa_name);
    if (account == nullptr) {
        return "ServiceAccount " + sa + " not found";
    }
    const std::string* client_id = find_in(account->meta.annotations, kWorkloadIdentityClientIdAnnotation);
    if (client_id == nullptr || client_id->empty()) {
        return "ServiceAccount " + sa + " has no " + kWorkloadIdentityClientIdAnnotation + " annotation";
    }
    Identity offered{*client_id, "", "", "sa:" + sa};
    std::string head = "ServiceAccount " + sa + " (" + kWorkloadIdentityClientIdAnnotation + " " + *client_id +
                       ") -> workload identity";
    if (options.federated_workload_identity) {
        EntraRef credential;
        credential.source = TokenSource::federated;
        const std::string* tenant = find_in(account->meta.annotations, kWorkloadIdentityTenantIdAnnotation);
        credential.tenant = tenant != nullptr && !tenant->empty() ? *tenant : options.default_tenant;
        credential.pod_ns = pod.ns;
        credential.pod_name = pod.name;
        credential.pod_uid = pod.uid;
        credential.service_account = sa_name;
        credential.assertion_lifetime_s = assertion_lifetime(*account);
        head += ", federated (tenant " + (credential.tenant.empty() ? std::string("unknown") : credential.tenant) +
                ", subject " + credential.subject() + ")";
        offered.entra = std::move(credential);
    } else {
        head += " through the node's IMDS";
    }
    if (std::optional<std::string> first = offer.already(offered)) {
        return head + ", already offered as " + *first;
    }
    offer.add(std::move(offered), BindingKind::workload_identity);
    return head;
}

}  // namespace

KubeResolution resolve_kube(const PodInfo& pod, const kube::Snapshot& s, const KubeBindingOptions& options) {
    KubeResolution out;
    const std::string prefix = "pod " + qualified(pod.ns, pod.name) + ": ";

    std::string exception_looked_at;
    if (std::optional<std::string> exception = exception_match(pod, s, exception_looked_at)) {
        out.binding.kind = BindingKind::node_identity;
        out.steps.push_back(*exception);
        // NMI checks exceptions first; say what is overridden so nobody wonders where a binding went.
        if (const std::string* selector = find_in(pod.labels, kAadPodIdBindingLabel)) {
            out.steps.push_back("takes precedence over " + std::string(kAadPodIdBindingLabel) + "=" + *selector);
        }
        if (const std::string* use = find_in(pod.labels, kWorkloadIdentityUseLabel); use && *use == "true") {
            out.steps.emplace_back("takes precedence over workload identity");
        }
        out.binding.explanation = prefix + join(out.steps, "; ");
        return out;
    }

    Offer offer;
    AadOutcome aad = resolve_aad(pod, s, offer, out.unsupported);
    std::string workload = resolve_workload(pod, s, options, offer);

    std::vector<std::string> parts = std::move(aad.explanations);
    parts.push_back(std::move(workload));
    if (!offer.identities().empty()) {
        out.binding.kind = offer.default_kind();
    } else if (aad.selected) {
        // Selected by a binding yet nothing servable: stays an AAD binding with no identity, so the handler answers
        // "Identity not found" and the audit can name the unsupported identities.
        out.binding.kind = BindingKind::aad_pod_identity;
        parts.emplace_back("no identity to serve");
    } else {
        out.binding.kind = BindingKind::none;
        parts.insert(parts.begin(), exception_looked_at);  // copied: moved below when a binding applied
        parts.insert(parts.begin(), "no binding");
    }
    out.binding.identities = std::move(offer.identities());
    out.binding.unsupported_identities = !out.unsupported.empty();
    out.binding.explanation = prefix + join(parts, "; ");
    // The steps name every rule looked at, the exception check included, even when a binding applied.
    if (out.binding.kind != BindingKind::none)
        parts.insert(parts.begin(), std::move(exception_looked_at));
    out.steps = std::move(parts);
    return out;
}

Binding resolve_kube_binding(const PodInfo& pod, const kube::Snapshot& s, const KubeBindingOptions& options) {
    return resolve_kube(pod, s, options).binding;
}

KubeBindingSource::KubeBindingSource(SnapshotProvider snapshot, ReadyFlag ready, KubeBindingOptions options)
    : snapshot_(std::move(snapshot)), ready_(std::move(ready)), options_(std::move(options)) {}

KubeResolution KubeBindingSource::resolve(const Caller& caller) const {
    KubeResolution out;
    if (!caller.pod) {
        out.binding.explanation =
            caller.pod_ref
                ? "caller is not a known pod (pod " + caller.pod_ref->uid + " not in the pod directory)"
                : "not a pod cgroup (" + (caller.cgroup_path.empty() ? "cgroup unknown" : caller.cgroup_path) + ")";
        return out;
    }
    kube::SnapshotPtr snapshot = snapshot_ ? snapshot_() : nullptr;
    if (!snapshot) {
        out.binding.explanation =
            "pod " + qualified(caller.pod->ns, caller.pod->name) + ": no Kubernetes bindings snapshot yet";
        return out;
    }
    return resolve_kube(*caller.pod, *snapshot, options_);
}

Binding KubeBindingSource::bindings_for(const Caller& caller) const { return resolve(caller).binding; }

BindingTrace KubeBindingSource::trace(const Caller& caller) const {
    KubeResolution r = resolve(caller);
    BindingTrace t;
    if (r.steps.empty())
        t.steps.push_back(r.binding.explanation);
    for (auto& step : r.steps)
        t.steps.push_back(std::move(step));
    t.unsupported = std::move(r.unsupported);
    if (r.binding.kind != BindingKind::none)
        t.decided_by = "kubernetes";
    t.binding = std::move(r.binding);
    return t;
}

bool KubeBindingSource::ready() const { return ready_ && ready_(); }

}  // namespace podid
