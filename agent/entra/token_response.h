// Entra ID's answers from the v2 token endpoint -> podid's Token, or an error a pod (and an operator) can act on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "token/token.h"
#include "token/token_upstream.h"

namespace podid::entra {

// The success body {"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"..."}
// (expires_in and ext_expires_in as numbers or strings) as the Token IMDS would have given for the same request:
// expires_on = now + expires_in, not_before = now, resource = the IMDS resource the pod asked for (not the scope),
// client_id = the application's client id. Errors never quote the body, which may hold a token.
Result<Token> parse_entra_token(std::string_view body, std::string_view client_id, std::string_view resource,
                                int64_t now);

// Entra's error body {"error","error_description":"AADSTSnnn: ... Trace ID: ... Correlation ID: ... Timestamp: ...",
// "error_codes":[nnn],"timestamp","trace_id","correlation_id","error_uri"}; any field may be missing (a proxy's
// HTML page leaves them all empty).
struct EntraError {
    int http_status = 0;
    std::string error;        // OAuth error, e.g. "invalid_client"
    std::string description;  // error_description as sent
    std::vector<int64_t> error_codes;
    int64_t aadsts = 0;  // error_codes[0], else the number after "AADSTS" in the description; 0 if none
    std::string trace_id;
    std::string correlation_id;

    // The description's first part, before " Trace ID:", with its CR/LF folded to spaces.
    std::string summary() const;
};

EntraError parse_entra_error(int http_status, std::string_view body);

// What the descriptions name, so that the person reading a pod's error knows what to fix.
struct EntraRequestInfo {
    std::string tenant;
    std::string client_id;
    std::string resource;
    std::string identity;  // the Kubernetes object(s) holding the credential, e.g. "AzureIdentity ns/name (secret
                           // ns/name)" or "service account ns/name"; may be empty
};

// Stable reason words (append-only: audit log, metrics labels and docs use them).
namespace reason {
inline constexpr std::string_view federation_not_trusted = "federation_not_trusted";  // no matching federated cred.
inline constexpr std::string_view sp_secret_invalid = "sp_secret_invalid";            // wrong or expired client secret
inline constexpr std::string_view sp_certificate_invalid = "sp_certificate_invalid";  // cert not on the app
inline constexpr std::string_view entra_app_not_found = "entra_app_not_found";
inline constexpr std::string_view entra_tenant_not_found = "entra_tenant_not_found";
inline constexpr std::string_view entra_assertion_invalid = "entra_assertion_invalid";    // expired, skew, bad JWT
inline constexpr std::string_view entra_resource_not_found = "entra_resource_not_found";  // resource/scope unknown
inline constexpr std::string_view entra_rejected = "entra_rejected";                      // any other 4xx
inline constexpr std::string_view entra_throttled = "entra_throttled";                    // 429
inline constexpr std::string_view entra_unavailable = "entra_unavailable";                // 5xx
inline constexpr std::string_view entra_bad_response = "entra_bad_response";              // 200 without a usable token
inline constexpr std::string_view entra_unreachable = "entra_unreachable";  // no HTTP answer (connect, reset)
inline constexpr std::string_view entra_timeout = "entra_timeout";          // no answer within the request timeout
inline constexpr std::string_view entra_tls_failed = "entra_tls_failed";    // handshake or certificate check failed
inline constexpr std::string_view entra_request_invalid = "entra_request_invalid";  // not sent: bad tenant, etc.
}  // namespace reason

// What a pod is told for an Entra error: the HTTP status, an IMDS-shaped body {"error","error_description"} and
// the reason word. The description names what to create or fix; it never holds a secret or a token.
struct PodError {
    int status = 0;
    std::string body;
    std::string_view reason;
};

PodError map_entra_error(const EntraError& error, const EntraRequestInfo& info);

// One answer of the token endpoint as the token cache takes it (see token/token_upstream.h): a Token on 200, or
// the mapped status and body; retry_after from the Retry-After header; detail = Entra's summary, AADSTS code and
// trace id for the log. `reason` is empty on success.
struct EntraResult {
    UpstreamResult upstream;
    std::string_view reason;
};

EntraResult entra_result(int http_status, std::string_view retry_after, std::string_view body,
                         const EntraRequestInfo& info, int64_t now);

// An IMDS-shaped error body.
std::string imds_error_body(std::string_view error, std::string_view description);

}  // namespace podid::entra
