// TokenBody: the token response rendered once and spliced per request must be byte for byte what rendering the
// whole object per request gave (IMDS's format: every field a string, IMDS's order), for any token bytes.
#include "token/token_body.h"
#include "token/token_fingerprint.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace podid {
namespace {

using Json = nlohmann::ordered_json;

Json whole(const Token& t, const std::string& client_id, const std::string& resource, int64_t now) {
    return Json{
        {"access_token", t.access_token},
        {"client_id", client_id},
        {"expires_in", std::to_string(std::max<int64_t>(0, t.expires_on - now))},
        {"expires_on", std::to_string(t.expires_on)},
        {"ext_expires_in", std::to_string(t.ext_expires_in)},
        {"not_before", std::to_string(t.not_before)},
        {"resource", resource},
        {"token_type", t.token_type},
    };
}

std::string text(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

struct Row {
    std::string access_token;
    std::string client_id;
    std::string resource;
    int64_t now;
};

TEST(TokenBody, SameBytesAsRenderingTheWholeObject) {
    const std::vector<Row> rows = {
        {"eyJ0eXAiOiJKV1QifQ.eyJ0aWQiOiJ0In0.c2ln", "11111111-aaaa-4aaa-aaaa-aaaaaaaaaaaa", "https://vault.azure.net",
         1605152338},
        {std::string(1400, 'x'), "c", "r", 1605238724},  // expires exactly now: "0"
        // the text the body is cut at, inside values
        {"a\",\"expires_in\":\"\"", ",\"expires_in\":\"\"", "\\\",\"expires_in\":\"\"", 0},
        {"bad utf-8 \xff\xc3", "\x01\n", "\xe2\x82\xac", 1605238724 + 100},  // past expiry: "0", never negative
    };
    for (const auto& row : rows) {
        Token t;
        t.access_token = row.access_token;
        t.client_id = row.client_id;
        t.resource = row.resource;
        t.expires_on = 1605238724;
        t.not_before = 1605152024;
        t.ext_expires_in = 86399;
        const Json flat = whole(t, row.client_id, row.resource, row.now);
        EXPECT_EQ(TokenBody(t, row.client_id, row.resource, false).at(row.now), text(flat)) << row.access_token;
        EXPECT_EQ(TokenBody(t, row.client_id, row.resource, true).at(row.now),
                  text(Json{{"token", flat}, {"clientid", row.client_id}}))
            << row.access_token;
    }
}

TEST(TokenBody, RenderOnceCarriesBothShapesAndTheFingerprint) {
    Token t;
    t.access_token = "secret-token-value";
    t.client_id = "cid";
    t.resource = "https://management.azure.com/";
    t.expires_on = 2000;
    auto r = render_once(t);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->client_id, "cid");
    EXPECT_EQ(r->resource, t.resource);
    EXPECT_EQ(r->fingerprint, token_fingerprint(t.access_token));
    EXPECT_EQ(r->imds.at(1000), text(whole(t, "cid", t.resource, 1000)));
    EXPECT_EQ(Json::parse(r->host.at(1999))["token"]["expires_in"], "1");
}

}  // namespace
}  // namespace podid
