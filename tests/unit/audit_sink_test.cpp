// Which requests reach the audit log (observe/audit_sink.h): every identity request (token, /host/token), any other
// kind only when it was denied; and the sink writing them to a real AuditLog file.
#include "observe/audit_sink.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "temp_dir.h"

namespace podid {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

AuditRecord record_of(RequestKind kind, Reason reason, std::string path = "/p") {
    AuditRecord r;
    r.kind = kind;
    r.reason = reason;
    r.path = std::move(path);
    r.status = 200;
    return r;
}

TEST(Audited, KindAndReason) {
    struct Row {
        RequestKind kind;
        Reason reason;
        bool audited;
    };
    const std::vector<Row> rows = {
        {RequestKind::token, Reason::ok_bound_identity, true},
        {RequestKind::token, Reason::ok_node_identity, true},
        {RequestKind::token, Reason::deny_no_binding, true},
        {RequestKind::token, Reason::error_upstream, true},
        {RequestKind::token, Reason::error_unavailable, true},
        {RequestKind::host_token, Reason::ok_bound_identity, true},
        {RequestKind::host_token, Reason::deny_host_token_caller, true},
        {RequestKind::host_token, Reason::deny_path, true},
        {RequestKind::probe, Reason::ok_probe, false},
        {RequestKind::probe, Reason::deny_rate_limited, true},
        {RequestKind::instance_metadata, Reason::ok_forwarded, false},
        {RequestKind::instance_metadata, Reason::deny_instance_blocked, true},
        {RequestKind::other_metadata, Reason::ok_forwarded, false},
        {RequestKind::other_metadata, Reason::deny_missing_metadata, true},
        {RequestKind::other_metadata, Reason::error_upstream, false},  // a failure, not a decision
        {RequestKind::health, Reason::ok_probe, false},
        {RequestKind::health, Reason::deny_rate_limited, true},
        {RequestKind::unknown, Reason::deny_path, true},
        {RequestKind::selfcheck, Reason::ok_probe, false},
        {RequestKind::selfcheck, Reason::deny_rate_limited, true},
    };
    for (const Row& row : rows) {
        EXPECT_EQ(audited(record_of(row.kind, row.reason)), row.audited)
            << to_string(row.kind) << " " << to_string(row.reason);
    }
}

// Every kind against every reason code: identity requests always, the rest exactly when the reason is a deny_ code.
TEST(Audited, EveryKindAndReason) {
    const std::vector<RequestKind> kinds = {
        RequestKind::token,          RequestKind::probe,  RequestKind::host_token, RequestKind::instance_metadata,
        RequestKind::other_metadata, RequestKind::health, RequestKind::unknown,    RequestKind::selfcheck};
    for (RequestKind kind : kinds) {
        const bool identity = kind == RequestKind::token || kind == RequestKind::host_token;
        // Every code there is: to_string names each, "unknown" is past the last.
        int codes = 0;
        for (int code = 0; code < 1000 && std::string(to_string(static_cast<Reason>(code))) != "unknown"; ++code) {
            const auto reason = static_cast<Reason>(code);
            const bool deny = std::string(to_string(reason)).rfind("deny_", 0) == 0;
            EXPECT_EQ(audited(record_of(kind, reason)), identity || deny)
                << to_string(kind) << " " << to_string(reason);
            ++codes;
        }
        EXPECT_GT(codes, static_cast<int>(Reason::deny_rate_limited));
    }
}

std::vector<Json> read_lines(const std::string& path) {
    std::vector<Json> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        out.push_back(Json::parse(line));
    return out;
}

// The sink in front of a real log file: what it passes on is written, in order, and nothing else.
TEST(AuditSink, WritesOnlyAuditedRecordsToTheLog) {
    test::TempDir dir("podid-auditsink");
    const std::string path = (dir.path / "audit.log").string();
    auto log = AuditLog::open(path, AuditLogOptions{.flush_interval = 1h});
    ASSERT_TRUE(log.ok()) << log.error().message;
    AuditSink sink(**log);

    struct Row {
        RequestKind kind;
        Reason reason;
        std::string path;
        bool written;
    };
    const std::vector<Row> rows = {
        {RequestKind::token, Reason::ok_bound_identity, "/metadata/identity/oauth2/token", true},
        {RequestKind::probe, Reason::ok_probe, "/metadata/identity/oauth2/token", false},
        {RequestKind::other_metadata, Reason::ok_forwarded, "/metadata/versions", false},
        {RequestKind::instance_metadata, Reason::deny_instance_blocked, "/metadata/instance", true},
        {RequestKind::health, Reason::ok_probe, "/healthz", false},
        {RequestKind::host_token, Reason::deny_host_token_caller, "/host/token", true},
        {RequestKind::selfcheck, Reason::ok_probe, "/_podid/selfcheck", false},
        {RequestKind::unknown, Reason::deny_path, "/nothing", true},
    };
    std::vector<const Row*> want;
    for (const Row& row : rows) {
        sink.on_request_begin();
        sink.on_connection(+1);
        sink.on_request(record_of(row.kind, row.reason, row.path));
        if (row.written)
            want.push_back(&row);
    }
    (*log)->flush();
    const auto lines = read_lines(path);
    ASSERT_EQ(lines.size(), want.size());
    for (size_t i = 0; i < lines.size(); ++i) {
        EXPECT_EQ(lines[i]["kind"], to_string(want[i]->kind)) << i;
        EXPECT_EQ(lines[i]["reason"], to_string(want[i]->reason)) << i;
        EXPECT_EQ(lines[i]["path"], want[i]->path) << i;
    }
    EXPECT_EQ((*log)->dropped_lines(), 0u);
}

}  // namespace
}  // namespace podid
