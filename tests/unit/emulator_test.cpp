// The emulator's IMDS rules as a pure function (no sockets): each request shape real SDKs send, each IMDS
// validation rule, the token's JSON fields and its RS256-signed claims.
#include <gtest/gtest.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cctype>
#include <cstdio>
#include <stdexcept>

#include "imds-emulator/base64url.h"
#include "imds-emulator/identity_store.h"
#include "imds-emulator/imds_rules.h"
#include "imds-emulator/jwt.h"
#include "imds-emulator/query.h"

namespace podid::emulator {
namespace {

namespace http = boost::beast::http;

constexpr const char* kClientA = "a1a1a1a1-0000-4000-8000-00000000000a";
constexpr const char* kObjectA = "0b0b0b0b-0000-4000-8000-00000000000a";
constexpr const char* kResIdA =
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-a";
constexpr const char* kClientB = "b2b2b2b2-0000-4000-8000-00000000000b";
constexpr const char* kResIdB =
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-b";
constexpr const char* kSystem = "5e5e5e5e-0000-4000-8000-000000000005";
constexpr const char* kTenant = "7e7e7e7e-0000-4000-8000-00000000007e";
constexpr int64_t kNow = 1700000000;
constexpr int64_t kLifetime = 3600;

const TokenSigner& test_signer() {
    static TokenSigner signer = [] {
        auto s = TokenSigner::generate();
        if (!s)
            throw std::runtime_error(s.error().message);
        return std::move(*s);
    }();
    return signer;
}

IdentityStore make_store(bool with_system) {
    IdentityStore store;
    store.add_user_assigned({kClientA, kResIdA, kObjectA});
    store.add_user_assigned({kClientB, kResIdB, ""});
    if (with_system)
        store.set_system_assigned(kSystem);
    return store;
}

HttpRequest make_request(http::verb method, const std::string& target, const std::vector<std::string>& headers) {
    HttpRequest req{method, target, 11};
    req.set(http::field::host, "169.254.169.254");
    for (const auto& h : headers) {
        auto colon = h.find(':');
        req.set(h.substr(0, colon), h.substr(colon + 2));
    }
    return req;
}

std::string error_description(const HttpResponse& res) {
    auto body = nlohmann::json::parse(res.body(), nullptr, false);
    if (!body.is_object())
        return "<not json>";
    return body.value("error_description", "");
}

// Encodes everything but unreserved characters, as Go's url.Values does for an ARM id.
std::string percent_encode_for_test(std::string_view text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

const std::string kEncVault = "https%3A%2F%2Fvault.azure.net";
const std::string kToken = "/metadata/identity/oauth2/token";
const std::string kMeta = "Metadata: true";

struct ShapeCase {
    const char* name;
    http::verb method;
    std::string target;
    std::vector<std::string> headers;
    bool with_system;
    unsigned status;
    std::string description;  // error_description for errors
    std::string client_id;    // served identity for 200
    std::string resource;     // decoded resource for 200
};

std::vector<ShapeCase> shape_cases() {
    using V = http::verb;
    return {
        {"msal_node_encoded_resource",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&client_id=" + kClientA,
         {kMeta, "x-client-SKU: msal.js.node", "x-ms-client-request-id: 1"},
         true,
         200,
         "",
         kClientA,
         "https://vault.azure.net"},
        {"python_raw_resource",
         V::get,
         kToken + "?api-version=2018-02-01&resource=https://storage.azure.com&client_id=" + kClientB,
         {kMeta},
         true,
         200,
         "",
         kClientB,
         "https://storage.azure.com"},
        {"az_cli_parameter_order",
         V::get,
         kToken + "?resource=https%3A%2F%2Fmanagement.core.windows.net%2F&api-version=2018-02-01&client_id=" + kClientA,
         {kMeta},
         true,
         200,
         "",
         kClientA,
         "https://management.core.windows.net/"},
        {"go_msi_res_id_encoded",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&msi_res_id=" + percent_encode_for_test(kResIdB),
         {kMeta},
         true,
         200,
         "",
         kClientB,
         "https://vault.azure.net"},
        {"mi_res_id_alias_raw",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&mi_res_id=" + kResIdB,
         {kMeta},
         true,
         200,
         "",
         kClientB,
         "https://vault.azure.net"},
        {"object_id",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&object_id=" + kObjectA,
         {kMeta},
         true,
         200,
         "",
         kClientA,
         "https://vault.azure.net"},
        {"client_id_compared_case_insensitively",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&client_id=A1A1A1A1-0000-4000-8000-00000000000A",
         {kMeta},
         true,
         200,
         "",
         kClientA,
         "https://vault.azure.net"},
        {"resource_id_compared_case_insensitively",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault +
             "&msi_res_id=/SUBSCRIPTIONS/sub/resourcegroups/RG/providers/microsoft.managedidentity/"
             "userassignedidentities/ID-A",
         {kMeta},
         true,
         200,
         "",
         kClientA,
         "https://vault.azure.net"},
        {"no_selector_uses_system_identity",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault,
         {kMeta},
         true,
         200,
         "",
         kSystem,
         "https://vault.azure.net"},
        {"undocumented_extras_accepted",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&client_id=" + kClientA +
             "&bypass_cache=true&xms_cc=CP1&token_sha256_to_refresh=abc",
         {kMeta},
         true,
         200,
         "",
         kClientA,
         "https://vault.azure.net"},
        {"metadata_segment_case_insensitive",
         V::get,
         "/METADATA/identity/oauth2/token?api-version=2018-02-01&resource=" + kEncVault + "&client_id=" + kClientA,
         {kMeta},
         true,
         200,
         "",
         kClientA,
         "https://vault.azure.net"},

        {"sdk_probe_no_query_no_metadata",
         V::get,
         kToken,
         {},
         true,
         400,
         "Required metadata header not specified",
         "",
         ""},
        {"metadata_header_missing",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault,
         {},
         true,
         400,
         "Required metadata header not specified",
         "",
         ""},
        {"metadata_header_not_lower_case_true",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault,
         {"Metadata: True"},
         true,
         400,
         "Required metadata header not specified",
         "",
         ""},
        {"x_forwarded_for_rejected",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault,
         {kMeta, "X-Forwarded-For: 10.0.0.7"},
         true,
         400,
         "Request must not contain an X-Forwarded-For header",
         "",
         ""},
        {"duplicate_resource",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&resource=https://storage.azure.com",
         {kMeta},
         true,
         400,
         "Query parameter 'resource' appears more than once",
         "",
         ""},
        {"duplicate_client_id",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&client_id=" + kClientA + "&client_id=" + kClientA,
         {kMeta},
         true,
         400,
         "Query parameter 'client_id' appears more than once",
         "",
         ""},
        {"missing_api_version",
         V::get,
         kToken + "?resource=" + kEncVault,
         {kMeta},
         true,
         400,
         "Required query variable 'api-version' is missing",
         "",
         ""},
        {"malformed_api_version",
         V::get,
         kToken + "?api-version=latest&resource=" + kEncVault,
         {kMeta},
         true,
         400,
         "Bad request. api-version 'latest' is invalid",
         "",
         ""},
        {"missing_resource",
         V::get,
         kToken + "?api-version=2018-02-01&client_id=" + kClientA,
         {kMeta},
         true,
         400,
         "Required query variable 'resource' is missing",
         "",
         ""},
        {"unknown_client_id",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&client_id=99999999-0000-4000-8000-000000000000",
         {kMeta},
         true,
         400,
         "Identity not found",
         "",
         ""},
        {"unknown_msi_res_id",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&msi_res_id=/subscriptions/x/nope",
         {kMeta},
         true,
         400,
         "Identity not found",
         "",
         ""},
        {"no_selector_without_system_identity",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault,
         {kMeta},
         false,
         400,
         "Identity not found",
         "",
         ""},
        {"two_selectors",
         V::get,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault + "&client_id=" + kClientA + "&mi_res_id=" + kResIdA,
         {kMeta},
         true,
         400,
         "Only one of client_id, object_id, msi_res_id may be given; got client_id and mi_res_id",
         "",
         ""},
        {"post_not_allowed",
         V::post,
         kToken + "?api-version=2018-02-01&resource=" + kEncVault,
         {kMeta},
         true,
         405,
         "Only GET is supported on this endpoint",
         "",
         ""},
        {"backslash_spelling_is_not_the_token_path",
         V::get,
         "/metadata/identity\\oauth2\\token?api-version=2018-02-01&resource=" + kEncVault,
         {kMeta},
         true,
         404,
         "No IMDS endpoint at /metadata/identity\\oauth2\\token",
         "",
         ""},
    };
}

ImdsContext context(const IdentityStore& store, std::string token_id = std::string(16, '\x01')) {
    return ImdsContext{store, test_signer(), kTenant, kLifetime, kNow, std::move(token_id)};
}

class RequestShapes : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(RequestShapes, AnswersLikeImds) {
    const ShapeCase& c = GetParam();
    IdentityStore store = make_store(c.with_system);
    ImdsOutcome out = answer_imds(make_request(c.method, c.target, c.headers), context(store));

    ASSERT_EQ(out.response.result_int(), c.status) << out.response.body();
    EXPECT_EQ(out.response[http::field::content_type], "application/json; charset=utf-8");
    auto body = nlohmann::json::parse(out.response.body(), nullptr, false);
    ASSERT_TRUE(body.is_object()) << out.response.body();
    if (c.status != 200) {
        EXPECT_EQ(body.value("error", ""), c.status == 405   ? "method_not_allowed"
                                           : c.status == 404 ? "not_found"
                                                             : "invalid_request");
        EXPECT_EQ(error_description(out.response), c.description);
        if (c.status == 405) {
            EXPECT_EQ(out.response[http::field::allow], "GET");
        }
        return;
    }

    // Every field is a JSON string on IMDS; MSAL Python and az need expires_in, MSAL Node expires_on.
    for (const char* field : {"access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before",
                              "resource", "token_type"}) {
        ASSERT_TRUE(body.contains(field)) << field;
        EXPECT_TRUE(body[field].is_string()) << field;
    }
    EXPECT_EQ(body["client_id"], c.client_id);
    EXPECT_EQ(body["resource"], c.resource);
    EXPECT_EQ(body["token_type"], "Bearer");
    EXPECT_EQ(body["expires_in"], std::to_string(kLifetime));
    EXPECT_EQ(body["expires_on"], std::to_string(kNow + kLifetime));
    EXPECT_EQ(body["not_before"], std::to_string(kNow));
    EXPECT_EQ(out.client_id, c.client_id);
    EXPECT_EQ(out.resource, c.resource);

    auto jwt = verify_jwt(body["access_token"].get<std::string>(), test_signer().jwks());
    ASSERT_TRUE(jwt) << jwt.error().message;
    const EmulatedIdentity* identity = store.find(Selector::client_id, c.client_id);
    ASSERT_NE(identity, nullptr);
    EXPECT_EQ(jwt->claims["aud"], c.resource);
    EXPECT_EQ(jwt->claims["appid"], c.client_id);
    EXPECT_EQ(jwt->claims["oid"], identity->object_id);
    EXPECT_EQ(jwt->claims["xms_mirid"], identity->resource_id);
    EXPECT_EQ(jwt->claims["tid"], kTenant);  // az reads tid from the token
    EXPECT_EQ(jwt->claims["iss"], std::string("https://sts.windows.net/") + kTenant + "/");
    EXPECT_EQ(jwt->claims["iat"], kNow);
    EXPECT_EQ(jwt->claims["nbf"], kNow);
    EXPECT_EQ(jwt->claims["exp"], kNow + kLifetime);
    EXPECT_EQ(jwt->header["kid"], test_signer().key_id());
}

INSTANTIATE_TEST_SUITE_P(Sdk, RequestShapes, ::testing::ValuesIn(shape_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Token, UniqueIdMakesTwoTokensForTheSameIdentityDiffer) {
    IdentityStore store = make_store(true);
    auto req = make_request(http::verb::get, kToken + "?api-version=2018-02-01&resource=" + kEncVault, {kMeta});
    auto first = answer_imds(req, context(store, std::string(16, '\x01')));
    auto second = answer_imds(req, context(store, std::string(16, '\x02')));
    auto t1 = nlohmann::json::parse(first.response.body())["access_token"].get<std::string>();
    auto t2 = nlohmann::json::parse(second.response.body())["access_token"].get<std::string>();
    EXPECT_NE(t1, t2);
    auto c1 = decode_jwt(t1), c2 = decode_jwt(t2);
    ASSERT_TRUE(c1 && c2);
    EXPECT_NE(c1->claims["uti"], c2->claims["uti"]);
    EXPECT_NE(c1->claims["jti"], c2->claims["jti"]);
}

TEST(Token, DerivedIdsAreFilledForIdentitiesGivenOnlyByClientId) {
    IdentityStore store = make_store(true);
    const EmulatedIdentity* b = store.find(Selector::client_id, kClientB);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->object_id, derived_object_id(kClientB));
    EXPECT_EQ(store.find(Selector::object_id, derived_object_id(kClientB)), b);
    EXPECT_EQ(store.system_assigned()->resource_id, store.vm().resource_id());
    EXPECT_NE(derived_object_id(kClientA), derived_object_id(kClientB));
}

TEST(Jwt, TamperedClaimsDoNotVerify) {
    auto token = test_signer().sign({{"aud", "https://vault.azure.net"}, {"appid", kClientA}});
    ASSERT_TRUE(token);
    ASSERT_TRUE(verify_jwt(*token, test_signer().jwks()));

    auto first_dot = token->find('.'), second_dot = token->find('.', first_dot + 1);
    std::string forged_claims = base64url_encode(R"({"aud":"https://vault.azure.net","appid":"someone-else"})");
    std::string forged = token->substr(0, first_dot + 1) + forged_claims + token->substr(second_dot);
    auto verdict = verify_jwt(forged, test_signer().jwks());
    ASSERT_FALSE(verdict);
    EXPECT_EQ(verdict.error().message, "JWT signature does not verify");
}

TEST(Jwt, OtherKeysJwksDoesNotVerify) {
    auto other = TokenSigner::generate();
    ASSERT_TRUE(other);
    auto token = test_signer().sign({{"aud", "x"}});
    ASSERT_TRUE(token);
    EXPECT_FALSE(verify_jwt(*token, other->jwks()));
    // Same kid, other key material: the signature check, not the kid lookup, must refuse it.
    nlohmann::json spoofed = other->jwks();
    spoofed["keys"][0]["kid"] = test_signer().key_id();
    auto verdict = verify_jwt(*token, spoofed);
    ASSERT_FALSE(verdict);
    EXPECT_EQ(verdict.error().message, "JWT signature does not verify");
}

TEST(Jwt, KeyFromPemKeepsItsKeyIdAcrossLoads) {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    ASSERT_NE(key, nullptr);
    BIO* bio = BIO_new(BIO_s_mem());
    ASSERT_EQ(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<size_t>(len));
    BIO_free(bio);
    EVP_PKEY_free(key);

    auto a = TokenSigner::from_pem(pem);
    auto b = TokenSigner::from_pem(pem);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->key_id(), b->key_id());
    EXPECT_NE(a->key_id(), test_signer().key_id());
    auto token = a->sign({{"aud", "x"}});
    ASSERT_TRUE(token);
    EXPECT_TRUE(verify_jwt(*token, b->jwks()));
}

TEST(Jwt, BadKeyInputsAreErrors) {
    EXPECT_FALSE(TokenSigner::from_pem("not a pem"));
    EXPECT_FALSE(TokenSigner::from_pem_file("/nonexistent/key.pem"));
    EXPECT_FALSE(decode_jwt("only.two"));
    EXPECT_FALSE(decode_jwt("a.b.c.d"));
    EXPECT_FALSE(decode_jwt("!!!.e30.sig"));
}

struct Base64Case {
    std::string bytes;
    std::string text;
};

TEST(Base64url, RoundTripsWithoutPadding) {
    // RFC 4648 §10 vectors, unpadded, plus the two characters base64url changes.
    const std::vector<Base64Case> cases = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(base64url_encode(c.bytes), c.text) << c.text;
        EXPECT_EQ(base64url_decode(c.text), c.bytes) << c.text;
    }
    EXPECT_FALSE(base64url_decode("Zm9v="));  // padding is not base64url's
    EXPECT_FALSE(base64url_decode("Z"));      // impossible length
}

struct RouteCase {
    std::string target;
    Route route;
};

TEST(Routes, ClassifyByPathOnly) {
    const std::vector<RouteCase> cases = {
        {"/metadata/identity/oauth2/token?x=1", Route::token},
        {"/Metadata/identity/oauth2/token", Route::token},
        {"/metadata/identity/oauth2/token/", Route::not_found},
        {"/metadata/identity/info?api-version=2018-02-01", Route::identity_info},
        {"/metadata/instance?api-version=2021-02-01", Route::instance},
        {"/metadata/instance/compute/location", Route::instance},
        {"/metadata/instancex", Route::not_found},
        {"/metadata/versions", Route::versions},
        {"/metadatax/identity/oauth2/token", Route::not_found},
        {"/_emulator/stats", Route::admin},
        {"/", Route::not_found},
    };
    for (const auto& c : cases)
        EXPECT_EQ(route_of(c.target), c.route) << c.target;
}

struct MetadataCase {
    const char* name;
    std::string target;
    bool metadata_header;
    unsigned status;
    std::string body;  // exact body, or "" to skip
};

TEST(OtherPaths, InstanceInfoAndVersions) {
    IdentityStore store = make_store(true);
    const std::vector<MetadataCase> cases = {
        {"info", "/metadata/identity/info?api-version=2018-02-01", true, 200,
         std::string(R"({"tenantId":")") + kTenant + R"("})"},
        {"info_needs_metadata", "/metadata/identity/info?api-version=2018-02-01", false, 400, ""},
        {"location_text", "/metadata/instance/compute/location?api-version=2021-02-01&format=text", true, 200,
         store.vm().location},
        {"vm_id_text", "/metadata/instance/compute/vmId?api-version=2021-02-01&format=text", true, 200,
         store.vm().vm_id},
        {"private_ip_text",
         "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01&format=text",
         true, 200, store.vm().private_ip},
        {"unknown_leaf", "/metadata/instance/compute/nope?api-version=2021-02-01", true, 404, ""},
        {"instance_needs_api_version", "/metadata/instance", true, 400, ""},
        {"versions", "/metadata/versions", true, 200, ""},
    };
    for (const auto& c : cases) {
        auto req = make_request(http::verb::get, c.target,
                                c.metadata_header ? std::vector{kMeta} : std::vector<std::string>{});
        auto out = answer_imds(req, context(store));
        EXPECT_EQ(out.response.result_int(), c.status) << c.name << ": " << out.response.body();
        if (!c.body.empty()) {
            EXPECT_EQ(out.response.body(), c.body) << c.name;
        }
    }
    auto doc = answer_imds(make_request(http::verb::get, "/metadata/instance?api-version=2021-02-01", {kMeta}),
                           context(store));
    auto json = nlohmann::json::parse(doc.response.body());
    EXPECT_EQ(json["compute"]["resourceId"], store.vm().resource_id());
    EXPECT_EQ(json["compute"]["subscriptionId"], store.vm().subscription_id);
}

struct QueryCase {
    std::string target;
    std::string path;
    std::vector<std::pair<std::string, std::string>> params;
};

TEST(Query, DecodesEncodedAndRawValues) {
    const std::vector<QueryCase> cases = {
        {"/p?resource=https%3A%2F%2Fvault.azure.net", "/p", {{"resource", "https://vault.azure.net"}}},
        {"/p?resource=https://storage.azure.com&x=", "/p", {{"resource", "https://storage.azure.com"}, {"x", ""}}},
        {"/p?a=1&&b=two+words&c", "/p", {{"a", "1"}, {"b", "two words"}, {"c", ""}}},
        {"/p?bad=%zz%4", "/p", {{"bad", "%zz%4"}}},
        {"/p", "/p", {}},
    };
    for (const auto& c : cases) {
        Target t = split_target(c.target);
        EXPECT_EQ(t.path, c.path) << c.target;
        EXPECT_EQ(t.params, c.params) << c.target;
    }
}

}  // namespace
}  // namespace podid::emulator
