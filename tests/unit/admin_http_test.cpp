// The admin HTTP endpoint (/metrics, /healthz, /readyz): the pure responses, the listen address flag, and the
// server over loopback with real metrics.
#include "admin/admin_http.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "metrics_fixtures.h"

namespace podid {
namespace {

using namespace podid::test;
namespace http = boost::beast::http;

TEST(AdminHttp, ResponseTable) {
    bool ready = true;
    AdminHandlers h;
    h.metrics = [] { return std::string("podid_up 1\n"); };
    h.readiness = [&] { return ready ? Readiness{true, ""} : Readiness{false, "kubernetes lists not synced"}; };
    struct Row {
        http::verb method;
        const char* target;
        bool ready;
        unsigned status;
        const char* body;
    } rows[] = {
        {http::verb::get, "/healthz", false, 200, "ok\n"},
        {http::verb::get, "/healthz?verbose", true, 200, "ok\n"},
        {http::verb::get, "/readyz", true, 200, "ok\n"},
        {http::verb::get, "/readyz", false, 503, "not ready: kubernetes lists not synced\n"},
        {http::verb::get, "/metrics", false, 200, "podid_up 1\n"},
        {http::verb::head, "/metrics", true, 200, ""},
        {http::verb::post, "/metrics", true, 405, "method not allowed\n"},
        {http::verb::get, "/", true, 404, "not found\n"},
        {http::verb::get, "/metrics/", true, 404, "not found\n"},
        {http::verb::get, "/metadata/identity/oauth2/token", true, 404, "not found\n"},
    };
    for (const auto& r : rows) {
        ready = r.ready;
        AdminRequest req{r.method, r.target, 11};
        auto res = admin_response(req, h);
        EXPECT_EQ(res.result_int(), r.status) << r.target;
        EXPECT_EQ(res.body(), r.body) << r.target;
    }
    AdminRequest head{http::verb::head, "/metrics", 11};
    EXPECT_EQ(admin_response(head, h)[http::field::content_length], "11");
    AdminRequest get{http::verb::get, "/metrics", 11};
    EXPECT_EQ(admin_response(get, h)[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
}

TEST(AdminHttp, ParseListenAddressTable) {
    struct Row {
        const char* text;
        bool ok;
        const char* address;
        uint16_t port;
    } rows[] = {
        {"0.0.0.0:9090", true, "0.0.0.0", 9090},
        {"127.0.0.1:0", true, "127.0.0.1", 0},
        {"[::]:9090", true, "::", 9090},
        {":9090", true, "0.0.0.0", 9090},
        {"9090", false, "", 0},
        {"1.2.3.4:", false, "", 0},
        {"1.2.3.4:70000", false, "", 0},
        {"host:80", false, "", 0},
        {"1.2.3.4:80x", false, "", 0},
    };
    for (const auto& r : rows) {
        auto got = parse_listen_address(r.text);
        ASSERT_EQ(got.ok(), r.ok) << r.text;
        if (r.ok) {
            EXPECT_EQ(got->address().to_string(), r.address) << r.text;
            EXPECT_EQ(got->port(), r.port) << r.text;
        }
    }
}

TEST(AdminHttp, ServesOverLoopback) {
    RunningAdmin admin;
    admin.metrics.on_request(token_record("team-a", "web-1", 200, Reason::ok_bound_identity));
    EXPECT_EQ(http_get(admin.ep, "/healthz").status, 200u);
    auto r = http_get(admin.ep, "/readyz");
    EXPECT_EQ(r.status, 503u);
    EXPECT_EQ(r.body, "not ready: test\n");
    admin.ready = true;
    EXPECT_EQ(http_get(admin.ep, "/readyz").status, 200u);
    auto m = http_get(admin.ep, "/metrics");
    EXPECT_EQ(m.status, 200u);
    EXPECT_EQ(
        sample(m.body,
               R"(podid_token_requests_total{code="200",identity="client_id=aaaa",namespace="team-a",pod="web-1"})"),
        1);
}

}  // namespace
}  // namespace podid
