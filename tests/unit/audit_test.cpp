// The audit log: the hand-written JSON line (against nlohmann's reading of it, on nasty strings) and the batching
// writer (order, flush, SIGHUP-style reopen, drop-and-count when the queue is full, nothing lost at exit).
#include "observe/audit.h"
#include "common/json_writer.h"
#include "observe/audit_metrics.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace podid {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

std::string dumped(const std::string& s) { return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string written(const std::string& s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

// Valid UTF-8 of every kind: must read back unchanged and be written byte for byte as nlohmann writes it.
TEST(JsonString, ValidStringsRoundTripAndMatchNlohmann) {
    const std::vector<std::string> rows = {
        "",
        "plain",
        "quote \" and backslash \\ and slash /",
        std::string("nul \0 inside", 12),
        "\b\f\n\r\t",
        "\x01\x02\x1f\x7f",
        "\xc3\xa9t\xc3\xa9",  // é (2 bytes)
        "\xe2\x82\xac",       // € (3 bytes)
        "\xf0\x9f\x94\x91",   // 🔑 (4 bytes)
        "\xef\xbb\xbf"
        "bom",                                       // BOM
        "\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf",  // edges: U+D7FF, U+E000, U+10FFFF
        "\\u0041 is not decoded",
        "\"}],\"injected\":true,{\"",
    };
    for (const auto& s : rows) {
        const std::string out = written(s);
        EXPECT_EQ(out, dumped(s)) << s;
        Json back = Json::parse(out);
        EXPECT_EQ(back.get<std::string>(), s);
    }
}

// Ill-formed UTF-8 becomes U+FFFD as nlohmann's error_handler_t::replace does, and the result still parses.
TEST(JsonString, InvalidUtf8IsReplacedLikeNlohmann) {
    const std::vector<std::string> rows = {
        "\x80",  // lone continuation
        "a\xbf"
        "b",
        "\xc0\xaf",          // overlong '/'
        "\xc3",              // truncated 2-byte at the end
        "\xc3x",             // truncated before ASCII
        "\xe2\x82",          // truncated 3-byte
        "\xe2\x82x\xe2",     // truncated twice
        "\xed\xa0\x80",      // UTF-16 surrogate
        "\xf0\x8f\xbf\xbf",  // overlong 4-byte
        "\xf4\x90\x80\x80",  // above U+10FFFF
        "\xf5\xff\xfe",      // never valid bytes
        "\xf0\x9f\x94",      // truncated 4-byte
        "ok\xf0\x9f\x94\x91\x80ok",
    };
    for (const auto& s : rows) {
        const std::string out = written(s);
        EXPECT_EQ(out, dumped(s)) << "row of " << s.size() << " bytes";
        EXPECT_FALSE(Json::parse(out, nullptr, false).is_discarded());
    }
}

// The escapes, pinned as text (one row per kind of byte), independently of nlohmann.
TEST(JsonString, EscapeTable) {
    struct Row {
        std::string in;
        std::string want;
    } rows[] = {
        {"", R"("")"},
        {"plain text / path?x=1&y=2", R"("plain text / path?x=1&y=2")"},
        {"\"", R"("\"")"},
        {"a\"b\"", R"("a\"b\"")"},
        {"\\", R"("\\")"},
        {"C:\\dir\\", R"("C:\\dir\\")"},
        {"\b\f\n\r\t", R"("\b\f\n\r\t")"},
        {std::string("\0", 1), R"("\u0000")"},
        {"\x01\x0b\x1f", R"("\u0001\u000b\u001f")"},
        {"\x7f~ ", "\"\x7f~ \""},  // DEL and edges of ASCII: as is
        {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91\""},  // UTF-8 as is
        {"\xff", "\"\xef\xbf\xbd\""},                                                          // invalid: U+FFFD
        {"a\xe2\x82z", "\"a\xef\xbf\xbdz\""},                                                  // truncated: one U+FFFD
        {"0123456789abcdef\n", R"("0123456789abcdef\n")"},                                     // after two whole words
        {"01234567\"89abcdef", R"("01234567\"89abcdef")"},                                     // at a word boundary
    };
    for (const auto& r : rows) {
        EXPECT_EQ(written(r.in), r.want) << r.want;
        std::string out = "prefix:";  // appends; what was there stays
        append_json_string(out, r.in);
        EXPECT_EQ(out, "prefix:" + r.want);
    }
}

// Each byte that needs care, at every offset of strings of up to 3 words: the 8-byte scan must find it wherever it
// is, and the output must be nlohmann's.
TEST(JsonString, SpecialBytesAtEveryOffset) {
    const std::vector<std::string> specials = {"\"",
                                               "\\",
                                               "\n",
                                               "\x01",
                                               "\x1f",
                                               std::string("\0", 1),
                                               "\x80",
                                               "\xff",
                                               "\xc3\xa9",
                                               "\xe2\x82\xac",
                                               "\xf0\x9f\x94\x91",
                                               "\xe2\x82"};
    for (size_t len = 0; len <= 24; ++len) {
        for (size_t at = 0; at <= len; ++at) {
            for (const auto& special : specials) {
                std::string s(len, 'x');
                s.insert(at, special);
                ASSERT_EQ(written(s), dumped(s)) << "length " << len << ", special at " << at;
            }
        }
    }
}

// Strings made only of bytes that grow the most: the room reserved for them must hold the worst case.
TEST(JsonString, WorstCaseGrowth) {
    const std::vector<std::string> rows = {std::string(1000, '\x01'), std::string(1000, '\xff'), std::string(1000, '"'),
                                           std::string(999, '\xe2')};
    for (const auto& s : rows) {
        std::string out;
        append_json_string(out, s);
        EXPECT_EQ(out, dumped(s));
        std::string field;
        JsonObjectWriter(field).field(s, s).end();
        EXPECT_EQ(field, "{" + dumped(s) + ":" + dumped(s) + "}");
    }
}

// Keys are escaped like values, nested objects close where they should, and a writer appends to what is there.
TEST(JsonWriter, KeysNestingAndAppending) {
    std::string out = "[";
    JsonObjectWriter j(out);
    j.field("we\"ird\n", "v").null_field("n");
    JsonObjectWriter inner = j.object("in");
    inner.field("t", true).field("k", "");
    inner.end();
    JsonObjectWriter empty = j.object("empty");
    empty.end();
    j.field("after", int64_t{-1});
    j.end();
    EXPECT_EQ(out, R"([{"we\"ird\n":"v","n":null,"in":{"t":true,"k":""},"empty":{},"after":-1})");
}

struct NumberRow {
    double value;
    std::string want;  // as JSON text
};

TEST(JsonWriter, Numbers) {
    const std::vector<NumberRow> rows = {
        {0.0, "0.0"},
        {2.0, "2.0"},
        {0.25, "0.25"},
        {1.5e-7, "1.5e-07"},
        {1234.5678, "1234.5678"},
        {std::numeric_limits<double>::quiet_NaN(), "null"},
        {std::numeric_limits<double>::infinity(), "null"},
    };
    for (const auto& row : rows) {
        std::string out;
        JsonObjectWriter(out).field("v", row.value).end();
        EXPECT_EQ(out, "{\"v\":" + row.want + "}") << row.value;
        Json back = Json::parse(out);
        if (std::isfinite(row.value))
            EXPECT_DOUBLE_EQ(back["v"].get<double>(), row.value);
        else
            EXPECT_TRUE(back["v"].is_null());
    }
    std::string out;
    JsonObjectWriter(out)
        .field("i", int64_t{-9223372036854775807LL - 1})
        .field("u", uint64_t{18446744073709551615ULL})
        .field("b", false)
        .end();
    Json back = Json::parse(out);
    EXPECT_EQ(back["i"].get<int64_t>(), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(back["u"].get<uint64_t>(), std::numeric_limits<uint64_t>::max());
    EXPECT_EQ(back["b"], false);
}

AuditRecord nasty_record() {
    AuditRecord r;
    r.time_ms = 1732838400123;
    r.listener = "node";
    r.method = "GET";
    r.path = "/metadata/identity/oauth2/token\"\n\\";
    r.kind = RequestKind::token;
    r.caller.origin = Origin{18446744073709551615ULL, 4242, "evil\"\x01\xff", "169.254.169.254:80", true};
    r.caller.cgroup_path = "/kubepods.slice/a\tb";
    r.caller.pod_ref = PodRef{"uid-1", "c0ffee", "containerd", "burstable"};
    r.caller.pod = PodInfo{"ns\xe2\x82\xac", "pod\\name", "uid-1", "sa", "node", true, {}};
    r.requested_identity = "client_id=\x7f";
    r.granted_identity = "client_id=abc";
    r.binding = "static: \"file\"";
    r.resource = "https://vault.azure.net\x80";
    r.target_pod = "ns/p";
    r.reason = Reason::ok_bound_identity;
    r.status = 200;
    r.latency_ms = 0.123;
    r.cache = "hit";
    r.token_expires_on = 1732842000;
    r.token_sha256 = "0123456789abcdef";
    return r;
}

// What the nlohmann version of to_json_line wrote, field for field: the reference the hand-written one must match.
nlohmann::ordered_json reference_line(const AuditRecord& r) {
    nlohmann::ordered_json j;
    j["time_ms"] = r.time_ms;
    j["decision"] = is_denial(r.reason) ? "deny" : "allow";
    j["reason"] = to_string(r.reason);
    j["status"] = r.status;
    j["kind"] = to_string(r.kind);
    j["method"] = r.method;
    j["path"] = r.path;
    j["listener"] = r.listener;
    nlohmann::ordered_json caller;
    if (r.caller.origin) {
        caller["cgroup_id"] = r.caller.origin->cgroup_id;
        caller["pid"] = r.caller.origin->pid;
        caller["comm"] = r.caller.origin->comm;
        caller["orig_dst"] = r.caller.origin->orig_dst;
    } else {
        caller["origin"] = nullptr;
    }
    caller["cgroup"] = r.caller.cgroup_path;
    if (r.caller.pod_ref) {
        caller["pod_uid"] = r.caller.pod_ref->uid;
        caller["container_id"] = r.caller.pod_ref->container_id;
    }
    if (r.caller.pod) {
        caller["namespace"] = r.caller.pod->ns;
        caller["pod"] = r.caller.pod->name;
        caller["service_account"] = r.caller.pod->service_account;
        caller["host_network"] = r.caller.pod->host_network;
    }
    j["caller"] = caller;
    if (!r.target_pod.empty())
        j["target_pod"] = r.target_pod;
    j["requested_identity"] = r.requested_identity;
    j["granted_identity"] = r.granted_identity;
    j["binding"] = r.binding;
    j["resource"] = r.resource;
    j["latency_ms"] = r.latency_ms;
    if (!r.cache.empty())
        j["cache"] = r.cache;
    if (!r.token_sha256.empty()) {
        j["token_sha256"] = r.token_sha256;
        j["token_expires_on"] = r.token_expires_on;
    }
    return j;
}

TEST(AuditLine, SameTextAsTheNlohmannLine) {
    AuditRecord full = nasty_record();
    AuditRecord bare;  // no origin, no pod, no token: the optional parts left out
    bare.reason = Reason::deny_no_origin;
    bare.status = 400;
    bare.latency_ms = 2;
    for (const AuditRecord* r : {&full, &bare}) {
        const std::string line = to_json_line(*r);
        ASSERT_FALSE(line.empty());
        EXPECT_EQ(line.back(), '\n');
        EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << "one record, one line";
        EXPECT_EQ(line, reference_line(*r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    }
    Json back = Json::parse(to_json_line(full));
    EXPECT_EQ(back["caller"]["comm"], "evil\"\x01\xef\xbf\xbd");
    EXPECT_EQ(back["caller"]["cgroup_id"].get<uint64_t>(), 18446744073709551615ULL);
    EXPECT_EQ(back["decision"], "allow");
    EXPECT_TRUE(Json::parse(to_json_line(bare))["caller"]["origin"].is_null());
}

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/podid-audit-XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

std::vector<Json> read_lines(const std::string& path) {
    std::vector<Json> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        out.push_back(Json::parse(line));
    return out;
}

AuditRecord numbered(int64_t n) {
    AuditRecord r;
    r.time_ms = n;
    r.kind = RequestKind::token;
    r.reason = Reason::ok_bound_identity;
    r.status = 200;
    return r;
}

TEST(AuditLog, FlushWritesEveryLineInOrder) {
    TempDir dir;
    auto log = AuditLog::open(dir.file("audit.log"), AuditLogOptions{.flush_interval = 1h});
    ASSERT_TRUE(log.ok()) << log.error().message;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 1000; ++i)
                (*log)->write(numbered(t * 10000 + i));
        });
    for (auto& th : threads)
        th.join();
    (*log)->flush();
    auto lines = read_lines(dir.file("audit.log"));
    ASSERT_EQ(lines.size(), 2000u);
    int64_t last[2] = {-1, -1};
    for (const auto& j : lines) {
        int64_t n = j["time_ms"].get<int64_t>();
        int64_t& prev = last[n / 10000];
        EXPECT_GT(n, prev) << "each thread's lines keep their order";
        prev = n;
    }
    EXPECT_EQ((*log)->dropped_lines(), 0u);
}

// A quiet log writes its first line at once; it does not sit out the interval.
TEST(AuditLog, FirstLineAfterQuietGoesOutPromptly) {
    TempDir dir;
    auto log = AuditLog::open(dir.file("audit.log"), AuditLogOptions{.flush_interval = 1h});
    ASSERT_TRUE(log.ok());
    (*log)->write(numbered(1));
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (read_lines(dir.file("audit.log")).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    EXPECT_EQ(read_lines(dir.file("audit.log")).size(), 1u);
}

// Lines far apart (a test reading the file after each request) do not wait for the interval either.
TEST(AuditLog, SparseLinesAreWrittenAsTheyCome) {
    TempDir dir;
    auto log = AuditLog::open(dir.file("audit.log"), AuditLogOptions{.flush_interval = 1h});
    ASSERT_TRUE(log.ok());
    for (size_t n = 1; n <= 3; ++n) {
        std::this_thread::sleep_for(20ms);  // well past `quiet`
        (*log)->write(numbered(static_cast<int64_t>(n)));
        auto deadline = std::chrono::steady_clock::now() + 5s;
        while (read_lines(dir.file("audit.log")).size() < n && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(1ms);
        EXPECT_EQ(read_lines(dir.file("audit.log")).size(), n);
    }
}

TEST(AuditLog, ClosingWritesWhatIsQueued) {
    TempDir dir;
    {
        auto log = AuditLog::open(dir.file("audit.log"), AuditLogOptions{.flush_interval = 1h});
        ASSERT_TRUE(log.ok());
        for (int i = 0; i < 500; ++i)
            (*log)->write(numbered(i));
    }
    EXPECT_EQ(read_lines(dir.file("audit.log")).size(), 500u);
}

TEST(AuditLog, ReopenSendsQueuedLinesToTheRotatedFile) {
    TempDir dir;
    const std::string path = dir.file("audit.log");
    auto log = AuditLog::open(path, AuditLogOptions{.flush_interval = 1h});
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 10; ++i)
        (*log)->write(numbered(i));
    ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
    ASSERT_TRUE((*log)->reopen().ok());
    (*log)->write(numbered(100));
    (*log)->flush();
    EXPECT_EQ(read_lines(path + ".1").size(), 10u);
    auto fresh = read_lines(path);
    ASSERT_EQ(fresh.size(), 1u);
    EXPECT_EQ(fresh[0]["time_ms"], 100);
}

// A disk that does not keep up must never hold up the I/O threads: past the bound, lines are dropped and counted.
TEST(AuditLog, FullQueueDropsAndCounts) {
    TempDir dir;
    const std::string line = to_json_line(numbered(1));
    AuditLogOptions o;
    o.flush_interval = 1h;
    o.quiet = 1h;             // after its first write the writer sleeps through the test
    o.flush_bytes = 1 << 30;  // never woken by size
    o.max_pending_bytes = line.size() * 3;
    auto log = AuditLog::open(dir.file("audit.log"), o);
    ASSERT_TRUE(log.ok());
    // The first write wakes the idle writer; wait until it has written, so the queue is empty and the writer asleep.
    (*log)->write(numbered(1));
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (read_lines(dir.file("audit.log")).size() < 1 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    for (int i = 0; i < 10; ++i)
        (*log)->write(numbered(1));
    (*log)->flush();
    const size_t written_lines = read_lines(dir.file("audit.log")).size();
    EXPECT_EQ(written_lines + (*log)->dropped_lines(), 11u);
    EXPECT_GE((*log)->dropped_lines(), 7u);
    auto families = AuditMetrics(**log).Collect();
    ASSERT_EQ(families.size(), 1u);
    EXPECT_EQ(families[0].name, "podid_audit_lines_dropped_total");
    ASSERT_EQ(families[0].metric.size(), 1u);
    EXPECT_EQ(families[0].metric[0].counter.value, static_cast<double>((*log)->dropped_lines()));
}

TEST(AuditLog, DisabledWritesNothing) {
    auto log = AuditLog::open("");
    ASSERT_TRUE(log.ok());
    (*log)->write(numbered(1));
    (*log)->flush();
    EXPECT_EQ((*log)->dropped_lines(), 0u);
}

TEST(AuditLog, UnwritableDirectoryIsAnError) {
    auto log = AuditLog::open("/nonexistent-dir/audit.log");
    ASSERT_FALSE(log.ok());
    EXPECT_NE(log.error().message.find("/nonexistent-dir/audit.log"), std::string::npos);
}

}  // namespace
}  // namespace podid
