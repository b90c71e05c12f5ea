#include "common/reason.h"

namespace podid {

const char* to_string(Reason reason) {
    // A switch without default: adding an enumerator without a name here fails the build (-Wswitch).
    switch (reason) {
    case Reason::ok_bound_identity: return "ok_bound_identity";
    case Reason::ok_node_identity: return "ok_node_identity";
    case Reason::ok_probe: return "ok_probe";
    case Reason::ok_forwarded: return "ok_forwarded";
    case Reason::deny_no_origin: return "deny_no_origin";
    case Reason::deny_no_binding: return "deny_no_binding";
    case Reason::deny_identity_not_bound: return "deny_identity_not_bound";
    case Reason::deny_missing_metadata: return "deny_missing_metadata";
    case Reason::deny_forwarded_for: return "deny_forwarded_for";
    case Reason::deny_bad_request: return "deny_bad_request";
    case Reason::deny_method: return "deny_method";
    case Reason::deny_path: return "deny_path";
    case Reason::deny_instance_blocked: return "deny_instance_blocked";
    case Reason::deny_host_token_caller: return "deny_host_token_caller";
    case Reason::deny_host_token_pod: return "deny_host_token_pod";
    case Reason::error_upstream: return "error_upstream";
    case Reason::error_unavailable: return "error_unavailable";
    case Reason::deny_not_ready: return "deny_not_ready";
    case Reason::deny_unsupported_identity: return "deny_unsupported_identity";
    case Reason::deny_rate_limited: return "deny_rate_limited";
    case Reason::deny_identity_missing: return "deny_identity_missing";
    case Reason::deny_tenant_unknown: return "deny_tenant_unknown";
    case Reason::deny_federation_untrusted: return "deny_federation_untrusted";
    case Reason::deny_credential_invalid: return "deny_credential_invalid";
    case Reason::deny_entra_app_unknown: return "deny_entra_app_unknown";
    case Reason::error_secret_unreadable: return "error_secret_unreadable";
    case Reason::error_sa_token: return "error_sa_token";
    case Reason::error_entra_unavailable: return "error_entra_unavailable";
    }
    return "unknown";  // a value cast from an out-of-range integer
}

bool is_denial(Reason reason) {
    switch (reason) {
    case Reason::deny_no_origin:
    case Reason::deny_no_binding:
    case Reason::deny_identity_not_bound:
    case Reason::deny_missing_metadata:
    case Reason::deny_forwarded_for:
    case Reason::deny_bad_request:
    case Reason::deny_method:
    case Reason::deny_path:
    case Reason::deny_instance_blocked:
    case Reason::deny_host_token_caller:
    case Reason::deny_host_token_pod:
    case Reason::deny_not_ready:
    case Reason::deny_unsupported_identity:
    case Reason::deny_rate_limited:
    case Reason::deny_identity_missing:
    case Reason::deny_tenant_unknown:
    case Reason::deny_federation_untrusted:
    case Reason::deny_credential_invalid:
    case Reason::deny_entra_app_unknown: return true;
    // Upstream errors are failures, not policy decisions: they are counted apart from denials.
    case Reason::ok_bound_identity:
    case Reason::ok_node_identity:
    case Reason::ok_probe:
    case Reason::ok_forwarded:
    case Reason::error_secret_unreadable:
    case Reason::error_sa_token:
    case Reason::error_entra_unavailable:
    case Reason::error_upstream:
    case Reason::error_unavailable: return false;
    }
    return false;
}

}  // namespace podid
