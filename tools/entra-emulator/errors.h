// Entra ID's token-endpoint errors: every AADSTS code the emulator answers with, its HTTP status, OAuth error
// and message, in one place. Codes marked "seen" were observed in answers from the real service (issue threads
// of Azure SDKs, MSAL and azure-workload-identity quote them verbatim); codes marked "documented" are from
// Microsoft's public AADSTS list; "nearest" marks a case whose real code is unknown to us and the nearest
// documented one was chosen. Messages copy the real wording where it is known.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http.h"

namespace podid::entra_emulator {

struct EntraError {
    unsigned status = 400;
    std::string error;  // OAuth error: invalid_request, invalid_client, unauthorized_client, ...
    int code = 0;       // the AADSTS number
    std::string message;
};

// Per-request ids and time that Entra prints in every error.
struct TraceInfo {
    std::string trace_id;
    std::string correlation_id;  // the client's client-request-id when it sent one
    int64_t now = 0;             // seconds since the epoch
};

// {"error","error_description":"AADSTSnnn: ... Trace ID: ... Correlation ID: ... Timestamp: ...",
//  "error_codes":[nnn],"timestamp","trace_id","correlation_id","error_uri"} in Entra's key order.
nlohmann::ordered_json error_body(const EntraError& err, const TraceInfo& trace);
HttpResponse error_response(const HttpRequest& req, const EntraError& err, const TraceInfo& trace);

// "2024-01-14 20:29:53Z" (error timestamps) and "2024-10-02T22:05:03.0000000Z" (AADSTS700024's times).
std::string entra_timestamp(int64_t epoch_seconds);
std::string entra_iso_time(int64_t epoch_seconds);

namespace errors {

// Request shape.
EntraError missing_parameter(std::string_view name);             // 900144 documented
EntraError unsupported_grant_type(std::string_view grant_type);  // 70003 documented
EntraError bad_assertion_type(std::string_view type);            // 90014 nearest
EntraError post_only(std::string_view method);                   // 900561 documented
EntraError scope_not_default(std::string_view scope);            // 1002012 seen
EntraError scope_many_resources(std::string_view scope);         // 70011 seen
// Directory.
EntraError tenant_not_found(std::string_view tenant);  // 90002 seen (invalid_request; invalid_tenant at discovery)
EntraError tenant_not_found_discovery(std::string_view tenant);
EntraError app_not_found(std::string_view client_id, std::string_view tenant);  // 700016 seen
EntraError invalid_instance();                                                  // 50049 documented
// Client credentials.
EntraError no_credential();                                    // 7000218 seen
EntraError invalid_client_secret(std::string_view client_id);  // 7000215 seen
EntraError malformed_assertion(std::string_view reason);       // 50027 seen
EntraError unsupported_assertion_alg(std::string_view alg);    // 5002738 seen
EntraError no_thumbprint();                                    // 50027 seen ("No certificate thumbprint ...")
EntraError certificate_key_not_found(std::string_view thumbprint_hex, std::string_view client_id);      // 700027 seen
EntraError certificate_signature_mismatch(std::string_view thumbprint_hex, std::string_view validity);  // 700027
EntraError assertion_client_mismatch();                                                                 // 700021 seen
EntraError assertion_audience_mismatch();                                                               // 700023 seen
EntraError assertion_time_range(int64_t now, int64_t nbf, int64_t exp);                                 // 700024 seen
// Federation.
EntraError no_federated_match(std::string_view issuer, std::string_view subject, std::string_view audience);  // 70021
EntraError external_oidc_failed();                                                  // 50166 seen
EntraError federated_key_not_found(std::string_view kid, std::string_view issuer);  // 7000272 seen
EntraError federated_signature_invalid();                                           // 50013 nearest
EntraError federated_lifetime_too_long(int64_t iat, int64_t exp);                   // 70023 seen
// Injected faults.
EntraError throttled();                    // 429: 90055 documented (TenantThrottlingError)
EntraError server_fault(unsigned status);  // 5xx: 90033 documented (transient error)

}  // namespace errors
}  // namespace podid::entra_emulator
