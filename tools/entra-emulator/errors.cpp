#include "errors.h"

#include <ctime>

namespace podid::entra_emulator {
namespace {

std::string format_utc(int64_t epoch_seconds, const char* format) {
    std::time_t t = static_cast<std::time_t>(epoch_seconds);
    struct tm tm {};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

EntraError entra_err(unsigned status, const char* error, int code, std::string message) {
    return EntraError{status, error, code, std::move(message)};
}

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

}  // namespace

std::string entra_timestamp(int64_t epoch_seconds) { return format_utc(epoch_seconds, "%Y-%m-%d %H:%M:%SZ"); }
std::string entra_iso_time(int64_t epoch_seconds) { return format_utc(epoch_seconds, "%Y-%m-%dT%H:%M:%S.0000000Z"); }

nlohmann::ordered_json error_body(const EntraError& err, const TraceInfo& trace) {
    std::string stamp = entra_timestamp(trace.now);
    // Entra's descriptions once used "\r\n" between the parts; current answers use single spaces.
    std::string description = "AADSTS" + std::to_string(err.code) + ": " + err.message +
                              " Trace ID: " + trace.trace_id + " Correlation ID: " + trace.correlation_id +
                              " Timestamp: " + stamp;
    nlohmann::ordered_json body;
    body["error"] = err.error;
    body["error_description"] = description;
    body["error_codes"] = nlohmann::json::array({err.code});
    body["timestamp"] = stamp;
    body["trace_id"] = trace.trace_id;
    body["correlation_id"] = trace.correlation_id;
    body["error_uri"] = "https://login.microsoftonline.com/error?code=" + std::to_string(err.code);
    return body;
}

HttpResponse error_response(const HttpRequest& req, const EntraError& err, const TraceInfo& trace) {
    return json_response(req, err.status, error_body(err, trace).dump());
}

namespace errors {

EntraError missing_parameter(std::string_view name) {
    return entra_err(400, "invalid_request", 900144,
                     "The request body must contain the following parameter: " + in_quotes(name) + ".");
}

EntraError unsupported_grant_type(std::string_view grant_type) {
    return entra_err(400, "unsupported_grant_type", 70003,
                     "The app requested an unsupported grant type " + in_quotes(grant_type) + ".");
}

EntraError bad_assertion_type(std::string_view type) {
    return entra_err(400, "invalid_request", 90014,
                     "The required field 'client_assertion_type' is missing from the credential or has an unsupported "
                     "value " +
                         in_quotes(type) +
                         ". Ensure that you have all the necessary parameters for the login "
                         "request.");
}

EntraError post_only(std::string_view method) {
    return entra_err(
        400, "invalid_request", 900561,
        "The endpoint only accepts POST, OPTIONS requests. Received a " + std::string(method) + " request.");
}

EntraError scope_not_default(std::string_view scope) {
    return entra_err(
        400, "invalid_scope", 1002012,
        "The provided value for scope " + std::string(scope) +
            " is not valid. Client credential flows must have a scope value with /.default suffixed to the "
            "resource identifier (application ID URI).");
}

EntraError scope_many_resources(std::string_view scope) {
    return entra_err(400, "invalid_scope", 70011,
                     "The provided request must include a 'scope' input parameter. The provided value for the input "
                     "parameter 'scope' is not valid. The scope " +
                         std::string(scope) + " is not valid.");
}

EntraError tenant_not_found(std::string_view tenant) {
    return entra_err(
        400, "invalid_request", 90002,
        "Tenant " + in_quotes(tenant) +
            " not found. Check to make sure you have the correct tenant ID and are signing into the correct "
            "cloud. Check with your subscription administrator, this may happen if there are no active "
            "subscriptions for the tenant.");
}

EntraError tenant_not_found_discovery(std::string_view tenant) {
    EntraError err = tenant_not_found(tenant);
    err.error = "invalid_tenant";
    return err;
}

EntraError app_not_found(std::string_view client_id, std::string_view tenant) {
    return entra_err(
        400, "unauthorized_client", 700016,
        "Application with identifier " + in_quotes(client_id) + " was not found in the directory " + in_quotes(tenant) +
            ". This can happen if the application has not been installed by the administrator of the tenant "
            "or consented to by any user in the tenant. You may have sent your authentication request to the "
            "wrong tenant.");
}

EntraError invalid_instance() { return entra_err(400, "invalid_instance", 50049, "Unknown or invalid instance."); }

EntraError no_credential() {
    return entra_err(401, "invalid_client", 7000218,
                     "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
}

EntraError invalid_client_secret(std::string_view client_id) {
    return entra_err(401, "invalid_client", 7000215,
                     "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                     "value, not the client secret ID, for a secret added to app " +
                         in_quotes(client_id) + ".");
}

EntraError malformed_assertion(std::string_view reason) {
    return entra_err(401, "invalid_client", 50027, "Invalid JWT token. " + std::string(reason));
}

EntraError unsupported_assertion_alg(std::string_view alg) {
    return entra_err(401, "invalid_client", 5002738,
                     "Invalid JWT token. " + in_quotes(alg) +
                         " is not a supported signature algorithm. Supported signing algorithms are: 'RS256, PS256'");
}

EntraError no_thumbprint() {
    return entra_err(401, "invalid_client", 50027,
                     "Invalid JWT token. No certificate thumbprint specified in token header.");
}

EntraError certificate_key_not_found(std::string_view thumbprint_hex, std::string_view client_id) {
    return entra_err(
        401, "invalid_client", 700027,
        "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key "
        "used by client: " +
            in_quotes(thumbprint_hex) +
            ", Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys "
            "for app Id " +
            in_quotes(client_id) + "].");
}

EntraError certificate_signature_mismatch(std::string_view thumbprint_hex, std::string_view validity) {
    return entra_err(
        401, "invalid_client", 700027,
        "Client assertion contains an invalid signature. [Reason - The provided signature value did not match "
        "the expected signature value., Thumbprint of key used by client: " +
            in_quotes(thumbprint_hex) + ", Found key " + in_quotes(validity) + "]");
}

EntraError assertion_client_mismatch() {
    return entra_err(401, "invalid_client", 700021,
                     "Client assertion application identifier doesn't match 'client_id' parameter. Review the "
                     "documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .");
}

EntraError assertion_audience_mismatch() {
    return entra_err(401, "invalid_client", 700023,
                     "Client assertion audience claim does not match Realm issuer. Review the documentation at "
                     "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .");
}

EntraError assertion_time_range(int64_t now, int64_t nbf, int64_t exp) {
    return entra_err(401, "invalid_client", 700024,
                     "Client assertion is not within its valid time range. Current time: " + entra_iso_time(now) +
                         ", assertion valid from " + entra_iso_time(nbf) + ", expiry time of assertion " +
                         entra_iso_time(exp) +
                         ". Review the documentation at "
                         "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .");
}

EntraError no_federated_match(std::string_view issuer, std::string_view subject, std::string_view audience) {
    return entra_err(
        400, "invalid_request", 70021,
        "No matching federated identity record found for presented assertion. Assertion Issuer: " + in_quotes(issuer) +
            ". Assertion Subject: " + in_quotes(subject) + ". Assertion Audience: " + in_quotes(audience) +
            ". https://docs.microsoft.com/en-us/azure/active-directory/develop/"
            "workload-identity-federation");
}

EntraError external_oidc_failed() {
    return entra_err(400, "invalid_request", 50166, "Request to External OIDC endpoint failed.");
}

EntraError federated_key_not_found(std::string_view kid, std::string_view issuer) {
    return entra_err(
        401, "invalid_client", 7000272,
        "The certificate with identifier " + std::string(kid) +
            " used to sign the federated credential could not be found in the metadata of identity provider " +
            std::string(issuer) +
            ". Please validate that your Identity Provider's metadata exposes the key used to sign the "
            "incoming token.");
}

EntraError federated_signature_invalid() {
    return entra_err(401, "invalid_client", 50013,
                     "Assertion failed signature validation. [Reason - The provided signature value did not match the "
                     "expected signature value.]");
}

EntraError federated_lifetime_too_long(int64_t iat, int64_t exp) {
    return entra_err(
        400, "invalid_request", 70023,
        "External OIDC Provider token must have a lifetime of less than or equal to 1.01:00:00. Token issued "
        "at " +
            std::to_string(iat) + ". Token expires on " + std::to_string(exp) + ".");
}

EntraError throttled() {
    return entra_err(
        429, "temporarily_unavailable", 90055,
        "TenantThrottlingError - There are too many incoming requests. This exception is thrown for blocked "
        "tenants. (injected fault)");
}

EntraError server_fault(unsigned status) {
    return entra_err(status, status == 503 ? "temporarily_unavailable" : "server_error", 90033,
                     "A transient error has occurred. Please try again. (injected fault)");
}

}  // namespace errors
}  // namespace podid::entra_emulator
