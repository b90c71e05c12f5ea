// Path normalisation, routing and query parsing of the IMDS request-target.
#include "http/request_target.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace podid {
namespace {

struct NormaliseRow {
    std::string raw;
    std::string normalised;
};

TEST(NormalisePath, Table) {
    const std::vector<NormaliseRow> rows = {
        {"/metadata/identity/oauth2/token", "/metadata/identity/oauth2/token"},
        {"/METADATA/identity/oauth2/token", "/metadata/identity/oauth2/token"},
        {"/MetaData/Identity/OAuth2/Token", "/metadata/Identity/OAuth2/Token"},  // only the first segment folds
        {"/metadata/identity\\oauth2\\token/", "/metadata/identity/oauth2/token"},
        {"//metadata///identity//oauth2/token//", "/metadata/identity/oauth2/token"},
        {"/metadata/identity%2Foauth2%2ftoken", "/metadata/identity/oauth2/token"},
        {"/metadata/identity%5Coauth2%5ctoken", "/metadata/identity/oauth2/token"},
        {"/metadata/identity%252Foauth2%25252Ftoken", "/metadata/identity/oauth2/token"},  // 2 and 3 rounds
        {"/metadata/./identity/%2e/oauth2/token", "/metadata/identity/oauth2/token"},
        {"/metadata/instance/../identity/oauth2/token", "/metadata/identity/oauth2/token"},
        {"/metadata/instance/%2e%2E/identity", "/metadata/identity"},
        {"/../../metadata/versions", "/metadata/versions"},              // `..` never climbs above the root
        {"/metadata/identity%zz/token", "/metadata/identity%zz/token"},  // malformed escape stays literal
        {"/metadata/identity%2", "/metadata/identity%2"},
        {"/metadata/a%00b", std::string("/metadata/a\0b", 13)},
        {"", "/"},
        {"/", "/"},
        {"/..", "/"},
        {"metadata/instance", "/metadata/instance"},
        // Plain paths take a shorter road (no decoding or segment list); these pin that it ends in the same place.
        {"/METADATA", "/metadata"},
        {"/Metadata/", "/metadata"},
        {"/metadataX/Instance/", "/metadataX/Instance"},
        {"/healthz/", "/healthz"},
        {"/a/.b/..c/", "/a/.b/..c"},
        {"/metadata/instance/compute/tagsList/", "/metadata/instance/compute/tagsList"},
    };
    for (const NormaliseRow& row : rows) {
        EXPECT_EQ(normalise_path(row.raw), row.normalised) << row.raw;
    }
}

TEST(IsPlainPath, Table) {
    const std::vector<std::pair<std::string, bool>> rows = {
        {"/", true},
        {"/metadata/instance", true},
        {"/metadata/instance/", true},
        {"/metadata/instance/compute/tagsList", true},
        {"/metadata/instance-1_a.b~c", true},
        {"", false},
        {"metadata/instance", false},
        {"//metadata", false},
        {"/metadata//instance", false},
        {"/metadata/instance//", false},
        {"/metadata/./instance", false},
        {"/metadata/../instance", false},
        {"/metadata/instance/.", false},
        {"/metadata/%69nstance", false},
        {"/metadata\\instance", false},
        {"/metadata/instance;x", false},
        {"/metadata/instance:x", false},
        {"/metadata/instance+x", false},
        {"/.", false},
        {"/..", false},
        {"/./", false},
        {"/a/.b/..c/", true},
        {"/a/b/../", false},
    };
    for (const auto& [raw, plain] : rows) {
        EXPECT_EQ(is_plain_path(raw), plain) << raw;
    }
}

struct RouteRow {
    std::string raw;
    Route route;
    std::string path;
};

TEST(RoutePath, Table) {
    const std::vector<RouteRow> rows = {
        {"/metadata/identity/oauth2/token", Route::token, "/metadata/identity/oauth2/token"},
        {"/Metadata/identity/oauth2/token/", Route::token, "/metadata/identity/oauth2/token"},
        {"/metadata/identity\\oauth2\\token/", Route::token, "/metadata/identity/oauth2/token"},
        {"/metadata/identity/OAUTH2/token", Route::rejected, "/metadata/identity/OAUTH2/token"},
        {"/metadata/identity", Route::rejected, "/metadata/identity"},
        {"/metadata/instance/identity", Route::rejected, "/metadata/instance/identity"},
        {"/metadata/instance/%63ompute", Route::rejected, "/metadata/instance/compute"},
        {"/metadata/identity/info", Route::unknown, "/metadata/identity/info"},
        {"/metadata/instance", Route::instance_metadata, "/metadata/instance"},
        {"/metadata/instance/compute/location", Route::instance_metadata, "/metadata/instance/compute/location"},
        {"/METADATA/INSTANCE/compute", Route::instance_metadata, "/metadata/INSTANCE/compute"},
        {"/metadata/instances", Route::instance_metadata, "/metadata/instances"},
        {"/metadata", Route::other_metadata, "/metadata"},
        {"/metadata/versions", Route::other_metadata, "/metadata/versions"},
        {"/metadata/attested/document", Route::other_metadata, "/metadata/attested/document"},
        {"/metadata/scheduledevents", Route::other_metadata, "/metadata/scheduledevents"},
        {"/host/token", Route::host_token, "/host/token"},
        {"/host/token/", Route::host_token, "/host/token"},
        {"/host//token", Route::unknown, "/host/token"},
        {"/HOST/token", Route::unknown, "/HOST/token"},
        {"/healthz", Route::health, "/healthz"},
        {"/readyz", Route::health, "/readyz"},
        {"/%68ealthz", Route::unknown, "/healthz"},
        {"/", Route::unknown, "/"},
        {"/identity/oauth2/token", Route::unknown, "/identity/oauth2/token"},
        {"/x/metadata/identity/oauth2/token", Route::unknown, "/x/metadata/identity/oauth2/token"},
        {"http://169.254.169.254/metadata/instance", Route::unknown, "/http:/169.254.169.254/metadata/instance"},
    };
    for (const RouteRow& row : rows) {
        RoutedPath routed = route_path(row.raw);
        EXPECT_STREQ(to_string(routed.route), to_string(row.route)) << row.raw;
        EXPECT_EQ(routed.path, row.path) << row.raw;
    }
}

TEST(SplitTarget, SplitsAtFirstQuestionMark) {
    SplitTarget t = split_target("/a/b?x=1&y=?2");
    EXPECT_EQ(t.path, "/a/b");
    EXPECT_EQ(t.query, "x=1&y=?2");
    t = split_target("/a/b");
    EXPECT_EQ(t.path, "/a/b");
    EXPECT_EQ(t.query, "");
    t = split_target("/a?");
    EXPECT_EQ(t.path, "/a");
    EXPECT_EQ(t.query, "");
}

struct QueryRow {
    std::string raw;
    bool ok;
    std::vector<std::pair<std::string, std::string>> params;  // when ok
    std::string error;                                        // when not
};

TEST(ParseQuery, Table) {
    const std::vector<QueryRow> rows = {
        {"", true, {}, ""},
        {"a=1&b=2", true, {{"a", "1"}, {"b", "2"}}, ""},
        {"a=1&&b=2&", true, {{"a", "1"}, {"b", "2"}}, ""},
        {"flag&x=", true, {{"flag", ""}, {"x", ""}}, ""},
        {"resource=https://vault.azure.net", true, {{"resource", "https://vault.azure.net"}}, ""},
        {"resource=https%3A%2F%2Fvault.azure.net", true, {{"resource", "https://vault.azure.net"}}, ""},
        {"r=a+b%2Bc", true, {{"r", "a b+c"}}, ""},  // '+' is a space, as Go's url.ParseQuery and .NET read it
        {"r=a=b", true, {{"r", "a=b"}}, ""},
        {"r=%25252F", true, {{"r", "%252F"}}, ""},  // decoded exactly once
        {"na%6De=v", true, {{"name", "v"}}, ""},
        {"r=%zz", false, {}, "Malformed percent-encoding in query"},
        {"r=%2", false, {}, "Malformed percent-encoding in query"},
        {"a=1&a=2", false, {}, "Duplicate query parameter 'a'"},
        {"a=1&A=1", false, {}, "Duplicate query parameter 'A'"},
        {"a&a", false, {}, "Duplicate query parameter 'a'"},
    };
    for (const QueryRow& row : rows) {
        Result<std::vector<QueryParam>> got = parse_query(row.raw);
        ASSERT_EQ(got.ok(), row.ok) << row.raw;
        if (!row.ok) {
            EXPECT_EQ(got.error().message, row.error) << row.raw;
            continue;
        }
        std::vector<std::pair<std::string, std::string>> params;
        for (const QueryParam& p : *got) {
            params.emplace_back(p.name, p.value);
        }
        EXPECT_EQ(params, row.params) << row.raw;
    }
}

struct ImdsQueryRow {
    std::string raw;
    bool ok;
    ImdsQuery want;     // when ok
    std::string error;  // when not
};

using Kind = IdentitySelector::Kind;

TEST(ParseImdsQuery, Table) {
    const std::string arm =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a";
    const std::string arm_enc =
        "%2Fsubscriptions%2Fs%2FresourceGroups%2Frg%2Fproviders%2FMicrosoft.ManagedIdentity"
        "%2FuserAssignedIdentities%2Fa";
    const std::vector<ImdsQueryRow> rows = {
        {"api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=c1",
         true,
         {"2018-02-01", "https://vault.azure.net", {Kind::client_id, "c1"}, false},
         ""},
        {"resource=https://management.core.windows.net/&api-version=2018-02-01",
         true,
         {"2018-02-01", "https://management.core.windows.net/", {}, false},
         ""},
        {"api-version=2018-02-01&resource=r&object_id=o1",
         true,
         {"2018-02-01", "r", {Kind::object_id, "o1"}, false},
         ""},
        {"api-version=2018-02-01&resource=r&msi_res_id=" + arm_enc,
         true,
         {"2018-02-01", "r", {Kind::msi_res_id, arm}, false},
         ""},
        {"api-version=2018-02-01&resource=r&mi_res_id=" + arm,
         true,
         {"2018-02-01", "r", {Kind::msi_res_id, arm}, false},
         ""},
        {"API-VERSION=1&Resource=r&CLIENT_ID=c", true, {"1", "r", {Kind::client_id, "c"}, false}, ""},
        {"resource=r&bypass_cache=true", true, {"", "r", {}, true}, ""},
        {"resource=r&bypass_cache=True", true, {"", "r", {}, true}, ""},
        {"resource=r&bypass_cache=1", true, {"", "r", {}, false}, ""},
        {"resource=r&authority=x&token_sha256_to_refresh=y&xms_cc=cp1&whatever", true, {"", "r", {}, false}, ""},
        {"resource=r&client_id=&object_id=o", true, {"", "r", {Kind::object_id, "o"}, false}, ""},
        {"", true, {}, ""},
        {"client_id=a&object_id=b", false, {}, "Only one of client_id, object_id and msi_res_id may be specified"},
        {"msi_res_id=a&mi_res_id=a", false, {}, "Only one of client_id, object_id and msi_res_id may be specified"},
        {"client_id=a&msi_res_id=b", false, {}, "Only one of client_id, object_id and msi_res_id may be specified"},
        {"resource=a&resource=b", false, {}, "Duplicate query parameter 'resource'"},
        {"client_id=a&Client_Id=a", false, {}, "Duplicate query parameter 'Client_Id'"},
        {"resource=%GG", false, {}, "Malformed percent-encoding in query"},
    };
    for (const ImdsQueryRow& row : rows) {
        Result<ImdsQuery> got = parse_imds_query(row.raw);
        ASSERT_EQ(got.ok(), row.ok) << row.raw;
        if (!row.ok) {
            EXPECT_EQ(got.error().message, row.error) << row.raw;
            continue;
        }
        EXPECT_EQ(got->api_version, row.want.api_version) << row.raw;
        EXPECT_EQ(got->resource, row.want.resource) << row.raw;
        EXPECT_EQ(got->selector, row.want.selector) << row.raw;
        EXPECT_EQ(got->bypass_cache, row.want.bypass_cache) << row.raw;
    }
}

TEST(ParseQuery, QuotedNameIsBounded) {
    std::string name(500, 'n');
    Result<std::vector<QueryParam>> got = parse_query(name + "=1&" + name + "=2");
    ASSERT_FALSE(got.ok());
    EXPECT_LT(got.error().message.size(), 100u);
}

}  // namespace
}  // namespace podid
