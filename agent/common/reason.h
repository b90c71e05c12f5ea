// Stable reason codes for request decisions: used in the audit log (`reason`), metrics labels
// and docs/reasons.md. Append only; a retired code keeps its number and name.
#pragma once

#include <cstdint>

namespace podid {

enum class Reason : uint16_t {
    ok_bound_identity = 0,           // served the caller's bound identity
    ok_node_identity = 1,            // AzurePodIdentityException: passed through as the node
    ok_probe = 2,                    // SDK probe (no Metadata header) answered locally
    ok_forwarded = 3,                // non-identity metadata path forwarded to IMDS
    deny_no_origin = 4,              // no kernel origin record for the connection
    deny_no_binding = 5,             // caller has no bound identity
    deny_identity_not_bound = 6,     // requested identity is not among the caller's bindings
    deny_missing_metadata = 7,       // Metadata: true absent on a non-probe path
    deny_forwarded_for = 8,          // X-Forwarded-For present
    deny_bad_request = 9,            // malformed query (duplicate, missing resource/api-version)
    deny_method = 10,                // not GET
    deny_path = 11,                  // odd spelling of the identity path, or unknown path
    deny_instance_blocked = 12,      // /metadata/instance under --block-instance-metadata
    deny_host_token_caller = 13,     // /host/token caller not authorised
    deny_host_token_pod = 14,        // /host/token for an unknown pod or one without binding
    error_upstream = 15,             // IMDS answered with an error and no cached token existed
    error_unavailable = 16,          // upstream unreachable / timed out / limits
    deny_not_ready = 17,             // pod not known yet after --pod-wait
    deny_unsupported_identity = 18,  // AzureIdentity type this agent cannot serve
    deny_rate_limited = 19,          // over the caller's --caller-rate: IMDS's 429 shape
    deny_identity_missing = 20,      // an AzureIdentityBinding selects the pod but its AzureIdentity does not exist
    deny_tenant_unknown = 21,        // an Entra ID identity without a tenant (annotation or --tenant-id)
    deny_federation_untrusted = 22,  // Entra ID: no federated identity credential for this issuer/subject/audience
    deny_credential_invalid = 23,    // Entra ID refused the client secret, certificate or assertion
    deny_entra_app_unknown = 24,     // Entra ID: no such application or tenant
    error_secret_unreadable = 25,    // a service principal's Secret could not be read or has no usable credential
    error_sa_token = 26,             // the API server issued no service-account token for the pod
    error_entra_unavailable = 27,    // Entra ID unreachable, failing or throttling, and no cached token
};

// The highest code: tests walk every code up to it (update it when appending).
inline constexpr Reason kLastReason = Reason::error_entra_unavailable;

const char* to_string(Reason reason);  // "ok_bound_identity", ...
bool is_denial(Reason reason);

}  // namespace podid
