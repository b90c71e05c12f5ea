// The HTTP server's sessions (http/server.h) with fake stages on 127.0.0.1 and a real HTTP client: what each request
// looks up (caller once per connection, then refreshed; binding; /host/token authority), what it answers, and the
// record the audit log and metrics receive. The decisions themselves are imds_handler_test.cpp's.
#include "http/server.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "observe/audit.h"
#include "token/token_fingerprint.h"

namespace podid {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

const std::string kSecret = "eyJ0eXAiOiJKV1Qi.secret-access-token.sig";  // must never reach a record
const Identity kA{"11111111-aaaa-4aaa-aaaa-aaaaaaaaaaaa", "", "", "id-a"};
const Identity kB{"22222222-bbbb-4bbb-bbbb-bbbbbbbbbbbb", "", "", "id-b"};
const Origin kOrigin{4242, 77, "python3", "169.254.169.254:80", true, 0};
const std::string kPodCgroup = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice";
const std::string kTok = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net";
const std::string kHostTok = "/host/token/?resource=https://vault.azure.net";
const Headers kMeta = {{"Metadata", "true"}};
const Headers kPod = {{"podns", "default"}, {"podname", "web-0"}};

enum class Authority { none, refuses, allows };
enum class Upstream { miss, hit, unavailable };

// What the stages were asked, from the server's thread; read by the test once the answers are in.
struct Seen {
    std::mutex mu;
    int resolve = 0, refresh = 0, bindings = 0, authorised = 0, binding_of = 0, tokens = 0, forwards = 0;
    std::vector<bool> may_wait;  // per resolve() or refresh(), in order
    std::string named_pod;       // binding_of's "ns/name"
    std::vector<TokenKey> keys;
    std::vector<AuditRecord> records;
};

class FakeOrigins : public OriginSource {
public:
    explicit FakeOrigins(bool recorded) : recorded_(recorded) {}
    std::optional<Origin> origin_of(const sockaddr_storage&, const sockaddr_storage&) const override {
        return recorded_ ? std::optional(kOrigin) : std::nullopt;
    }

private:
    bool recorded_;
};

class FakeCallers : public CallerResolver {
public:
    explicit FakeCallers(Seen& seen) : seen_(seen) {}
    asio::awaitable<Caller> resolve(std::optional<Origin> origin, bool may_wait) override {
        {
            std::lock_guard lock(seen_.mu);
            ++seen_.resolve;
            seen_.may_wait.push_back(may_wait);
        }
        Caller c;
        c.origin = origin;
        if (origin) {
            c.cgroup_path = kPodCgroup;
            c.pod_ref = PodRef{"1234", "", "", "besteffort"};
            c.pod = PodInfo{"shop", "web", "1234", "web-sa", "n1", false, {}};
        }
        co_return c;
    }
    asio::awaitable<Caller> refresh(Caller cached, bool may_wait) override {
        {
            std::lock_guard lock(seen_.mu);
            ++seen_.refresh;
            seen_.may_wait.push_back(may_wait);
        }
        co_return cached;
    }

private:
    Seen& seen_;
};

class FakeBindings : public BindingSource {
public:
    FakeBindings(Seen& seen, Binding binding) : seen_(seen), binding_(std::move(binding)) {}
    Binding bindings_for(const Caller&) const override {
        std::lock_guard lock(seen_.mu);
        ++seen_.bindings;
        return binding_;
    }
    bool ready() const override { return true; }

private:
    Seen& seen_;
    Binding binding_;
};

class FakeHostTokens : public HostTokenAuthority {
public:
    FakeHostTokens(Seen& seen, bool allows, std::optional<Binding> pods_binding)
        : seen_(seen), allows_(allows), pods_binding_(std::move(pods_binding)) {}
    bool authorised(const Caller&) const override {
        std::lock_guard lock(seen_.mu);
        ++seen_.authorised;
        return allows_;
    }
    asio::awaitable<std::optional<Binding>> binding_of(const std::string& ns, const std::string& name) override {
        {
            std::lock_guard lock(seen_.mu);
            ++seen_.binding_of;
            seen_.named_pod = ns + "/" + name;
        }
        co_return pods_binding_;
    }

private:
    Seen& seen_;
    bool allows_;
    std::optional<Binding> pods_binding_;
};

class FakeTokens : public TokenProvider {
public:
    FakeTokens(Seen& seen, Upstream upstream) : seen_(seen), upstream_(upstream) {}
    asio::awaitable<TokenOutcome> get(TokenKey key, bool) override {
        {
            std::lock_guard lock(seen_.mu);
            ++seen_.tokens;
            seen_.keys.push_back(key);
        }
        TokenOutcome out;
        if (upstream_ == Upstream::unavailable) {
            out.status = 503;
            co_return out;
        }
        auto token = std::make_shared<Token>();
        token->access_token = kSecret;
        token->client_id = key.client_id;
        token->resource = key.resource;
        token->expires_on = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch() + std::chrono::hours(1))
                                .count();
        out.token = std::move(token);
        out.cache_hit = upstream_ == Upstream::hit;
        co_return out;
    }

private:
    Seen& seen_;
    Upstream upstream_;
};

class FakeForwarder : public Forwarder {
public:
    explicit FakeForwarder(Seen& seen) : seen_(seen) {}
    asio::awaitable<HttpResponse> forward(const HttpRequest& req) override {
        {
            std::lock_guard lock(seen_.mu);
            ++seen_.forwards;
        }
        HttpResponse res{http::status::ok, req.version()};
        res.keep_alive(req.keep_alive());
        res.body() = "forwarded " + std::string(req.target());
        res.prepare_payload();
        co_return res;
    }

private:
    Seen& seen_;
};

class RecordingSink : public RequestSink {
public:
    explicit RecordingSink(Seen& seen) : seen_(seen) {}
    void on_request(const AuditRecord& record) override {
        std::lock_guard lock(seen_.mu);
        seen_.records.push_back(record);
    }

private:
    Seen& seen_;
};

struct Req {
    http::verb method;
    std::string target;
    Headers headers;
};

// One connection, the requests in turn (keep-alive), each answer read before the next request is sent.
std::vector<HttpResponse> send_on_one_connection(const tcp::endpoint& ep, const std::vector<Req>& reqs) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(ep);
    timeval five_seconds{5, 0};  // a hung server fails the test instead of blocking it
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &five_seconds, sizeof five_seconds);
    boost::beast::flat_buffer buffer;
    std::vector<HttpResponse> out;
    for (const Req& r : reqs) {
        HttpRequest req{r.method, r.target, 11};
        req.set(http::field::host, "169.254.169.254");
        for (const auto& [name, value] : r.headers)
            req.insert(name, value);
        http::write(s, req);
        HttpResponse res;
        http::read(s, buffer, res);
        out.push_back(std::move(res));
    }
    return out;
}

// A server with the row's stages on one I/O thread, listening on 127.0.0.1 as the node or the loopback listener.
struct RunningServer {
    Seen seen;
    FakeOrigins origins;
    FakeCallers callers{seen};
    FakeBindings bindings;
    FakeHostTokens host_tokens;
    FakeTokens tokens;
    FakeForwarder forwarder{seen};
    RecordingSink sink{seen};
    asio::io_context io{1};
    std::optional<Server> server;
    tcp::endpoint ep;
    std::thread thread;

    RunningServer(bool loopback, bool origin, Binding binding, Authority authority, Upstream upstream,
                  std::optional<Binding> named_pods_binding)
        : origins(origin),
          bindings(seen, std::move(binding)),
          host_tokens(seen, authority == Authority::allows, std::move(named_pods_binding)),
          tokens(seen, upstream) {
        ServerDeps deps;
        deps.origins = &origins;
        deps.callers = &callers;
        deps.bindings = &bindings;
        deps.tokens = &tokens;
        deps.forwarder = &forwarder;
        deps.host_tokens = authority == Authority::none ? nullptr : &host_tokens;
        deps.sinks = {&sink};
        server.emplace(std::vector<asio::io_context*>{&io}, deps, HandlerOptions{}, ServerLimits{});
        auto bound = server->listen(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), loopback);
        if (!bound)
            throw std::runtime_error(bound.error().message);
        ep = *bound;
        thread = std::thread([this] {
            auto work = asio::make_work_guard(io);
            io.run();
        });
    }
    ~RunningServer() {
        server->shutdown();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (server->connections() > 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        io.stop();
        thread.join();
    }
};

// The answer and the record of one request.
struct Want {
    unsigned status;
    std::string body_part;  // a fragment of the body
    RequestKind kind;
    Reason reason;
    std::string granted = "";
    std::string cache = "";
    bool token = false;        // served a token: the body carries it, the record only its fingerprint
    std::string binding = "";  // the record's binding text
    std::string target_pod = "";
};

struct Calls {
    int resolve = 0, refresh = 0, bindings = 0, authorised = 0, binding_of = 0, tokens = 0, forwards = 0;
    std::vector<bool> may_wait = {};
};

struct Row {
    const char* name;
    bool loopback = false;  // the 127.0.0.1 listener (where /host/token lives) rather than the node's
    bool origin = true;     // the kernel recorded the connection
    Binding binding = Binding{BindingKind::static_file, {kA}, "bindings entry 1"};
    Authority authority = Authority::none;
    std::optional<Binding> named_pods_binding = Binding{BindingKind::aad_pod_identity, {kB}, "pod default/web-0"};
    Upstream upstream = Upstream::miss;
    std::vector<Req> requests;  // on one connection
    std::vector<Want> want;     // per request
    Calls calls;
};

// Runs one row: a fresh server with the row's stages, the requests on one connection, then every expectation.
void check_row(const Row& row) {
    SCOPED_TRACE(row.name);
    ASSERT_EQ(row.requests.size(), row.want.size());
    RunningServer s(row.loopback, row.origin, row.binding, row.authority, row.upstream, row.named_pods_binding);
    const std::vector<HttpResponse> answers = send_on_one_connection(s.ep, row.requests);

    std::lock_guard lock(s.seen.mu);
    ASSERT_EQ(s.seen.records.size(), row.want.size());
    for (size_t i = 0; i < row.want.size(); ++i) {
        SCOPED_TRACE("request " + std::to_string(i + 1));
        const Want& want = row.want[i];
        const HttpResponse& res = answers[i];
        const AuditRecord& rec = s.seen.records[i];
        EXPECT_EQ(res.result_int(), want.status);
        EXPECT_NE(res.body().find(want.body_part), std::string::npos) << res.body();
        EXPECT_TRUE(res.keep_alive());

        EXPECT_EQ(rec.status, want.status);
        EXPECT_STREQ(to_string(rec.kind), to_string(want.kind));
        EXPECT_STREQ(to_string(rec.reason), to_string(want.reason));
        EXPECT_EQ(rec.listener, row.loopback ? "loopback" : "node");
        EXPECT_EQ(rec.method, "GET");
        EXPECT_FALSE(rec.path.empty());
        EXPECT_EQ(row.requests[i].target.rfind(rec.path, 0), 0u) << rec.path;  // normalised, no query
        // The caller the decision saw: resolved from the origin record, except by the self-check, which needs none.
        EXPECT_EQ(rec.caller.cgroup_path, row.origin && want.kind != RequestKind::selfcheck ? kPodCgroup : "");
        EXPECT_EQ(rec.granted_identity, want.granted);
        EXPECT_EQ(rec.cache, want.cache);
        EXPECT_EQ(rec.binding, want.binding);
        EXPECT_EQ(rec.target_pod, want.target_pod);
        EXPECT_EQ(rec.caller.origin.has_value(), row.origin);
        if (rec.caller.origin) {
            EXPECT_EQ(rec.caller.origin->cgroup_id, kOrigin.cgroup_id);
        }
        EXPECT_GE(rec.latency_ms, 0);
        EXPECT_GT(rec.time_ms, 0);
        if (want.token) {
            const Json body = Json::parse(res.body());
            const Json& token = want.kind == RequestKind::host_token ? body.at("token") : body;
            EXPECT_EQ(token.at("access_token"), kSecret);
            EXPECT_EQ(rec.token_sha256, token_fingerprint(kSecret));
            EXPECT_GT(rec.token_expires_on, 0);
        } else {
            EXPECT_EQ(rec.token_sha256, "");
        }
        // The token itself never reaches the record, in any field.
        EXPECT_EQ(to_json_line(rec).find("secret-access-token"), std::string::npos) << to_json_line(rec);
    }
    EXPECT_EQ(s.seen.resolve, row.calls.resolve);
    EXPECT_EQ(s.seen.refresh, row.calls.refresh);
    EXPECT_EQ(s.seen.may_wait, row.calls.may_wait);
    EXPECT_EQ(s.seen.bindings, row.calls.bindings);
    EXPECT_EQ(s.seen.authorised, row.calls.authorised);
    EXPECT_EQ(s.seen.binding_of, row.calls.binding_of);
    if (row.calls.binding_of > 0) {
        EXPECT_EQ(s.seen.named_pod, "default/web-0");
    }
    EXPECT_EQ(s.seen.tokens, row.calls.tokens);
    EXPECT_EQ(s.seen.forwards, row.calls.forwards);
    for (const TokenKey& key : s.seen.keys) {
        EXPECT_EQ(key.resource, "https://vault.azure.net");
        EXPECT_EQ(key.client_id, row.authority == Authority::allows ? kB.client_id : kA.client_id);
    }
}

TEST(Server, SessionsLookUpAnswerAndRecord) {
    const auto GET = http::verb::get;
    const std::string kBound = "static_file: bindings entry 1";
    const std::vector<Row> rows = {
        {.name = "token served",
         .requests = {{GET, kTok, kMeta}},
         .want = {{200, "\"access_token\"", RequestKind::token, Reason::ok_bound_identity, "client_id=" + kA.client_id,
                   "miss", true, kBound}},
         .calls = {.resolve = 1, .bindings = 1, .tokens = 1, .may_wait = {true}}},
        {.name = "token from the cache",
         .upstream = Upstream::hit,
         .requests = {{GET, kTok, kMeta}},
         .want = {{200, "\"access_token\"", RequestKind::token, Reason::ok_bound_identity, "client_id=" + kA.client_id,
                   "hit", true, kBound}},
         .calls = {.resolve = 1, .bindings = 1, .tokens = 1, .may_wait = {true}}},
        {.name = "upstream unavailable",
         .upstream = Upstream::unavailable,
         .requests = {{GET, kTok, kMeta}},
         .want = {{503, "server_error", RequestKind::token, Reason::error_unavailable, "", "miss", false, kBound}},
         .calls = {.resolve = 1, .bindings = 1, .tokens = 1, .may_wait = {true}}},
        {.name = "unbound",
         .binding = Binding{},
         .requests = {{GET, kTok, kMeta}},
         .want = {{400, "Identity not found", RequestKind::token, Reason::deny_no_binding, "", "", false, "none"}},
         .calls = {.resolve = 1, .bindings = 1, .may_wait = {true}}},
        {.name = "no origin record: no binding looked up",
         .origin = false,
         .requests = {{GET, kTok, kMeta}},
         .want = {{400, "Identity not found", RequestKind::token, Reason::deny_no_origin, "", "", false, "none"}},
         .calls = {.resolve = 1, .may_wait = {true}}},
        {.name = "keep-alive: resolved once, then refreshed",
         .requests = {{GET, kTok, kMeta}, {GET, kTok, kMeta}},
         .want = {{200, "\"access_token\"", RequestKind::token, Reason::ok_bound_identity, "client_id=" + kA.client_id,
                   "miss", true, kBound},
                  {200, "\"access_token\"", RequestKind::token, Reason::ok_bound_identity, "client_id=" + kA.client_id,
                   "miss", true, kBound}},
         .calls = {.resolve = 1, .refresh = 1, .bindings = 2, .tokens = 2, .may_wait = {true, true}}},
        {.name = "probe without Metadata: no wait, no binding",
         .requests = {{GET, kTok, {}}},
         .want = {{400, "Required metadata header not specified", RequestKind::probe, Reason::ok_probe, "", "", false,
                   "none"}},
         .calls = {.resolve = 1, .may_wait = {false}}},
        {.name = "probe, then the identity request on the same connection",
         .requests = {{GET, kTok, {}}, {GET, kTok, kMeta}},
         .want = {{400, "Required metadata header not specified", RequestKind::probe, Reason::ok_probe, "", "", false,
                   "none"},
                  {200, "\"access_token\"", RequestKind::token, Reason::ok_bound_identity, "client_id=" + kA.client_id,
                   "miss", true, kBound}},
         .calls = {.resolve = 1, .refresh = 1, .bindings = 1, .tokens = 1, .may_wait = {false, true}}},
        {.name = "self-check answered from the origin record alone",
         .requests = {{GET, "/_podid/selfcheck", {}}},
         .want = {{200, "podid-selfcheck cgroup=4242", RequestKind::selfcheck, Reason::ok_probe}},
         .calls = {}},
        {.name = "self-check without an origin record",
         .origin = false,
         .requests = {{GET, "/_podid/selfcheck", {}}},
         .want = {{200, "podid-selfcheck cgroup=0", RequestKind::selfcheck, Reason::ok_probe}},
         .calls = {}},
        {.name = "instance metadata forwarded",
         .requests = {{GET, "/metadata/instance?api-version=2021-02-01", kMeta}},
         .want = {{200, "forwarded /metadata/instance?api-version=2021-02-01", RequestKind::instance_metadata,
                   Reason::ok_forwarded, "", "", false, "none"}},
         .calls = {.resolve = 1, .forwards = 1, .may_wait = {false}}},
        {.name = "host token: authority refuses the caller",
         .loopback = true,
         .authority = Authority::refuses,
         .requests = {{GET, kHostTok, kPod}},
         .want = {{403, "caller is not allowed to request tokens for other pods", RequestKind::host_token,
                   Reason::deny_host_token_caller, "", "", false, "", "default/web-0"}},
         .calls = {.resolve = 1, .authorised = 1, .may_wait = {true}}},
        {.name = "host token: authority allows, the named pod's identity",
         .loopback = true,
         .authority = Authority::allows,
         .requests = {{GET, kHostTok, kPod}},
         .want = {{200, "\"clientid\"", RequestKind::host_token, Reason::ok_bound_identity, "client_id=" + kB.client_id,
                   "miss", true, "aad_pod_identity: pod default/web-0", "default/web-0"}},
         .calls = {.resolve = 1, .authorised = 1, .binding_of = 1, .tokens = 1, .may_wait = {true}}},
        {.name = "host token: allowed, named pod unknown",
         .loopback = true,
         .authority = Authority::allows,
         .named_pods_binding = std::nullopt,
         .requests = {{GET, kHostTok, kPod}},
         .want = {{404, "Identity not found", RequestKind::host_token, Reason::deny_host_token_pod, "", "", false,
                   "none", "default/web-0"}},
         .calls = {.resolve = 1, .authorised = 1, .binding_of = 1, .may_wait = {true}}},
        {.name = "host token: standalone mode has no authority",
         .loopback = true,
         .requests = {{GET, kHostTok, kPod}},
         .want = {{404, "/host/token is served only in Kubernetes mode", RequestKind::host_token, Reason::deny_path, "",
                   "", false, "", ""}},
         .calls = {.resolve = 1, .may_wait = {true}}},
        {.name = "host token on the node listener",
         .authority = Authority::allows,
         .requests = {{GET, kHostTok, kPod}},
         .want = {{404, "Not found", RequestKind::host_token, Reason::deny_path, "", "", false, "none"}},
         .calls = {.resolve = 1, .may_wait = {false}}},
    };
    for (const Row& row : rows) {
        check_row(row);
    }
}

// The self-check needs no caller and leaves the connection's caller unresolved: a later request on the same
// connection gets resolve(), not refresh() of the bare origin record (which would decide it with no cgroup path and
// no pod, denying a pod its identity).
TEST(Server, SelfCheckThenTokenOnOneConnection) {
    const auto GET = http::verb::get;
    check_row(Row{.name = "self-check, then a token request on the same connection",
                  .requests = {{GET, "/_podid/selfcheck", {}}, {GET, kTok, kMeta}},
                  .want = {{200, "podid-selfcheck cgroup=4242", RequestKind::selfcheck, Reason::ok_probe},
                           {200, "\"access_token\"", RequestKind::token, Reason::ok_bound_identity,
                            "client_id=" + kA.client_id, "miss", true, "static_file: bindings entry 1"}},
                  .calls = {.resolve = 1, .bindings = 1, .tokens = 1, .may_wait = {true}}});
}

}  // namespace
}  // namespace podid
