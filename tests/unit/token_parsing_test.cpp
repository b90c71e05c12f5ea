// Pure helpers of the token provider: --imds-url, IMDS token JSON, retry policy. Table-driven.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "token/imds_url.h"
#include "token/retry_policy.h"
#include "token/token_fingerprint.h"
#include "token/token_json.h"

namespace podid {
namespace {

using namespace std::chrono_literals;

TEST(TokenParsing, ImdsUrl) {
    struct Row {
        std::string url;
        bool ok;
        std::string host;
        uint16_t port;
        std::string host_header;  // or a fragment of the error message
    };
    const Row rows[] = {
        {"http://169.254.169.254", true, "169.254.169.254", 80, "169.254.169.254"},
        {"http://169.254.169.254/", true, "169.254.169.254", 80, "169.254.169.254"},
        {"HTTP://127.0.0.1:8080", true, "127.0.0.1", 8080, "127.0.0.1:8080"},
        {"http://[::1]:9000", true, "::1", 9000, "[::1]:9000"},
        {"http://imds.local", true, "imds.local", 80, "imds.local"},
        {"https://169.254.169.254", false, "", 0, "https is not supported"},
        {"169.254.169.254", false, "", 0, "scheme must be http"},
        {"http://", false, "", 0, "host is missing"},
        {"http://:80", false, "", 0, "host is missing"},
        {"http://h:0", false, "", 0, "port must be"},
        {"http://h:65536", false, "", 0, "port must be"},
        {"http://h:", false, "", 0, "empty port"},
        {"http://h:8x", false, "", 0, "port must be"},
        {"http://h/metadata", false, "", 0, "path, query"},
        {"http://h?x=1", false, "", 0, "path, query"},
        {"http://user@h", false, "", 0, "user info"},
        {"http://[::1", false, "", 0, "unterminated"},
        {"http://h_x", false, "", 0, "characters not allowed"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.url);
        auto parsed = parse_imds_url(row.url);
        ASSERT_EQ(parsed.ok(), row.ok);
        if (row.ok) {
            EXPECT_EQ(parsed->host, row.host);
            EXPECT_EQ(parsed->port, row.port);
            EXPECT_EQ(parsed->host_header, row.host_header);
        } else {
            EXPECT_NE(parsed.error().message.find(row.host_header), std::string::npos) << parsed.error().message;
        }
    }
}

TEST(TokenParsing, TokenJson) {
    struct Row {
        std::string name;
        std::string body;
        bool ok;
        int64_t expires_on;
        std::string client_id;
    };
    const Row rows[] = {
        {"imds strings",
         R"({"access_token":"SECRET","client_id":"c1","expires_in":"86386","expires_on":"1605238724",)"
         R"("ext_expires_in":"86399","not_before":"1605152024","resource":"r","token_type":"Bearer"})",
         true, 1605238724, "c1"},
        {"numbers", R"({"access_token":"SECRET","expires_on":1605238724,"not_before":1})", true, 1605238724, ""},
        {"only expires_in", R"({"access_token":"SECRET","expires_in":3599})", true, 1000 + 3599, ""},
        {"no access_token", R"({"expires_on":"1"})", false, 0, ""},
        {"empty access_token", R"({"access_token":"","expires_on":"1"})", false, 0, ""},
        {"no expiry", R"({"access_token":"SECRET"})", false, 0, ""},
        {"bad expiry", R"({"access_token":"SECRET","expires_on":"tomorrow"})", false, 0, ""},
        {"token not a string", R"({"access_token":42,"expires_on":"1"})", false, 0, ""},
        {"not json", R"(access_token=SECRET)", false, 0, ""},
        {"array", R"(["SECRET"])", false, 0, ""},
        {"truncated", R"({"access_token":"SECRET","expires_on":"16)", false, 0, ""},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        auto token = parse_token_json(row.body, 1000);
        ASSERT_EQ(token.ok(), row.ok);
        if (row.ok) {
            EXPECT_EQ(token->access_token, "SECRET");
            EXPECT_EQ(token->expires_on, row.expires_on);
            EXPECT_EQ(token->client_id, row.client_id);
            EXPECT_EQ(token->token_type, "Bearer");
        } else {
            EXPECT_EQ(token.error().message.find("SECRET"), std::string::npos) << token.error().message;
        }
    }
}

TEST(TokenParsing, RetryableStatuses) {
    struct Row {
        int status;
        bool retry;
    };
    const Row rows[] = {{0, true},    {200, false}, {400, false}, {401, false}, {403, false}, {404, true},
                        {408, false}, {410, true},  {429, true},  {500, true},  {503, true},  {599, true}};
    for (const auto& row : rows)
        EXPECT_EQ(is_retryable_status(row.status), row.retry) << row.status;
}

TEST(TokenParsing, BackoffFollowsImdsGuidance) {
    struct Row {
        int retry;
        std::optional<std::chrono::seconds> retry_after;
        std::chrono::milliseconds delay;
    };
    const Row rows[] = {
        {0, {}, 0ms},     {1, {}, 2000ms},   {2, {}, 6000ms},    {3, {}, 14000ms}, {4, {}, 30000ms},
        {5, {}, 60000ms}, {50, {}, 60000ms}, {-1, {}, 0ms},      {0, 1s, 1000ms},  {1, 1s, 2000ms},
        {1, 5s, 5000ms},  {4, 45s, 45000ms}, {0, 600s, 60000ms},
    };
    for (const auto& row : rows)
        EXPECT_EQ(backoff_delay(row.retry, row.retry_after), row.delay)
            << row.retry << " " << (row.retry_after ? row.retry_after->count() : -1);
}

TEST(TokenParsing, RetryAfter) {
    struct Row {
        std::string value;
        std::optional<std::chrono::seconds> parsed;
    };
    const Row rows[] = {{"1", 1s},    {" 3 ", 3s},          {"0", 0s},
                        {"120", 60s}, {"99999999999", 60s}, {"", {}},
                        {"-1", {}},   {"1.5", {}},          {"Wed, 21 Oct 2015 07:28:00 GMT", {}}};
    for (const auto& row : rows)
        EXPECT_EQ(parse_retry_after(row.value), row.parsed) << row.value;
}

TEST(TokenParsing, FingerprintIsShortAndStable) {
    const auto a = token_fingerprint("eyJ.secret.sig");
    EXPECT_EQ(a.size(), 16u);
    EXPECT_EQ(a, token_fingerprint("eyJ.secret.sig"));
    EXPECT_NE(a, token_fingerprint("eyJ.secret.sih"));
    EXPECT_EQ(token_fingerprint(""), "e3b0c44298fc1c14");  // SHA-256 of the empty string
}

TEST(TokenParsing, KeyToString) {
    EXPECT_EQ((TokenKey{"c", "", "", "https://vault.azure.net"}).to_string(),
              "client_id=c;resource=https://vault.azure.net");
    EXPECT_EQ((TokenKey{"", "/subs/x", "", "r"}).to_string(), "msi_res_id=/subs/x;resource=r");
    EXPECT_EQ((TokenKey{"", "", "", "r"}).to_string(), "resource=r");
}

}  // namespace
}  // namespace podid
