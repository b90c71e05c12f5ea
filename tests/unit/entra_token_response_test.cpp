// Entra ID's token endpoint answers -> podid's Token (rendered in IMDS's shape) or an IMDS-shaped error a person can
// act on, with a stable reason word.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "entra/token_response.h"
#include "token/token_body.h"

namespace podid::entra {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr int64_t kNow = 1700000000;
const std::string kJwt = "eyJ0eXAiOiJKV1QifQ.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl";

EntraRequestInfo info() {
    return {"72f988bf-86f1-41af-91ab-2d7cd011db47", "11111111-2222-3333-4444-555555555555",
            "https://management.azure.com/", "AzureIdentity shop/cart-sp (secret shop/cart-sp-secret)"};
}

// Entra's error body as it sends it: the description ends with trace and correlation ids and a timestamp.
std::string entra_error(const std::string& error, int64_t code, const std::string& text) {
    return json{{"error", error},
                {"error_description", "AADSTS" + std::to_string(code) + ": " + text +
                                          "\r\nTrace ID: 0b5c1f2e-trace\r\nCorrelation ID: 7d1e-corr\r\n"
                                          "Timestamp: 2024-05-01 10:00:00Z"},
                {"error_codes", {code}},
                {"timestamp", "2024-05-01 10:00:00Z"},
                {"trace_id", "0b5c1f2e-trace"},
                {"correlation_id", "7d1e-corr"},
                {"error_uri", "https://login.microsoftonline.com/error?code=" + std::to_string(code)}}
        .dump();
}

TEST(EntraTokenResponse, SuccessBecomesTheTokenImdsWouldHaveGiven) {
    struct Row {
        const char* name;
        std::string body;
        int64_t expires_on, ext_expires_in;
        std::string token_type;
    };
    const Row rows[] = {
        {"numbers, as Entra sends them",
         R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3600,"access_token":")" + kJwt + R"("})",
         kNow + 3599, 3600, "Bearer"},
        {"strings, as IMDS-minded proxies send them",
         R"({"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","access_token":")" + kJwt + R"("})",
         kNow + 3599, 3599, "Bearer"},
        {"no ext_expires_in: expires_in",
         R"({"token_type":"Bearer","expires_in":86399,"access_token":")" + kJwt + R"("})", kNow + 86399, 86399,
         "Bearer"},
        {"no token_type: Bearer", R"({"expires_in":60,"access_token":")" + kJwt + R"("})", kNow + 60, 60, "Bearer"},
        {"a fractional expires_in", R"({"expires_in":60.9,"access_token":")" + kJwt + R"("})", kNow + 60, 60, "Bearer"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        auto token = parse_entra_token(row.body, "client-1", "https://vault.azure.net", kNow);
        ASSERT_TRUE(token) << token.error().message;
        EXPECT_EQ(token->access_token, kJwt);
        EXPECT_EQ(token->expires_on, row.expires_on);
        EXPECT_EQ(token->not_before, kNow);
        EXPECT_EQ(token->ext_expires_in, row.ext_expires_in);
        EXPECT_EQ(token->token_type, row.token_type);
        EXPECT_EQ(token->client_id, "client-1");
        EXPECT_EQ(token->resource, "https://vault.azure.net");
    }
}

TEST(EntraTokenResponse, ParsedTokenRendersInImdsShape) {
    auto token = parse_entra_token(
        R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":")" + kJwt + R"("})",
        "client-1", "https://management.azure.com/", kNow);
    ASSERT_TRUE(token);
    const std::string body = TokenBody(*token, token->client_id, token->resource, false).at(kNow + 10);
    EXPECT_EQ(body, json({{"access_token", kJwt},
                          {"client_id", "client-1"},
                          {"expires_in", "3589"},
                          {"expires_on", std::to_string(kNow + 3599)},
                          {"ext_expires_in", "3599"},
                          {"not_before", std::to_string(kNow)},
                          {"resource", "https://management.azure.com/"},
                          {"token_type", "Bearer"}})
                        .dump());
}

TEST(EntraTokenResponse, UnusableSuccessBodiesAreErrorsThatNeverQuoteTheBody) {
    struct Row {
        std::string body;
        std::string error;
    };
    const Row rows[] = {
        {"", "not a JSON object"},
        {"[\"" + kJwt + "\"]", "not a JSON object"},
        {R"({"expires_in":3599})", "no access_token"},
        {R"({"access_token":"","expires_in":3599})", "no access_token"},
        {R"({"access_token":")" + kJwt + R"("})", "no integer expires_in"},
        {R"({"access_token":")" + kJwt + R"(","expires_in":"soon"})", "no integer expires_in"},
        {R"({"access_token":")" + kJwt + R"(","expires_in":0})", "expires_in 0"},
        {R"({"access_token":")" + kJwt + R"(","expires_in":1,"ext_expires_in":"x"})", "ext_expires_in"},
        {R"({"access_token":")" + kJwt + R"(","expires_in":1,"token_type":7})", "token_type"},
    };
    for (const auto& row : rows) {
        auto token = parse_entra_token(row.body, "c", "r", kNow);
        ASSERT_FALSE(token) << row.body;
        EXPECT_NE(token.error().message.find(row.error), std::string::npos) << token.error().message;
        EXPECT_EQ(token.error().message.find("eyJ"), std::string::npos) << token.error().message;
    }
}

TEST(EntraTokenResponse, ParsesEntraErrorBodies) {
    const EntraError full =
        parse_entra_error(401, entra_error("invalid_client", 7000215,
                                           "Invalid client secret provided. Ensure the secret being sent in "
                                           "the request is the client secret value, not the client secret ID."));
    EXPECT_EQ(full.http_status, 401);
    EXPECT_EQ(full.error, "invalid_client");
    EXPECT_EQ(full.aadsts, 7000215);
    EXPECT_EQ(full.error_codes, std::vector<int64_t>{7000215});
    EXPECT_EQ(full.trace_id, "0b5c1f2e-trace");
    EXPECT_EQ(full.correlation_id, "7d1e-corr");
    EXPECT_EQ(full.summary(),
              "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the "
              "client secret value, not the client secret ID.");

    // No error_codes: the code comes from the description.
    const EntraError text_only = parse_entra_error(
        400, R"({"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."})");
    EXPECT_EQ(text_only.aadsts, 90002);
    EXPECT_TRUE(text_only.error_codes.empty());

    // Not JSON (a proxy's page): only the status.
    const EntraError html = parse_entra_error(502, "<html>Bad Gateway</html>");
    EXPECT_EQ(html.http_status, 502);
    EXPECT_EQ(html.aadsts, 0);
    EXPECT_TRUE(html.error.empty());
    EXPECT_TRUE(html.summary().empty());
}

TEST(EntraTokenResponse, MapsEntraErrorsToWhatAPodCanActOn) {
    struct Row {
        const char* name;
        int http_status;
        std::string body;
        int status;
        std::string error;
        std::string_view reason;
        std::vector<std::string> says;  // fragments of the description
    };
    const std::vector<Row> rows = {
        {"no federated credential (AADSTS70021)",
         400,
         entra_error("invalid_request", 70021,
                     "No matching federated identity record found for presented assertion. Assertion Issuer: "
                     "'https://oidc.example/cluster-a/'. Assertion Subject: 'system:serviceaccount:shop:cart'. "
                     "Assertion Audience: 'api://AzureADTokenExchange'. https://learn.microsoft.com/x"),
         400,
         "invalid_request",
         reason::federation_not_trusted,
         {"no federated identity credential", "issuer 'https://oidc.example/cluster-a/'",
          "subject 'system:serviceaccount:shop:cart'", "audience 'api://AzureADTokenExchange'",
          "application '11111111-2222-3333-4444-555555555555'", "Create a federated identity credential", "AADSTS70021",
          "trace ID 0b5c1f2e-trace"}},
        {"subject only (AADSTS700213)",
         401,
         entra_error("invalid_client", 700213,
                     "No matching federated identity record found for presented assertion subject "
                     "'system:serviceaccount:shop:cart'. Check your federated identity credential Subject, Audience "
                     "and Issuer against the presented assertion."),
         400,
         "invalid_request",
         reason::federation_not_trusted,
         {"subject 'system:serviceaccount:shop:cart'", "Create a federated identity credential"}},
        {"invalid secret (AADSTS7000215)",
         401,
         entra_error("invalid_client", 7000215, "Invalid client secret provided."),
         401,
         "invalid_client",
         reason::sp_secret_invalid,
         {"rejected the client secret", "as invalid", "AzureIdentity shop/cart-sp (secret shop/cart-sp-secret)",
          "value (not its secret ID)"}},
        {"expired secret (AADSTS7000222)",
         401,
         entra_error("invalid_client", 7000222, "The provided client secret keys for app '1111' are expired."),
         401,
         "invalid_client",
         reason::sp_secret_invalid,
         {"because it has expired"}},
        {"certificate not on the app (AADSTS700027)",
         401,
         entra_error("invalid_client", 700027, "Client assertion failed signature validation."),
         401,
         "invalid_client",
         reason::sp_certificate_invalid,
         {"Upload that certificate"}},
        {"app not found (AADSTS700016)",
         400,
         entra_error("unauthorized_client", 700016,
                     "Application with identifier '1111' was not found in the directory 'Contoso'."),
         400,
         "invalid_request",
         reason::entra_app_not_found,
         {"no application with client ID '11111111-2222-3333-4444-555555555555'",
          "tenant '72f988bf-86f1-41af-91ab-2d7cd011db47'", "Check the client ID and tenant ID of AzureIdentity"}},
        {"tenant not found (AADSTS90002)",
         400,
         entra_error("invalid_request", 90002, "Tenant '72f988bf' not found."),
         400,
         "invalid_request",
         reason::entra_tenant_not_found,
         {"no tenant '72f988bf-86f1-41af-91ab-2d7cd011db47'", "Check the tenant ID"}},
        {"assertion out of time (AADSTS700024)",
         401,
         entra_error("invalid_client", 700024,
                     "Client assertion is not within its valid time range. Current time: 2024-05-01T10:00:00Z, "
                     "assertion valid from 2024-05-01T11:00:00Z, expiry time of assertion 2024-05-01T12:00:00Z."),
         401,
         "invalid_client",
         reason::entra_assertion_invalid,
         {"outside its valid time range", "node's clock", "assertion valid from 2024-05-01T11:00:00Z"}},
        {"unknown resource (AADSTS500011)",
         400,
         entra_error("invalid_resource", 500011, "The resource principal named https://x was not found."),
         400,
         "invalid_resource",
         reason::entra_resource_not_found,
         {"does not know the resource"}},
        {"throttled",
         429,
         entra_error("temporarily_unavailable", 50196, "Too many requests."),
         429,
         "too_many_requests",
         reason::entra_throttled,
         {"throttling"}},
        {"429 without a body", 429, "", 429, "too_many_requests", reason::entra_throttled, {"retry later"}},
        {"500",
         500,
         entra_error("server_error", 50000, "There was an error issuing a token."),
         503,
         "service_unavailable",
         reason::entra_unavailable,
         {"unavailable", "HTTP 500"}},
        {"504 from a proxy",
         504,
         "<html>timeout</html>",
         503,
         "service_unavailable",
         reason::entra_unavailable,
         {"HTTP 504"}},
        {"another 4xx keeps its status and error",
         403,
         entra_error("access_denied", 53003, "Access has been blocked by Conditional Access policies."),
         403,
         "access_denied",
         reason::entra_rejected,
         {"refused the token request", "Conditional Access", "AADSTS53003"}},
        {"a 4xx that is not JSON",
         404,
         "Not Found",
         404,
         "invalid_request",
         reason::entra_rejected,
         {"refused the token request", "HTTP 404"}},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        const PodError mapped = map_entra_error(parse_entra_error(row.http_status, row.body), info());
        EXPECT_EQ(mapped.status, row.status);
        EXPECT_EQ(mapped.reason, row.reason);
        const json body = json::parse(mapped.body);
        ASSERT_TRUE(body.is_object());
        EXPECT_EQ(body.size(), 2u) << "IMDS's shape: error and error_description";
        EXPECT_EQ(body["error"], row.error);
        const std::string description = body["error_description"];
        for (const auto& fragment : row.says)
            EXPECT_NE(description.find(fragment), std::string::npos) << fragment << "\n in: " << description;
        EXPECT_EQ(description.find("Timestamp:"), std::string::npos) << "Entra's tail is cut: " << description;
    }
}

TEST(EntraTokenResponse, ResultCarriesTokenOrMappedErrorForTheCache) {
    const std::string good = R"({"token_type":"Bearer","expires_in":3599,"access_token":")" + kJwt + R"("})";
    auto ok = entra_result(200, "", good, info(), kNow);
    EXPECT_EQ(ok.upstream.status, 200);
    ASSERT_TRUE(ok.upstream.token);
    EXPECT_EQ(ok.upstream.token->resource, "https://management.azure.com/");
    EXPECT_EQ(ok.upstream.token->client_id, "11111111-2222-3333-4444-555555555555");
    EXPECT_TRUE(ok.reason.empty());

    // A 200 without a usable token: 502 (the cache retries it), the body never echoed.
    auto broken = entra_result(200, "", R"({"access_token":")" + kJwt + R"("})", info(), kNow);
    EXPECT_EQ(broken.upstream.status, 502);
    EXPECT_FALSE(broken.upstream.token);
    EXPECT_EQ(broken.reason, reason::entra_bad_response);
    EXPECT_EQ(broken.upstream.body.find("eyJ"), std::string::npos);
    EXPECT_EQ(broken.upstream.detail.find("eyJ"), std::string::npos);

    auto throttled = entra_result(429, "7", "", info(), kNow);
    EXPECT_EQ(throttled.upstream.status, 429);
    EXPECT_EQ(throttled.upstream.retry_after, 7s);
    EXPECT_EQ(throttled.reason, reason::entra_throttled);

    auto down = entra_result(503, "2", "", info(), kNow);
    EXPECT_EQ(down.upstream.status, 503);
    EXPECT_EQ(down.upstream.retry_after, 2s);

    auto refused = entra_result(400, "", entra_error("invalid_request", 70021, "No matching federated identity record"),
                                info(), kNow);
    EXPECT_EQ(refused.upstream.status, 400);
    EXPECT_FALSE(refused.upstream.retry_after);
    EXPECT_EQ(refused.reason, reason::federation_not_trusted);
    EXPECT_NE(refused.upstream.detail.find("AADSTS70021"), std::string::npos) << refused.upstream.detail;
    EXPECT_NE(refused.upstream.detail.find("trace_id=0b5c1f2e-trace"), std::string::npos) << refused.upstream.detail;
    EXPECT_NE(refused.upstream.detail.find("correlation_id=7d1e-corr"), std::string::npos) << refused.upstream.detail;
}

}  // namespace
}  // namespace podid::entra
