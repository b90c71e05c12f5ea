#include "entra/token_response.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <nlohmann/json.hpp>

#include "token/retry_policy.h"

namespace podid::entra {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxSummary = 600;

// expires_in and ext_expires_in: numbers from Entra, strings from IMDS-minded proxies.
std::optional<int64_t> integer_at(const json& doc, const char* name) {
    auto it = doc.find(name);
    if (it == doc.end())
        return std::nullopt;
    if (it->is_number_integer())
        return it->get<int64_t>();
    if (it->is_number_float())
        return static_cast<int64_t>(it->get<double>());
    if (it->is_string()) {
        const auto& text = it->get_ref<const std::string&>();
        int64_t value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec == std::errc() && end == text.data() + text.size() && !text.empty())
            return value;
    }
    return std::nullopt;
}

std::string string_at(const json& doc, const char* name) {
    auto it = doc.find(name);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

// The quoted value Entra puts after "Assertion Issuer: '" (AADSTS70021) or "assertion issuer '" (AADSTS700211
// and its subject/audience siblings), matched case-insensitively; empty when absent.
std::string assertion_field(const std::string& description, std::string_view field) {
    const std::string text = lower(description);
    for (const std::string& label :
         {"assertion " + std::string(field) + ": '", "assertion " + std::string(field) + " '"}) {
        const auto start = text.find(label);
        if (start == std::string::npos)
            continue;
        const auto from = start + label.size();
        const auto end = description.find('\'', from);
        if (end != std::string::npos)
            return description.substr(from, end - from);
    }
    return {};
}

int64_t aadsts_in(const std::string& description) {
    const auto at = description.find("AADSTS");
    if (at == std::string::npos)
        return 0;
    int64_t value = 0;
    const char* begin = description.data() + at + 6;
    auto [end, ec] = std::from_chars(begin, description.data() + description.size(), value);
    return ec == std::errc() && end != begin ? value : 0;
}

bool one_of(int64_t code, std::initializer_list<int64_t> codes) {
    return std::find(codes.begin(), codes.end(), code) != codes.end();
}

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

// "application 'c' in tenant 't'"
std::string app_in_tenant(const EntraRequestInfo& info) {
    return "application " + in_quotes(info.client_id) + " in tenant " + in_quotes(info.tenant);
}

std::string via(const EntraRequestInfo& info) { return info.identity.empty() ? "" : " (" + info.identity + ")"; }

// "[AADSTS70021, trace ID x]": what Microsoft support asks for.
std::string reference(const EntraError& error) {
    std::string out = " [Entra ID HTTP " + std::to_string(error.http_status);
    if (error.aadsts != 0)
        out += ", AADSTS" + std::to_string(error.aadsts);
    if (!error.trace_id.empty())
        out += ", trace ID " + error.trace_id;
    if (!error.correlation_id.empty())
        out += ", correlation ID " + error.correlation_id;
    return out + "]";
}

std::string entra_says(const EntraError& error) {
    const std::string summary = error.summary();
    return summary.empty() ? std::string() : " Entra ID said: " + summary;
}

PodError pod_error(int status, std::string_view error, const std::string& description, std::string_view why) {
    return PodError{status, imds_error_body(error, description), why};
}

}  // namespace

std::string imds_error_body(std::string_view error, std::string_view description) {
    return json{{"error", error}, {"error_description", description}}.dump();
}

Result<Token> parse_entra_token(std::string_view body, std::string_view client_id, std::string_view resource,
                                int64_t now) {
    const json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object())
        return make_error("Entra ID's token response is not a JSON object");
    Token token;
    token.access_token = string_at(doc, "access_token");
    if (token.access_token.empty())
        return make_error("Entra ID's token response has no access_token");
    if (doc.contains("token_type") && !doc["token_type"].is_string())
        return make_error("Entra ID's token response field \"token_type\" is not a string");
    if (auto type = string_at(doc, "token_type"); !type.empty())
        token.token_type = std::move(type);
    const auto expires_in = integer_at(doc, "expires_in");
    if (!expires_in)
        return make_error("Entra ID's token response has no integer expires_in");
    if (*expires_in <= 0)
        return make_error("Entra ID's token response has expires_in " + std::to_string(*expires_in));
    if (doc.contains("ext_expires_in") && !integer_at(doc, "ext_expires_in"))
        return make_error("Entra ID's token response field \"ext_expires_in\" is not an integer");
    token.ext_expires_in = integer_at(doc, "ext_expires_in").value_or(*expires_in);
    token.expires_on = now + *expires_in;
    token.not_before = now;
    token.client_id = std::string(client_id);
    token.resource = std::string(resource);
    return token;
}

std::string EntraError::summary() const {
    std::string text = description;
    if (auto trace = text.find("Trace ID:"); trace != std::string::npos)
        text.resize(trace);
    std::replace(text.begin(), text.end(), '\r', ' ');
    std::replace(text.begin(), text.end(), '\n', ' ');
    while (!text.empty() && text.back() == ' ')
        text.pop_back();
    if (text.size() > kMaxSummary)
        text = text.substr(0, kMaxSummary) + "...";
    return text;
}

EntraError parse_entra_error(int http_status, std::string_view body) {
    EntraError out;
    out.http_status = http_status;
    const json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object())
        return out;
    out.error = string_at(doc, "error");
    out.description = string_at(doc, "error_description");
    out.trace_id = string_at(doc, "trace_id");
    out.correlation_id = string_at(doc, "correlation_id");
    if (auto it = doc.find("error_codes"); it != doc.end() && it->is_array())
        for (const auto& code : *it)
            if (code.is_number_integer())
                out.error_codes.push_back(code.get<int64_t>());
    out.aadsts = out.error_codes.empty() ? aadsts_in(out.description) : out.error_codes.front();
    return out;
}

PodError map_entra_error(const EntraError& error, const EntraRequestInfo& info) {
    const int64_t code = error.aadsts;
    const std::string ref = reference(error);

    if (error.http_status == 429)
        return pod_error(429, "too_many_requests",
                         "Entra ID is throttling token requests for " + app_in_tenant(info) + "; retry later." + ref,
                         reason::entra_throttled);
    if (error.http_status >= 500)
        return pod_error(
            503, "service_unavailable",
            "Entra ID is unavailable (it answered HTTP " + std::to_string(error.http_status) + "); retry later." + ref,
            reason::entra_unavailable);

    if (one_of(code, {70021, 700211, 700212, 700213, 7002137, 7002138})) {
        const std::string issuer = assertion_field(error.description, "issuer");
        const std::string subject = assertion_field(error.description, "subject");
        const std::string audience = assertion_field(error.description, "audience");
        std::string presented;
        for (const auto& [name, value] :
             {std::pair{"issuer", &issuer}, std::pair{"subject", &subject}, std::pair{"audience", &audience}})
            if (!value->empty())
                presented += std::string(presented.empty() ? "" : ", ") + name + " " + in_quotes(*value);
        std::string description = "Entra ID has no federated identity credential on " + app_in_tenant(info) +
                                  " that matches the service-account token podid presented" + via(info);
        description += presented.empty() ? "." : " (" + presented + ").";
        description +=
            " Create a federated identity credential on that app registration or user-assigned managed "
            "identity with exactly this issuer, subject and audience (matching is case-sensitive; a new "
            "credential can take a few minutes to take effect).";
        return pod_error(400, "invalid_request", description + entra_says(error) + ref, reason::federation_not_trusted);
    }
    if (one_of(code, {7000215, 7000222})) {
        const bool expired = code == 7000222;
        return pod_error(401, "invalid_client",
                         "Entra ID rejected the client secret of " + app_in_tenant(info) +
                             (expired ? " because it has expired" : " as invalid") + ". Fix the secret" +
                             (info.identity.empty() ? "" : " of " + info.identity) +
                             ": it must hold a current client secret's value (not its secret ID)." + entra_says(error) +
                             ref,
                         reason::sp_secret_invalid);
    }
    if (code == 700027)
        return pod_error(401, "invalid_client",
                         "Entra ID does not accept the certificate podid signed with for " + app_in_tenant(info) +
                             via(info) +
                             ". Upload that certificate (its public part) to the app registration, or put the "
                             "certificate that is registered there into the secret." +
                             entra_says(error) + ref,
                         reason::sp_certificate_invalid);
    if (code == 700016)
        return pod_error(400, "invalid_request",
                         "Entra ID has no application with client ID " + in_quotes(info.client_id) + " in tenant " +
                             in_quotes(info.tenant) + ". Check the client ID and tenant ID" +
                             (info.identity.empty() ? "" : " of " + info.identity) +
                             ", and that the application or managed identity exists in that tenant (a new one can "
                             "take a minute to be usable)." +
                             entra_says(error) + ref,
                         reason::entra_app_not_found);
    if (one_of(code, {90002, 900023, 50128}))
        return pod_error(400, "invalid_request",
                         "Entra ID has no tenant " + in_quotes(info.tenant) + ". Check the tenant ID" +
                             (info.identity.empty() ? "" : " of " + info.identity) + "." + entra_says(error) + ref,
                         reason::entra_tenant_not_found);
    if (one_of(code, {700024, 50013, 50027, 700023})) {
        std::string description =
            "Entra ID rejected the client assertion podid presented for " + app_in_tenant(info) + via(info) + ".";
        if (code == 700024)
            description +=
                " It was outside its valid time range: check this node's clock (NTP), and that the "
                "service-account token was still valid when it was used.";
        return pod_error(401, "invalid_client", description + entra_says(error) + ref, reason::entra_assertion_invalid);
    }
    if (one_of(code, {500011, 70011, 1002012}))
        return pod_error(400, "invalid_resource",
                         "Entra ID does not know the resource " + in_quotes(info.resource) + " in tenant " +
                             in_quotes(info.tenant) + ". Check the resource (App ID URI) the application asks for." +
                             entra_says(error) + ref,
                         reason::entra_resource_not_found);

    const int status = error.http_status >= 400 && error.http_status < 500 ? error.http_status : 400;
    return pod_error(
        status, error.error.empty() ? "invalid_request" : error.error,
        "Entra ID refused the token request for " + app_in_tenant(info) + via(info) + "." + entra_says(error) + ref,
        reason::entra_rejected);
}

EntraResult entra_result(int http_status, std::string_view retry_after, std::string_view body,
                         const EntraRequestInfo& info, int64_t now) {
    EntraResult out;
    out.upstream.retry_after = parse_retry_after(retry_after);
    if (http_status == 200) {
        auto token = parse_entra_token(body, info.client_id, info.resource, now);
        if (token) {
            out.upstream.status = 200;
            out.upstream.token = std::move(*token);
            return out;
        }
        // Retryable for the cache, and the body is never echoed: it may hold part of a token.
        out.upstream.status = 502;
        out.upstream.detail = token.error().message;
        out.upstream.body =
            imds_error_body("bad_gateway", "Entra ID returned an unusable token response: " + token.error().message);
        out.reason = reason::entra_bad_response;
        return out;
    }
    const EntraError error = parse_entra_error(http_status, body);
    PodError mapped = map_entra_error(error, info);
    out.upstream.status = mapped.status;
    out.upstream.body = std::move(mapped.body);
    out.reason = mapped.reason;
    out.upstream.detail = "Entra ID answered HTTP " + std::to_string(http_status);
    if (error.aadsts != 0)
        out.upstream.detail += " AADSTS" + std::to_string(error.aadsts);
    if (!error.error.empty())
        out.upstream.detail += " " + error.error;
    if (!error.trace_id.empty())
        out.upstream.detail += " trace_id=" + error.trace_id;
    if (!error.correlation_id.empty())
        out.upstream.detail += " correlation_id=" + error.correlation_id;
    if (const std::string summary = error.summary(); !summary.empty())
        out.upstream.detail += ": " + summary;
    return out;
}

}  // namespace podid::entra
