// The IMDS surface end to end through its pure functions: classify() then plan_request(), and render_token().
// Request shapes are those real SDKs send (docs: /work/shared/reference/imds-compat.md section 1).
#include "http/imds_handler.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

namespace podid {
namespace {

namespace http = boost::beast::http;
using Json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

const Identity kA{"11111111-aaaa-4aaa-aaaa-aaaaaaaaaaaa",
                  "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-a",
                  "aaaaaaaa-0000-4000-8000-000000000001", "id-a"};
const Identity kB{"22222222-bbbb-4bbb-bbbb-bbbbbbbbbbbb",
                  "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-b",
                  "bbbbbbbb-0000-4000-8000-000000000002", "id-b"};
// Bound to some other pod on the node.
const std::string kOtherPodsClientId = "99999999-eeee-4eee-eeee-eeeeeeeeeeee";
const Identity kResourceOnly{"", "/subscriptions/s/resourceGroups/rg/providers/x/userAssignedIdentities/id-r", "",
                             "id-r"};
const Identity kObjectOnly{"", "", "cccccccc-0000-4000-8000-000000000003", "id-o"};

const std::string kArmB_enc =
    "%2Fsubscriptions%2Fs%2FresourceGroups%2Frg%2Fproviders%2FMicrosoft.ManagedIdentity"
    "%2FuserAssignedIdentities%2Fid-b";

const std::string kMetadataRequired = "Required metadata header not specified";
const std::string kIdentityNotFound = "Identity not found";
const std::string kInvalidRequest = "Invalid request";

// Who is calling, as the session would have resolved it.
enum class Who {
    bound,
    bound_resource_only,
    bound_object_only,
    bound_empty,
    unbound,
    no_origin,
    node_identity,
    aad_unsupported,  // an AzureIdentityBinding whose identities are all of types podid cannot serve
    aad_missing,      // an AzureIdentityBinding whose AzureIdentity does not exist
};

Caller caller_for(Who who) {
    Caller caller;
    if (who != Who::no_origin) {
        caller.origin = Origin{4242, 17, "python3", "169.254.169.254:80", true};
    }
    caller.cgroup_path = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice";
    return caller;
}

Binding binding_for(Who who) {
    switch (who) {
    case Who::bound:
    case Who::no_origin: return Binding{BindingKind::static_file, {kA, kB}, "test"};
    case Who::bound_resource_only: return Binding{BindingKind::aad_pod_identity, {kResourceOnly}, "test"};
    case Who::bound_object_only: return Binding{BindingKind::workload_identity, {kObjectOnly}, "test"};
    case Who::bound_empty: return Binding{BindingKind::static_file, {}, "test"};
    case Who::unbound: return Binding{};
    case Who::node_identity: return Binding{BindingKind::node_identity, {}, "exception"};
    case Who::aad_unsupported: return Binding{BindingKind::aad_pod_identity, {}, "binding web-binding", true};
    case Who::aad_missing: return Binding{BindingKind::aad_pod_identity, {}, "binding web-binding", false};
    }
    return Binding{};
}

HttpRequest make_request(http::verb method, const std::string& target, const Headers& headers, unsigned version = 11) {
    HttpRequest req{method, target, version};
    req.set(http::field::host, "169.254.169.254");
    for (const auto& [name, value] : headers) {
        req.insert(name, value);
    }
    return req;
}

enum class Outcome { reply, fetch, forward };

struct Row {
    std::string name;
    http::verb method;
    std::string target;
    Headers headers;
    Who who;
    HandlerOptions options;
    // Expected:
    RequestKind kind;
    Outcome outcome;
    Reason reason;
    unsigned status = 0;             // reply only
    std::string description = {};    // reply only: error_description
    TokenKey key = {};               // fetch only
    std::string identity_name = {};  // fetch only: the bound identity chosen ("" for node identity)
    bool bypass_cache = false;       // fetch only
    bool host_shape = false;         // fetch only
};

void check_row(const Row& row) {
    SCOPED_TRACE(row.name + " " + row.target);
    HttpRequest req = make_request(row.method, row.target, row.headers);
    Classified what = classify(req);
    EXPECT_STREQ(to_string(what.kind), to_string(row.kind));
    Plan plan = plan_request(req, what, caller_for(row.who), binding_for(row.who), row.options);
    switch (row.outcome) {
    case Outcome::reply: {
        const Reply* reply = std::get_if<Reply>(&plan);
        ASSERT_NE(reply, nullptr);
        EXPECT_STREQ(to_string(reply->reason), to_string(row.reason));
        EXPECT_EQ(reply->response.result_int(), row.status);
        EXPECT_EQ(reply->response[http::field::content_type], "application/json; charset=utf-8");
        Json body = Json::parse(reply->response.body());
        EXPECT_EQ(body.size(), 2u);
        EXPECT_TRUE(body["error"].is_string());
        EXPECT_EQ(body["error_description"], row.description);
        break;
    }
    case Outcome::fetch: {
        const FetchToken* fetch = std::get_if<FetchToken>(&plan);
        ASSERT_NE(fetch, nullptr);
        EXPECT_STREQ(to_string(fetch->reason), to_string(row.reason));
        EXPECT_EQ(fetch->key.client_id, row.key.client_id);
        EXPECT_EQ(fetch->key.msi_res_id, row.key.msi_res_id);
        EXPECT_EQ(fetch->key.object_id, row.key.object_id);
        EXPECT_EQ(fetch->key.resource, row.key.resource);
        EXPECT_EQ(fetch->identity.name, row.identity_name);
        EXPECT_EQ(fetch->bypass_cache, row.bypass_cache);
        EXPECT_EQ(fetch->host_token_shape, row.host_shape);
        break;
    }
    case Outcome::forward: {
        const Forward* forward = std::get_if<Forward>(&plan);
        ASSERT_NE(forward, nullptr);
        EXPECT_STREQ(to_string(forward->reason), to_string(row.reason));
        break;
    }
    }
}

const Headers kMeta = {{"Metadata", "true"}};
const std::string kTok = "/metadata/identity/oauth2/token";
const std::string kQ = "?api-version=2018-02-01&resource=https://vault.azure.net";
const std::string kVault = "https://vault.azure.net";
const http::verb GET = http::verb::get;

TEST(PlanToken, SdkRequestShapes) {
    const Headers msal_node = {{"Metadata", "true"},
                               {"x-client-SKU", "msal.js.node"},
                               {"x-client-VER", "2.6.0"},
                               {"x-ms-client-request-id", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
                               {"Connection", "keep-alive"}};
    const std::vector<Row> rows = {
        {"msal-node probe: no query, no Metadata",
         GET,
         kTok,
         {{"x-client-SKU", "msal.js.node"}},
         Who::bound,
         {},
         RequestKind::probe,
         Outcome::reply,
         Reason::ok_probe,
         400,
         kMetadataRequired},
        {"msal-node token",
         GET,
         kTok + "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=" + kB.client_id,
         msal_node,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kB.client_id, "", "", kVault},
         "id-b"},
        {"azure-identity python probe: the query, no Metadata",
         GET,
         kTok + "?api-version=2018-02-01&resource=https://storage.azure.com",
         {},
         Who::bound,
         {},
         RequestKind::probe,
         Outcome::reply,
         Reason::ok_probe,
         400,
         kMetadataRequired},
        {"azure-identity python raw resource, default identity",
         GET,
         kTok + "?api-version=2018-02-01&resource=https://storage.azure.com",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kA.client_id, "", "", "https://storage.azure.com"},
         "id-a"},
        {"azure-identity python raw resource with client_id",
         GET,
         kTok + "?api-version=2018-02-01&resource=https://storage.azure.com&client_id=" + kA.client_id,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kA.client_id, "", "", "https://storage.azure.com"},
         "id-a"},
        {"az cli: resource first",
         GET,
         kTok +
             "?resource=https%3A%2F%2Fmanagement.core.windows.net%2F&api-version=2018-02-01&client_id=" + kB.client_id,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kB.client_id, "", "", "https://management.core.windows.net/"},
         "id-b"},
        {"go azidentity probe",
         GET,
         kTok,
         {},
         Who::bound,
         {},
         RequestKind::probe,
         Outcome::reply,
         Reason::ok_probe,
         400,
         kMetadataRequired},
        {"go azidentity msi_res_id: asked upstream by client_id",
         GET,
         kTok + "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&msi_res_id=" + kArmB_enc,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kB.client_id, "", "", kVault},
         "id-b"},
        {"mi_res_id alias",
         GET,
         kTok + kQ + "&mi_res_id=" + kArmB_enc,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kB.client_id, "", "", kVault},
         "id-b"},
        {"object_id",
         GET,
         kTok + kQ + "&object_id=" + kB.object_id,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kB.client_id, "", "", kVault},
         "id-b"},
        {"client_id in upper case",
         GET,
         kTok + kQ + "&client_id=22222222-BBBB-4BBB-BBBB-BBBBBBBBBBBB",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kB.client_id, "", "", kVault},
         "id-b"},
        {"NMI-era client: resource first, no selector",
         GET,
         kTok + "?resource=https%3A%2F%2Fvault.azure.net%2F&api-version=2018-02-01",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kA.client_id, "", "", "https://vault.azure.net/"},
         "id-a"},
        {"Metadata header name in any case",
         GET,
         kTok + kQ,
         {{"METADATA", "true"}},
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kA.client_id, "", "", kVault},
         "id-a"},
        {"extras accepted, bypass_cache honoured",
         GET,
         kTok + kQ + "&bypass_cache=true&authority=x&token_sha256_to_refresh=abc&xms_cc=cp1",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kA.client_id, "", "", kVault},
         "id-a",
         true},
        {"identity known only by resource id",
         GET,
         kTok + kQ,
         kMeta,
         Who::bound_resource_only,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {"", kResourceOnly.resource_id, "", kVault},
         "id-r"},
        {"identity known only by object id",
         GET,
         kTok + kQ,
         kMeta,
         Who::bound_object_only,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {"", "", kObjectOnly.object_id, kVault},
         "id-o"},
    };
    for (const Row& row : rows) {
        check_row(row);
    }
}

TEST(PlanToken, RefusedRequests) {
    const std::string dup_error = "Duplicate query parameter 'resource'";
    const std::string two_selectors = "Only one of client_id, object_id and msi_res_id may be specified";
    const std::vector<Row> rows = {
        {"duplicate resource",
         GET,
         kTok + kQ + "&resource=https://storage.azure.com",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         dup_error},
        {"duplicate in another case",
         GET,
         kTok + kQ + "&client_id=a&CLIENT_ID=a",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         "Duplicate query parameter 'CLIENT_ID'"},
        {"client_id and msi_res_id",
         GET,
         kTok + kQ + "&client_id=" + kA.client_id + "&msi_res_id=" + kArmB_enc,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         two_selectors},
        {"msi_res_id and mi_res_id",
         GET,
         kTok + kQ + "&msi_res_id=" + kArmB_enc + "&mi_res_id=" + kArmB_enc,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         two_selectors},
        {"missing resource",
         GET,
         kTok + "?api-version=2018-02-01",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         "Required query variable 'resource' is missing"},
        {"empty resource",
         GET,
         kTok + "?api-version=2018-02-01&resource=",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         "Required query variable 'resource' is missing"},
        {"missing api-version",
         GET,
         kTok + "?resource=https://vault.azure.net",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         "Required query variable 'api-version' is missing"},
        {"malformed escape",
         GET,
         kTok + kQ + "&client_id=%zz",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         "Malformed percent-encoding in query"},
        {"Metadata: True",
         GET,
         kTok + kQ,
         {{"Metadata", "True"}},
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_missing_metadata,
         400,
         kMetadataRequired},
        {"Metadata: false",
         GET,
         kTok + kQ,
         {{"Metadata", "false"}},
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_missing_metadata,
         400,
         kMetadataRequired},
        {"Metadata empty",
         GET,
         kTok + kQ,
         {{"Metadata", ""}},
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_missing_metadata,
         400,
         kMetadataRequired},
        {"Metadata twice",
         GET,
         kTok + kQ,
         {{"Metadata", "true"}, {"Metadata", "true"}},
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_missing_metadata,
         400,
         kMetadataRequired},
        {"X-Forwarded-For",
         GET,
         kTok + kQ,
         {{"Metadata", "true"}, {"X-Forwarded-For", "10.0.0.9"}},
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_forwarded_for,
         400,
         "X-Forwarded-For header is not allowed"},
        {"POST",
         http::verb::post,
         kTok + kQ,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_method,
         405,
         "Method not allowed"},
        {"HEAD",
         http::verb::head,
         kTok + kQ,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_method,
         405,
         "Method not allowed"},
        {"other pod's client_id",
         GET,
         kTok + kQ + "&client_id=" + kOtherPodsClientId,
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_identity_not_bound,
         400,
         kIdentityNotFound},
        {"other pod's msi_res_id",
         GET,
         kTok + kQ + "&msi_res_id=%2Fsubscriptions%2Fs%2Fother",
         kMeta,
         Who::bound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_identity_not_bound,
         400,
         kIdentityNotFound},
        {"no origin",
         GET,
         kTok + kQ,
         kMeta,
         Who::no_origin,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_no_origin,
         400,
         kIdentityNotFound},
        {"no origin, own client_id",
         GET,
         kTok + kQ + "&client_id=" + kA.client_id,
         kMeta,
         Who::no_origin,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_no_origin,
         400,
         kIdentityNotFound},
        {"no binding",
         GET,
         kTok + kQ,
         kMeta,
         Who::unbound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_no_binding,
         400,
         kIdentityNotFound},
        {"no binding, with client_id",
         GET,
         kTok + kQ + "&client_id=" + kA.client_id,
         kMeta,
         Who::unbound,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_no_binding,
         400,
         kIdentityNotFound},
        {"binding without identities",
         GET,
         kTok + kQ,
         kMeta,
         Who::bound_empty,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_no_binding,
         400,
         kIdentityNotFound},
        {"probe from an unbound pod is still a probe",
         GET,
         kTok,
         {},
         Who::unbound,
         {},
         RequestKind::probe,
         Outcome::reply,
         Reason::ok_probe,
         400,
         kMetadataRequired},
        {"probe without origin is still a probe",
         GET,
         kTok,
         {},
         Who::no_origin,
         {},
         RequestKind::probe,
         Outcome::reply,
         Reason::ok_probe,
         400,
         kMetadataRequired},
    };
    for (const Row& row : rows) {
        check_row(row);
    }
}

TEST(PlanToken, NodeIdentityPassthrough) {
    const std::vector<Row> rows = {
        {"no selector: the node's default",
         GET,
         kTok + kQ,
         kMeta,
         Who::node_identity,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_node_identity,
         0,
         "",
         {"", "", "", kVault},
         ""},
        {"client_id as given",
         GET,
         kTok + kQ + "&client_id=" + kOtherPodsClientId,
         kMeta,
         Who::node_identity,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_node_identity,
         0,
         "",
         {kOtherPodsClientId, "", "", kVault},
         ""},
        {"mi_res_id as msi_res_id",
         GET,
         kTok + kQ + "&mi_res_id=/subscriptions/s/x",
         kMeta,
         Who::node_identity,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_node_identity,
         0,
         "",
         {"", "/subscriptions/s/x", "", kVault},
         ""},
        {"object_id as given, bypass_cache",
         GET,
         kTok + kQ + "&object_id=o-1&bypass_cache=true",
         kMeta,
         Who::node_identity,
         {},
         RequestKind::token,
         Outcome::fetch,
         Reason::ok_node_identity,
         0,
         "",
         {"", "", "o-1", kVault},
         "",
         true},
        {"still needs an origin",
         GET,
         kTok + kQ,
         kMeta,
         Who::no_origin,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_no_origin,
         400,
         kIdentityNotFound},
    };
    for (const Row& row : rows) {
        check_row(row);
    }
}

TEST(PlanToken, MethodNotAllowedNamesGet) {
    HttpRequest req = make_request(http::verb::post, kTok + kQ, kMeta);
    Plan plan = plan_request(req, classify(req), caller_for(Who::bound), binding_for(Who::bound), {});
    ASSERT_TRUE(std::holds_alternative<Reply>(plan));
    EXPECT_EQ(std::get<Reply>(plan).response[http::field::allow], "GET");
}

TEST(Classify, ReportsResourceAndRequestedIdentity) {
    const std::string query = "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&mi_res_id=" + kArmB_enc;
    HttpRequest req = make_request(GET, kTok + query, kMeta);
    Classified what = classify(req);
    EXPECT_EQ(what.kind, RequestKind::token);
    EXPECT_EQ(what.path, kTok);
    EXPECT_EQ(what.resource, kVault);
    EXPECT_EQ(what.requested_identity, "msi_res_id=" + kB.resource_id);

    Classified bad = classify(make_request(GET, kTok + "?resource=a&resource=b", kMeta));
    EXPECT_EQ(bad.resource, "");
    EXPECT_EQ(bad.requested_identity, "");
}

// Every spelling IMDS might read as the identity endpoint is either served as the token path (with the
// caller's own identity) or refused; none is ever forwarded (CVE-2022-23551).
enum class Verdict { token, rejected, forward, unknown };

const char* verdict_name(Verdict v) {
    switch (v) {
    case Verdict::token: return "token";
    case Verdict::rejected: return "rejected";
    case Verdict::forward: return "forward";
    case Verdict::unknown: return "unknown";
    }
    return "?";
}

Verdict verdict_of(const Plan& plan) {
    if (std::holds_alternative<Forward>(plan)) {
        return Verdict::forward;
    }
    if (const FetchToken* fetch = std::get_if<FetchToken>(&plan)) {
        // Served only as the caller's own default identity.
        EXPECT_EQ(fetch->identity.name, "id-a");
        EXPECT_EQ(fetch->reason, Reason::ok_bound_identity);
        return Verdict::token;
    }
    const Reply& reply = std::get<Reply>(plan);
    EXPECT_EQ(reply.reason, Reason::deny_path);
    Json body = Json::parse(reply.response.body());
    if (reply.response.result_int() == 400) {
        EXPECT_EQ(body, Json::parse(R"({"error":"invalid_request","error_description":"Invalid request"})"));
        return Verdict::rejected;
    }
    EXPECT_EQ(reply.response.result_int(), 404u);
    return Verdict::unknown;
}

TEST(PathHardening, NoSpellingOfTheIdentityPathIsForwarded) {
    const std::vector<std::pair<std::string, Verdict>> rows = {
        {"/metadata/identity/oauth2/token", Verdict::token},
        {"/Metadata/identity/oauth2/token", Verdict::token},
        {"/METADATA/identity/oauth2/token", Verdict::token},
        {"/metadata/identity/oauth2/token/", Verdict::token},
        {"/metadata/identity\\oauth2\\token", Verdict::token},
        {"/metadata/identity\\oauth2\\token/", Verdict::token},  // the CVE-2022-23551 spelling
        {"/metadata\\identity\\oauth2\\token", Verdict::token},
        {"//metadata/identity/oauth2/token", Verdict::token},
        {"/metadata//identity/oauth2/token", Verdict::token},
        {"/metadata/identity/oauth2//token", Verdict::token},
        {"/metadata/identity%2Foauth2%2Ftoken", Verdict::token},
        {"/metadata/identity%2foauth2%2ftoken", Verdict::token},
        {"/metadata/identity%5Coauth2%5Ctoken", Verdict::token},
        {"/metadata/identity%252Foauth2%252Ftoken", Verdict::token},
        {"/metadata/%69dentity/oauth2/%74oken", Verdict::token},
        {"/%6Detadata/identity/oauth2/token", Verdict::token},
        {"/%2Fmetadata/identity/oauth2/token", Verdict::token},
        {"/metadata/./identity/oauth2/token", Verdict::token},
        {"/metadata/%2e/identity/oauth2/token", Verdict::token},
        {"/metadata/instance/../identity/oauth2/token", Verdict::token},
        {"/metadata/instance/%2e%2e/identity/oauth2/token", Verdict::token},
        {"/metadata/identity/oauth2/token/.", Verdict::token},
        {"/metadata/identity/oauth2/token%2F", Verdict::token},
        {"/x/../metadata/identity/oauth2/token", Verdict::token},
        {"/metadata/Identity/oauth2/token", Verdict::rejected},
        {"/metadata/identity/OAuth2/token", Verdict::rejected},
        {"/metadata/identity/oauth2/TOKEN", Verdict::rejected},
        {"/metadata/IDENTITY\\OAUTH2\\TOKEN", Verdict::rejected},
        {"/metadata/identity/oauth2/token2", Verdict::rejected},
        {"/metadata/identity/oauth2/token;x", Verdict::rejected},
        {"/metadata/identity/oauth2/token%23", Verdict::rejected},
        {"/metadata/identity/oauth2/token%00", Verdict::rejected},
        {"/metadata/identity/oauth2/token/..", Verdict::rejected},
        {"/metadata/identity/foo/oauth2/token", Verdict::rejected},
        {"/metadata/identity/oauth2/x/token", Verdict::rejected},
        {"/metadata/identityoauth2token", Verdict::rejected},
        {"/metadata/identity", Verdict::rejected},
        {"/metadata/identity/", Verdict::rejected},
        {"/metadata/identity%zz/oauth2/token", Verdict::rejected},
        {"/metadata/%u0069dentity/oauth2/token", Verdict::rejected},  // IIS-style %u escape
        {"/metadata/instance/identity", Verdict::rejected},
        {"/metadata/instance%2F..%2Fidentity", Verdict::rejected},
        {"/metadata/instance/compute%3F/../identity", Verdict::rejected},
        {"/metadata/instance/./compute", Verdict::rejected},
        {"/metadata/instance%2Fcompute", Verdict::rejected},
        {"/metadata/instance", Verdict::forward},
        {"/metadata/instance/compute", Verdict::forward},
        {"/Metadata/instance/compute/location", Verdict::forward},
        {"/metadata/versions", Verdict::forward},
        {"/metadata/attested/document", Verdict::forward},
        {"/metadata/identity/info", Verdict::unknown},
        {"/identity/oauth2/token", Verdict::unknown},
        {"/x/metadata/identity/oauth2/token", Verdict::unknown},
        {"/metadata%00/identity/oauth2/token", Verdict::unknown},
        {"/", Verdict::unknown},
    };
    const std::regex nmi_regex("/metadata/identity(.*?)oauth2(.*?)token", std::regex::icase);
    for (const auto& [path, want] : rows) {
        SCOPED_TRACE(path);
        HttpRequest req = make_request(GET, path + kQ, kMeta);
        Classified what = classify(req);
        Verdict got = verdict_of(plan_request(req, what, caller_for(Who::bound), binding_for(Who::bound), {}));
        EXPECT_STREQ(verdict_name(got), verdict_name(want));
        if (got == Verdict::forward) {
            EXPECT_FALSE(std::regex_search(what.path, nmi_regex));
            EXPECT_EQ(std::string(what.path).find("identity"), std::string::npos);
        }
    }
}

TEST(PathHardening, OddSpellingIsRefusedEvenAsAProbe) {
    HttpRequest req = make_request(GET, "/metadata/Identity/oauth2/token", {});
    Plan plan = plan_request(req, classify(req), caller_for(Who::bound), binding_for(Who::bound), {});
    ASSERT_TRUE(std::holds_alternative<Reply>(plan));
    EXPECT_EQ(std::get<Reply>(plan).reason, Reason::deny_path);
    EXPECT_EQ(std::get<Reply>(plan).response.result_int(), 400u);
}

TEST(PlanForward, MetadataPaths) {
    const HandlerOptions block{true, false};
    const std::vector<Row> rows = {
        {"instance metadata",
         GET,
         "/metadata/instance?api-version=2021-02-01",
         kMeta,
         Who::unbound,
         {},
         RequestKind::instance_metadata,
         Outcome::forward,
         Reason::ok_forwarded},
        {"instance leaf, text",
         GET,
         "/metadata/instance/compute/location?api-version=2021-02-01&format=text",
         kMeta,
         Who::no_origin,
         {},
         RequestKind::instance_metadata,
         Outcome::forward,
         Reason::ok_forwarded},
        {"versions",
         GET,
         "/metadata/versions",
         kMeta,
         Who::bound,
         {},
         RequestKind::other_metadata,
         Outcome::forward,
         Reason::ok_forwarded},
        {"scheduled events acknowledged by POST",
         http::verb::post,
         "/metadata/scheduledevents?api-version=2020-07-01",
         kMeta,
         Who::bound,
         {},
         RequestKind::other_metadata,
         Outcome::forward,
         Reason::ok_forwarded},
        {"identity word in the query only",
         GET,
         "/metadata/attested/document?x=identity",
         kMeta,
         Who::bound,
         {},
         RequestKind::other_metadata,
         Outcome::forward,
         Reason::ok_forwarded},
        {"blocked instance", GET, "/metadata/instance?api-version=2021-02-01", kMeta, Who::bound, block,
         RequestKind::instance_metadata, Outcome::reply, Reason::deny_instance_blocked, 403,
         "Request blocked by podid"},
        {"blocked instance in upper case", GET, "/METADATA/INSTANCE/compute", kMeta, Who::bound, block,
         RequestKind::instance_metadata, Outcome::reply, Reason::deny_instance_blocked, 403,
         "Request blocked by podid"},
        {"blocked even without Metadata",
         GET,
         "/metadata/instance",
         {},
         Who::bound,
         block,
         RequestKind::instance_metadata,
         Outcome::reply,
         Reason::deny_instance_blocked,
         403,
         "Request blocked by podid"},
        {"other metadata not blocked", GET, "/metadata/versions", kMeta, Who::bound, block, RequestKind::other_metadata,
         Outcome::forward, Reason::ok_forwarded},
        {"instance without Metadata",
         GET,
         "/metadata/instance",
         {},
         Who::bound,
         {},
         RequestKind::instance_metadata,
         Outcome::reply,
         Reason::deny_missing_metadata,
         400,
         kMetadataRequired},
        {"instance with Metadata: TRUE",
         GET,
         "/metadata/instance",
         {{"Metadata", "TRUE"}},
         Who::bound,
         {},
         RequestKind::instance_metadata,
         Outcome::reply,
         Reason::deny_missing_metadata,
         400,
         kMetadataRequired},
        {"instance with X-Forwarded-For",
         GET,
         "/metadata/instance",
         {{"Metadata", "true"}, {"X-Forwarded-For", "1.2.3.4"}},
         Who::bound,
         {},
         RequestKind::instance_metadata,
         Outcome::reply,
         Reason::deny_forwarded_for,
         400,
         "X-Forwarded-For header is not allowed"},
        {"unknown path",
         GET,
         "/latest/meta-data/",
         kMeta,
         Who::bound,
         {},
         RequestKind::unknown,
         Outcome::reply,
         Reason::deny_path,
         404,
         "Not found"},
        {"identity info is not forwarded",
         GET,
         "/metadata/identity/info",
         kMeta,
         Who::bound,
         {},
         RequestKind::unknown,
         Outcome::reply,
         Reason::deny_path,
         404,
         "Not found"},
    };
    for (const Row& row : rows) {
        check_row(row);
    }
}

TEST(PlanHealth, AnsweredLocally) {
    for (const char* path : {"/healthz", "/readyz"}) {
        HttpRequest req = make_request(GET, path, {});
        Classified what = classify(req);
        EXPECT_EQ(what.kind, RequestKind::health) << path;
        Plan plan = plan_request(req, what, caller_for(Who::no_origin), Binding{}, {});
        ASSERT_TRUE(std::holds_alternative<Reply>(plan)) << path;
        EXPECT_EQ(std::get<Reply>(plan).response.result_int(), 200u) << path;
        EXPECT_FALSE(is_denial(std::get<Reply>(plan).reason)) << path;
    }
}

TEST(PlanHostToken, CsiDriverRequests) {
    // An authorised caller on the loopback listener (AccessDecidedByTheAuthority has the other answers).
    const HandlerOptions loopback{false, true, HostTokenAccess::allowed};
    const Headers pod = {{"podns", "default"}, {"podname", "web-0"}};
    const std::vector<Row> rows = {
        {"csi provider: trailing slash, raw resource",
         GET,
         "/host/token/?resource=https://vault.azure.net",
         pod,
         Who::bound,
         loopback,
         RequestKind::host_token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kA.client_id, "", "", kVault},
         "id-a",
         false,
         true},
        {"without trailing slash",
         GET,
         "/host/token?resource=https%3A%2F%2Fvault.azure.net",
         pod,
         Who::bound,
         loopback,
         RequestKind::host_token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kA.client_id, "", "", kVault},
         "id-a",
         false,
         true},
        {"selector ignored: the pod's default identity",
         GET,
         "/host/token/?resource=https://vault.azure.net&client_id=" + kB.client_id,
         pod,
         Who::bound,
         loopback,
         RequestKind::host_token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kA.client_id, "", "", kVault},
         "id-a",
         false,
         true},
        // An excepted pod reaches IMDS as the node itself; naming it never hands out the node's identity.
        {"excepted pod: never the node's identity", GET, "/host/token/?resource=https://vault.azure.net", pod,
         Who::node_identity, loopback, RequestKind::host_token, Outcome::reply, Reason::deny_host_token_pod, 404,
         kIdentityNotFound},
        {"not on the loopback listener",
         GET,
         "/host/token/?resource=https://vault.azure.net",
         pod,
         Who::bound,
         {},
         RequestKind::host_token,
         Outcome::reply,
         Reason::deny_path,
         404,
         "Not found"},
        {"missing podns",
         GET,
         "/host/token/?resource=https://vault.azure.net",
         {{"podname", "web-0"}},
         Who::bound,
         loopback,
         RequestKind::host_token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         "Required headers podns and podname not specified"},
        {"missing podname",
         GET,
         "/host/token/?resource=https://vault.azure.net",
         {{"podns", "default"}},
         Who::bound,
         loopback,
         RequestKind::host_token,
         Outcome::reply,
         Reason::deny_bad_request,
         400,
         "Required headers podns and podname not specified"},
        {"missing resource", GET, "/host/token/", pod, Who::bound, loopback, RequestKind::host_token, Outcome::reply,
         Reason::deny_bad_request, 400, "Required query variable 'resource' is missing"},
        {"duplicate resource", GET, "/host/token/?resource=a&resource=b", pod, Who::bound, loopback,
         RequestKind::host_token, Outcome::reply, Reason::deny_bad_request, 400,
         "Duplicate query parameter 'resource'"},
        {"pod without binding", GET, "/host/token/?resource=https://vault.azure.net", pod, Who::unbound, loopback,
         RequestKind::host_token, Outcome::reply, Reason::deny_host_token_pod, 404, kIdentityNotFound},
        {"pod binding without identities", GET, "/host/token/?resource=https://vault.azure.net", pod, Who::bound_empty,
         loopback, RequestKind::host_token, Outcome::reply, Reason::deny_host_token_pod, 404, kIdentityNotFound},
        {"POST", http::verb::post, "/host/token/?resource=https://vault.azure.net", pod, Who::bound, loopback,
         RequestKind::host_token, Outcome::reply, Reason::deny_method, 405, "Method not allowed"},
    };
    for (const Row& row : rows) {
        check_row(row);
    }
}

// The /host/token caller check is the authority's (policy/host_token_authority.h); plan_request turns its answer
// into the response. Allowed callers get exactly the CsiDriverRequests answers.
TEST(PlanHostToken, AccessDecidedByTheAuthority) {
    const HandlerOptions not_served{false, true, HostTokenAccess::not_served};
    const HandlerOptions refused{false, true, HostTokenAccess::refused};
    const HandlerOptions allowed{false, true, HostTokenAccess::allowed};
    const Headers pod = {{"podns", "default"}, {"podname", "web-0"}};
    const std::string target = "/host/token/?resource=https://vault.azure.net";
    const std::vector<Row> rows = {
        {"standalone mode: no authority", GET, target, pod, Who::bound, not_served, RequestKind::host_token,
         Outcome::reply, Reason::deny_path, 404, "/host/token is served only in Kubernetes mode"},
        {"caller refused", GET, target, pod, Who::bound, refused, RequestKind::host_token, Outcome::reply,
         Reason::deny_host_token_caller, 403, "caller is not allowed to request tokens for other pods"},
        {"refused before the request is looked at",
         http::verb::post,
         "/host/token/",
         {},
         Who::unbound,
         refused,
         RequestKind::host_token,
         Outcome::reply,
         Reason::deny_host_token_caller,
         403,
         "caller is not allowed to request tokens for other pods"},
        {"caller allowed",
         GET,
         target,
         pod,
         Who::bound,
         allowed,
         RequestKind::host_token,
         Outcome::fetch,
         Reason::ok_bound_identity,
         0,
         "",
         {kA.client_id, "", "", kVault},
         "id-a",
         false,
         true},
        {"allowed, pod without binding", GET, target, pod, Who::unbound, allowed, RequestKind::host_token,
         Outcome::reply, Reason::deny_host_token_pod, 404, kIdentityNotFound},
        {"allowed, but not on the loopback listener", GET, target, pod, Who::bound,
         HandlerOptions{false, false, HostTokenAccess::allowed}, RequestKind::host_token, Outcome::reply,
         Reason::deny_path, 404, "Not found"},
    };
    for (const Row& row : rows) {
        check_row(row);
    }
}

// A pod selected by an AzureIdentityBinding that leaves no identity to serve: the client sees IMDS's "Identity not
// found", the audit log says why (an identity podid cannot serve, or one that does not exist).
TEST(PlanToken, AadBindingWithoutAnIdentity) {
    const std::vector<Row> rows = {
        {"unsupported identity",
         GET,
         kTok + kQ,
         kMeta,
         Who::aad_unsupported,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_unsupported_identity,
         400,
         kIdentityNotFound},
        {"unsupported identity, named client_id",
         GET,
         kTok + kQ + "&client_id=" + kA.client_id,
         kMeta,
         Who::aad_unsupported,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_unsupported_identity,
         400,
         kIdentityNotFound},
        {"missing AzureIdentity",
         GET,
         kTok + kQ,
         kMeta,
         Who::aad_missing,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_identity_missing,
         400,
         kIdentityNotFound},
        {"a probe is still a probe",
         GET,
         kTok + kQ,
         {},
         Who::aad_unsupported,
         {},
         RequestKind::probe,
         Outcome::reply,
         Reason::ok_probe,
         400,
         kMetadataRequired},
        // Not the same as a static entry without identities (a configuration that names nobody).
        {"empty static entry",
         GET,
         kTok + kQ,
         kMeta,
         Who::bound_empty,
         {},
         RequestKind::token,
         Outcome::reply,
         Reason::deny_no_binding,
         400,
         kIdentityNotFound},
    };
    for (const Row& row : rows) {
        check_row(row);
    }
}

// What the session must look up before plan_request can decide (lookups_for).
TEST(Lookups, WhatEachRequestNeeds) {
    struct LookupRow {
        const char* name;
        http::verb method;
        std::string target;
        Headers headers;
        bool loopback_listener;
        RequestKind kind;
        bool resolve_caller;
        bool may_wait;
        BindingNeeded binding;
    };
    const Headers pod = {{"podns", "default"}, {"podname", "web-0"}};
    const std::vector<LookupRow> rows = {
        {"selfcheck: the origin record is the answer",
         GET,
         "/_podid/selfcheck",
         {},
         false,
         RequestKind::selfcheck,
         false,
         false,
         BindingNeeded::none},
        {"selfcheck on loopback", GET, "/_podid/selfcheck", kMeta, true, RequestKind::selfcheck, false, false,
         BindingNeeded::none},
        {"token: waits for the pod, needs the caller's binding", GET, kTok + kQ, kMeta, false, RequestKind::token, true,
         true, BindingNeeded::caller},
        {"token on loopback too", GET, kTok + kQ, kMeta, true, RequestKind::token, true, true, BindingNeeded::caller},
        {"token with a trailing slash is the token path", GET, kTok + "/" + kQ, kMeta, false, RequestKind::token, true,
         true, BindingNeeded::caller},
        {"token, POST: still an identity request", http::verb::post, kTok + kQ, kMeta, false, RequestKind::token, true,
         true, BindingNeeded::caller},
        {"probe: never waits", GET, kTok + kQ, {}, false, RequestKind::probe, true, false, BindingNeeded::none},
        {"Metadata: false never waits",
         GET,
         kTok + kQ,
         {{"Metadata", "false"}},
         false,
         RequestKind::token,
         true,
         false,
         BindingNeeded::none},
        {"odd spelling of the token path", GET, "/metadata/Identity/oauth2/token" + kQ, kMeta, false,
         RequestKind::token, true, false, BindingNeeded::none},
        {"host token on loopback: waits, needs the named pod", GET, "/host/token/?resource=r", pod, true,
         RequestKind::host_token, true, true, BindingNeeded::named_pod},
        {"host token on loopback without pod headers",
         GET,
         "/host/token/?resource=r",
         {},
         true,
         RequestKind::host_token,
         true,
         true,
         BindingNeeded::named_pod},
        {"host token on the node listener: nothing to look up", GET, "/host/token/?resource=r", pod, false,
         RequestKind::host_token, true, false, BindingNeeded::none},
        {"instance metadata", GET, "/metadata/instance?api-version=2021-02-01", kMeta, false,
         RequestKind::instance_metadata, true, false, BindingNeeded::none},
        {"other metadata", GET, "/metadata/versions", kMeta, false, RequestKind::other_metadata, true, false,
         BindingNeeded::none},
        {"health", GET, "/healthz", {}, false, RequestKind::health, true, false, BindingNeeded::none},
        {"unknown path", GET, "/nothing", kMeta, false, RequestKind::unknown, true, false, BindingNeeded::none},
    };
    for (const LookupRow& row : rows) {
        SCOPED_TRACE(std::string(row.name) + " " + row.target);
        HttpRequest req = make_request(row.method, row.target, row.headers);
        Classified what = classify(req);
        EXPECT_STREQ(to_string(what.kind), to_string(row.kind));
        Lookups got = lookups_for(req, what, row.loopback_listener);
        EXPECT_EQ(got.resolve_caller, row.resolve_caller);
        EXPECT_EQ(got.may_wait, row.may_wait);
        EXPECT_EQ(static_cast<int>(got.binding), static_cast<int>(row.binding));
    }
}

// The agent's own readiness self-check: answered with the cgroup the kernel recorded, whatever the binding.
TEST(PlanSelfCheck, AnswersWithTheRecordedCgroup) {
    struct SelfCheckRow {
        const char* name;
        std::string target;
        Who who;
        RequestKind kind;
        unsigned status;
        std::string body;  // exact for the self-check; a fragment otherwise
    };
    const std::vector<SelfCheckRow> rows = {
        {"recorded cgroup", "/_podid/selfcheck", Who::unbound, RequestKind::selfcheck, 200,
         "podid-selfcheck cgroup=4242"},
        {"bindings do not matter", "/_podid/selfcheck", Who::bound, RequestKind::selfcheck, 200,
         "podid-selfcheck cgroup=4242"},
        {"no origin record: cgroup 0", "/_podid/selfcheck", Who::no_origin, RequestKind::selfcheck, 200,
         "podid-selfcheck cgroup=0"},
        {"only the exact target", "/_podid/selfcheck?x=1", Who::unbound, RequestKind::unknown, 404, "Not found"},
        {"no other spelling", "/_podid/selfcheck/", Who::unbound, RequestKind::unknown, 404, "Not found"},
    };
    for (const SelfCheckRow& row : rows) {
        SCOPED_TRACE(std::string(row.name) + " " + row.target);
        HttpRequest req = make_request(GET, row.target, {});
        Classified what = classify(req);
        EXPECT_STREQ(to_string(what.kind), to_string(row.kind));
        Plan plan = plan_request(req, what, caller_for(row.who), binding_for(row.who), {});
        const Reply* reply = std::get_if<Reply>(&plan);
        ASSERT_NE(reply, nullptr);
        EXPECT_EQ(reply->response.result_int(), row.status);
        if (row.kind == RequestKind::selfcheck) {
            EXPECT_EQ(reply->response.body(), row.body);
            EXPECT_EQ(reply->response[http::field::content_type], "text/plain");
            EXPECT_EQ(reply->reason, Reason::ok_probe);
        } else {
            EXPECT_NE(reply->response.body().find(row.body), std::string::npos) << reply->response.body();
            EXPECT_EQ(reply->reason, Reason::deny_path);
        }
    }
}

// ---- responses ----

FetchToken plan_for(const Identity& identity, bool host_shape = false) {
    return FetchToken{TokenKey{identity.client_id, "", "", kVault}, identity, false, host_shape,
                      Reason::ok_bound_identity};
}

TokenOutcome served(Token token) {
    TokenOutcome outcome;
    outcome.token = std::make_shared<const Token>(std::move(token));
    return outcome;
}

Token sample_token() {
    Token t;
    t.access_token = "eyJ0eXAiOiJKV1QifQ.eyJ0aWQiOiJ0In0.c2ln";
    t.client_id = kA.client_id;
    t.resource = kVault;
    t.expires_on = 1605238724;
    t.not_before = 1605152024;
    t.ext_expires_in = 86399;
    return t;
}

void expect_common_headers(const HttpRequest& req, const HttpResponse& res) {
    EXPECT_EQ(res[http::field::server], "podid");
    EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
    EXPECT_EQ(res.keep_alive(), req.keep_alive());
    EXPECT_EQ(res.version(), req.version());
}

TEST(RenderToken, ImdsShapeWithEveryFieldAString) {
    HttpRequest req = make_request(GET, kTok + kQ, kMeta);
    const int64_t now = 1605152338;
    TokenOutcome outcome = served(sample_token());
    HttpResponse res = render_token(req, plan_for(kA), outcome, now);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res[http::field::content_type], "application/json; charset=utf-8");
    expect_common_headers(req, res);
    Json body = Json::parse(res.body());
    Json want = {
        {"access_token", outcome.token->access_token},
        {"client_id", kA.client_id},
        {"expires_in", std::to_string(1605238724 - now)},
        {"expires_on", "1605238724"},
        {"ext_expires_in", "86399"},
        {"not_before", "1605152024"},
        {"resource", kVault},
        {"token_type", "Bearer"},
    };
    EXPECT_EQ(body, want);
}

TEST(RenderToken, ExpiresInRecomputedAndNeverNegative) {
    HttpRequest req = make_request(GET, kTok + kQ, kMeta);
    Token t = sample_token();
    const std::vector<std::pair<int64_t, std::string>> rows = {
        {t.expires_on - 3600, "3600"}, {t.expires_on, "0"}, {t.expires_on + 10, "0"}, {t.expires_on - 1, "1"}};
    for (const auto& [now, want] : rows) {
        Json body = Json::parse(render_token(req, plan_for(kA), served(t), now).body());
        EXPECT_EQ(body["expires_in"], want) << now;
    }
}

TEST(RenderToken, FillsResourceAndClientIdWhenUpstreamLeftThemOut) {
    HttpRequest req = make_request(GET, kTok + kQ, kMeta);
    Token t = sample_token();
    t.client_id.clear();
    t.resource.clear();
    Json body = Json::parse(render_token(req, plan_for(kB), served(t), 0).body());
    EXPECT_EQ(body["client_id"], kB.client_id);
    EXPECT_EQ(body["resource"], kVault);
}

TEST(RenderToken, HostTokenShape) {
    HttpRequest req = make_request(GET, "/host/token/?resource=https://vault.azure.net",
                                   {{"podns", "default"}, {"podname", "web-0"}});
    TokenOutcome outcome = served(sample_token());
    HttpResponse res = render_token(req, plan_for(kA, true), outcome, 1605152338);
    EXPECT_EQ(res.result_int(), 200u);
    expect_common_headers(req, res);
    Json body = Json::parse(res.body());
    ASSERT_EQ(body.size(), 2u);
    EXPECT_EQ(body["clientid"], kA.client_id);
    EXPECT_EQ(body["token"]["access_token"], outcome.token->access_token);
    EXPECT_EQ(body["token"]["expires_on"], "1605238724");
    EXPECT_EQ(body["token"]["expires_in"], "86386");
    EXPECT_EQ(body["token"]["resource"], kVault);
}

struct FailureRow {
    int status;
    std::string error_body;
    unsigned want_status;
    std::string want_error;  // when error_body is empty
};

TEST(RenderToken, Failures) {
    HttpRequest req = make_request(GET, kTok + kQ, kMeta);
    const std::string upstream = R"({"error":"invalid_request","error_description":"Identity not found"})";
    const std::vector<FailureRow> rows = {
        {400, upstream, 400, ""},
        {429, "", 429, "too_many_requests"},
        {503, "", 503, "server_error"},
        {504, "", 504, "server_error"},
        {404, "", 404, "invalid_request"},
        {200, "", 500, "server_error"},  // no token but "success": still a failure to the client
    };
    for (const FailureRow& row : rows) {
        TokenOutcome outcome;
        outcome.status = row.status;
        outcome.error_body = row.error_body;
        HttpResponse res = render_token(req, plan_for(kA), outcome, 0);
        EXPECT_EQ(res.result_int(), row.want_status) << row.status;
        expect_common_headers(req, res);
        Json body = Json::parse(res.body());
        if (!row.error_body.empty()) {
            EXPECT_EQ(res.body(), row.error_body);
        } else {
            EXPECT_EQ(body["error"], row.want_error) << row.status;
            EXPECT_TRUE(body["error_description"].is_string());
        }
    }
}

TEST(Responses, KeepAliveFollowsTheRequest) {
    HttpRequest old_close = make_request(GET, kTok, {}, 10);
    HttpRequest old_keep = make_request(GET, kTok, {{"Connection", "keep-alive"}}, 10);
    HttpRequest new_close = make_request(GET, kTok, {{"Connection", "close"}}, 11);
    HttpRequest new_keep = make_request(GET, kTok, {}, 11);
    for (const HttpRequest* req : {&old_close, &old_keep, &new_close, &new_keep}) {
        Plan plan = plan_request(*req, classify(*req), caller_for(Who::bound), binding_for(Who::bound), {});
        ASSERT_TRUE(std::holds_alternative<Reply>(plan));
        expect_common_headers(*req, std::get<Reply>(plan).response);
        HttpResponse rendered = render_token(*req, plan_for(kA), served(sample_token()), 0);
        expect_common_headers(*req, rendered);
    }
}

TEST(Responses, InvalidUtf8IsEscapedNotThrown) {
    HttpRequest req = make_request(GET, kTok + kQ, kMeta);
    HttpResponse res;
    EXPECT_NO_THROW(res = imds_error(req, 400, "invalid_request", std::string("bad \xff\xfe name")));
    EXPECT_TRUE(Json::accept(res.body()));
    // A duplicate parameter name made of invalid bytes is quoted back without throwing either.
    HttpRequest dup = make_request(GET, kTok + kQ + "&%FF=1&%ff=2", kMeta);
    Plan plan;
    EXPECT_NO_THROW(plan = plan_request(dup, classify(dup), caller_for(Who::bound), binding_for(Who::bound), {}));
    ASSERT_TRUE(std::holds_alternative<Reply>(plan));
    EXPECT_EQ(std::get<Reply>(plan).reason, Reason::deny_bad_request);
}

// ---- names ----

TEST(Names, ReasonNamesAreStableSnakeCaseAndDenialsSayDeny) {
    const std::regex snake("[a-z]+(_[a-z]+)*");
    std::set<std::string> seen;
    for (uint16_t code = 0; code <= static_cast<uint16_t>(kLastReason); ++code) {
        const std::string name = to_string(static_cast<Reason>(code));
        EXPECT_TRUE(std::regex_match(name, snake)) << code << " " << name;
        EXPECT_NE(name, "unknown") << code;
        EXPECT_TRUE(seen.insert(name).second) << "duplicate " << name;
        EXPECT_EQ(is_denial(static_cast<Reason>(code)), name.rfind("deny_", 0) == 0) << name;
    }
    // Numbers are part of the contract (audit logs, metrics): spot-check both ends and a middle.
    EXPECT_STREQ(to_string(static_cast<Reason>(0)), "ok_bound_identity");
    EXPECT_STREQ(to_string(static_cast<Reason>(11)), "deny_path");
    EXPECT_STREQ(to_string(static_cast<Reason>(18)), "deny_unsupported_identity");
    EXPECT_STREQ(to_string(static_cast<Reason>(19)), "deny_rate_limited");
    EXPECT_STREQ(to_string(static_cast<Reason>(22)), "deny_federation_untrusted");
    EXPECT_STREQ(to_string(static_cast<Reason>(27)), "error_entra_unavailable");
    EXPECT_STREQ(to_string(static_cast<Reason>(static_cast<uint16_t>(kLastReason) + 1)), "unknown");
    EXPECT_STREQ(to_string(static_cast<Reason>(999)), "unknown");
}

TEST(Names, RequestAndBindingKinds) {
    const std::vector<std::pair<RequestKind, std::string>> kinds = {
        {RequestKind::token, "token"},
        {RequestKind::probe, "probe"},
        {RequestKind::host_token, "host_token"},
        {RequestKind::instance_metadata, "instance_metadata"},
        {RequestKind::other_metadata, "other_metadata"},
        {RequestKind::health, "health"},
        {RequestKind::unknown, "unknown"},
        {RequestKind::selfcheck, "selfcheck"},
    };
    for (const auto& [kind, name] : kinds) {
        EXPECT_EQ(to_string(kind), name);
    }
    const std::vector<std::pair<BindingKind, std::string>> bindings = {
        {BindingKind::none, "none"},
        {BindingKind::static_file, "static_file"},
        {BindingKind::aad_pod_identity, "aad_pod_identity"},
        {BindingKind::workload_identity, "workload_identity"},
        {BindingKind::node_identity, "node_identity"},
    };
    for (const auto& [kind, name] : bindings) {
        EXPECT_EQ(to_string(kind), name);
    }
}

}  // namespace
}  // namespace podid
