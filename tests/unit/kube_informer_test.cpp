// The HTTPS client and the list-then-watch loop against a minimal API server on 127.0.0.1:0 with a
// certificate made for the test: pages, watch events split across chunks, re-watch from the last
// resourceVersion, 410 relists, API Status errors, TLS verification, and recovery after an outage.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "kube/client.h"
#include "kube/informer.h"

namespace podid::kube {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using namespace std::chrono_literals;
using nlohmann::json;

// A self-signed certificate for 127.0.0.1, valid from an hour ago for a day, made fresh per run.
struct TestCertificate {
    std::string cert_pem;
    std::string key_pem;
};

TestCertificate make_certificate(const char* common_name) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name), -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    for (auto [nid, value] :
         {std::pair{NID_subject_alt_name, "IP:127.0.0.1"}, std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(cert, key, EVP_sha256());
    auto to_pem = [](auto write) {
        BIO* bio = BIO_new(BIO_s_mem());
        write(bio);
        char* data = nullptr;
        const long size = BIO_get_mem_data(bio, &data);
        std::string out(data, static_cast<std::size_t>(size));
        BIO_free(bio);
        return out;
    };
    TestCertificate out{to_pem([&](BIO* b) { PEM_write_bio_X509(b, cert); }), to_pem([&](BIO* b) {
                            PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
                        })};
    X509_free(cert);
    EVP_PKEY_free(key);
    return out;
}

// What the test API server answers to one request.
struct Reply {
    unsigned status = 200;
    std::vector<std::string> chunks;  // body pieces, each its own HTTP chunk
    bool hold = false;                // keep the stream open after the chunks until release() or the end
    bool abort = false;               // close the connection without the last chunk
};

std::string line(const json& j) { return j.dump() + "\n"; }

json pod_json(const std::string& name, const std::string& rv, const std::string& uid = "") {
    return json{
        {"metadata",
         {{"namespace", "ns"}, {"name", name}, {"uid", uid.empty() ? "uid-" + name : uid}, {"resourceVersion", rv}}},
        {"spec", {{"nodeName", "n1"}}}};
}

json list_json(const std::vector<json>& items, const std::string& rv, const std::string& cont = "") {
    json meta{{"resourceVersion", rv}};
    if (!cont.empty())
        meta["continue"] = cont;
    return json{{"kind", "PodList"}, {"apiVersion", "v1"}, {"metadata", meta}, {"items", items}};
}

json event(const char* type, const json& object) { return json{{"type", type}, {"object", object}}; }

json status_json(int code, const char* reason, const std::string& message) {
    return json{{"kind", "Status"},   {"apiVersion", "v1"}, {"status", "Failure"},
                {"message", message}, {"reason", reason},   {"code", code}};
}

Reply json_reply(const json& body, unsigned status = 200) { return Reply{status, {body.dump()}, false, false}; }

class TestApiServer {
public:
    using Handler = std::function<Reply(const std::string& target)>;

    TestApiServer(Handler handler, uint16_t port = 0,
                  TestCertificate certificate = make_certificate("podid-test-apiserver"))
        : handler_(std::move(handler)),
          certificate_(std::move(certificate)),
          tls_(ssl::context::tls_server),
          acceptor_(io_) {
        tls_.use_certificate_chain(asio::buffer(certificate_.cert_pem));
        tls_.use_private_key(asio::buffer(certificate_.key_pem), ssl::context::pem);
        const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(asio::socket_base::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        asio::co_spawn(io_, accept(), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }

    ~TestApiServer() {
        io_.stop();
        thread_.join();
    }

    uint16_t port() const { return port_; }
    const std::string& ca_pem() const { return certificate_.cert_pem; }

    std::vector<std::string> targets() const {
        std::lock_guard lock(mu_);
        return targets_;
    }
    std::vector<std::string> targets_with(const std::string& part) const {
        std::vector<std::string> out;
        for (auto& t : targets())
            if (t.find(part) != std::string::npos)
                out.push_back(t);
        return out;
    }
    std::string authorization() const {
        std::lock_guard lock(mu_);
        return authorization_;
    }
    // Ends every held stream with its last chunk: the clean end of a watch at timeoutSeconds.
    void release() {
        asio::post(io_, [this] {
            for (auto& weak : held_)
                if (auto timer = weak.lock())
                    timer->cancel();
            held_.clear();
        });
    }

private:
    asio::awaitable<void> accept() {
        for (;;) {
            boost::system::error_code ec;
            auto socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec)
                co_return;
            asio::co_spawn(io_, session(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> session(asio::ip::tcp::socket socket) {
        boost::system::error_code ec;
        ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), tls_);
        co_await stream.async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return;
        beast::flat_buffer buffer;
        http::request<http::empty_body> request;
        co_await http::async_read(stream, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return;
        const std::string target(request.target());
        {
            std::lock_guard lock(mu_);
            targets_.push_back(target);
            authorization_ = std::string(request[http::field::authorization]);
        }
        const Reply reply = handler_(target);
        http::response<http::empty_body> response(static_cast<http::status>(reply.status), 11);
        response.set(http::field::content_type, "application/json");
        response.chunked(true);
        http::response_serializer<http::empty_body> serializer(response);
        co_await http::async_write_header(stream, serializer, asio::redirect_error(asio::use_awaitable, ec));
        for (const auto& chunk : reply.chunks) {
            if (ec)
                co_return;
            co_await asio::async_write(stream, http::make_chunk(asio::buffer(chunk)),
                                       asio::redirect_error(asio::use_awaitable, ec));
        }
        if (reply.abort || ec)
            co_return;
        if (reply.hold) {
            auto timer = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
            held_.push_back(timer);
            co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        co_await asio::async_write(stream, http::make_chunk_last(), asio::redirect_error(asio::use_awaitable, ec));
    }

    Handler handler_;
    TestCertificate certificate_;
    asio::io_context io_;
    ssl::context tls_;
    asio::ip::tcp::acceptor acceptor_;
    uint16_t port_ = 0;
    std::thread thread_;
    mutable std::mutex mu_;
    std::vector<std::string> targets_;
    std::string authorization_;
    std::vector<std::weak_ptr<asio::steady_timer>> held_;  // on the server thread
};

KubeConfig config_for(uint16_t port, const std::string& ca_pem) {
    KubeConfig config;
    config.server = "https://127.0.0.1:" + std::to_string(port);
    config.host = "127.0.0.1";
    config.port = std::to_string(port);
    config.ca_pem = ca_pem;
    config.token = "test-token";
    return config;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        io.run_for(5ms);
        if (io.stopped())
            io.restart();
    }
    return true;
}

InformerOptions fast_options() {
    InformerOptions options;
    options.page_size = 2;
    options.watch_timeout = 60s;
    options.backoff_initial = 20ms;
    options.backoff_max = 100ms;
    options.min_healthy_watch = 0ms;
    return options;
}

// An informer over pods and a log of its callbacks ("added ns/a", "updated ns/a", "deleted ns/b").
struct PodWatcher {
    asio::io_context io;
    std::shared_ptr<Client> client;
    std::shared_ptr<Informer<Pod>> informer;
    std::vector<std::string> log;

    PodWatcher(const KubeConfig& config, InformerOptions options = fast_options(), bool optional = false) {
        client = Client::create(config, ClientOptions{2s, 2s}).value();
        InformerHandlers<Pod> handlers;
        handlers.added = [this](const Pod& p) { log.push_back("added " + p.meta.ns + "/" + p.meta.name); };
        handlers.updated = [this](const Pod&, const Pod& p) {
            log.push_back("updated " + p.meta.ns + "/" + p.meta.name + "@" + p.meta.resource_version);
        };
        handlers.deleted = [this](const Pod& p) { log.push_back("deleted " + p.meta.ns + "/" + p.meta.name); };
        informer = std::make_shared<Informer<Pod>>(
            client, Resource{"pods", "/api/v1/pods", "spec.nodeName=n1", optional}, options,
            [](const json& o) { return std::optional<Pod>(decode_pod(o)); }, handlers);
        informer->start(asio::make_strand(io.get_executor()));
    }
    ~PodWatcher() {
        informer->stop();
        client->shutdown();
        io.restart();
        io.run_for(5s);  // returns as soon as the loop and its calls have ended
    }
};

bool is_list(const std::string& target) { return contains(target, "limit="); }
bool is_watch(const std::string& target) { return contains(target, "watch=1"); }

TEST(KubeInformer, PagedListThenWatchAppliesEvents) {
    std::atomic<int> watches{0};
    TestApiServer server([&](const std::string& target) -> Reply {
        if (is_list(target)) {
            if (!contains(target, "continue="))
                return json_reply(list_json({pod_json("a", "90"), pod_json("b", "91")}, "100", "tok/1"));
            return json_reply(list_json({pod_json("c", "92")}, "100"));
        }
        if (is_watch(target) && watches++ == 0) {
            const std::string modified = line(event("MODIFIED", pod_json("a", "102")));
            return Reply{200,
                         {line(event("ADDED", pod_json("d", "101"))), modified.substr(0, 25), modified.substr(25),
                          line(event("DELETED", pod_json("b", "103")))},
                         true,
                         false};
        }
        return Reply{200, {}, true, false};
    });
    PodWatcher w(config_for(server.port(), server.ca_pem()));
    ASSERT_TRUE(run_until(w.io, [&] { return w.informer->stats().events == 3; })) << w.informer->stats().events;

    EXPECT_EQ(w.log, (std::vector<std::string>{"added ns/a", "added ns/b", "added ns/c", "added ns/d",
                                               "updated ns/a@102", "deleted ns/b"}));
    const InformerStats stats = w.informer->stats();
    EXPECT_TRUE(stats.synced);
    EXPECT_EQ(stats.lists, 1u);
    EXPECT_EQ(stats.watches, 1u);
    EXPECT_EQ(stats.errors, 0u);

    const auto lists = server.targets_with("limit=");
    ASSERT_EQ(lists.size(), 2u);
    EXPECT_EQ(lists[0], "/api/v1/pods?limit=2&fieldSelector=spec.nodeName%3Dn1");
    EXPECT_EQ(lists[1], "/api/v1/pods?limit=2&fieldSelector=spec.nodeName%3Dn1&continue=tok%2F1");
    const auto watch_targets = server.targets_with("watch=1");
    ASSERT_EQ(watch_targets.size(), 1u);
    EXPECT_TRUE(contains(watch_targets[0], "/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=100&"));
    EXPECT_TRUE(contains(watch_targets[0], "&fieldSelector=spec.nodeName%3Dn1"));
    EXPECT_TRUE(contains(watch_targets[0], "timeoutSeconds="));
    EXPECT_EQ(server.authorization(), "Bearer test-token");
}

TEST(KubeInformer, StreamEndRewatchesFromLastSeenVersion) {
    std::atomic<int> watches{0};
    TestApiServer server([&](const std::string& target) -> Reply {
        if (is_list(target))
            return json_reply(list_json({pod_json("a", "90")}, "100"));
        switch (watches++) {
        case 0: return Reply{200, {line(event("ADDED", pod_json("b", "101")))}, false, false};  // then clean end
        case 1:  // a bookmark only moves the version
            return Reply{
                200, {line(event("BOOKMARK", json{{"metadata", {{"resourceVersion", "150"}}}}))}, false, false};
        default: return Reply{200, {}, true, false};
        }
    });
    PodWatcher w(config_for(server.port(), server.ca_pem()));
    ASSERT_TRUE(run_until(w.io, [&] { return server.targets_with("watch=1").size() >= 3; }));
    const auto watch_targets = server.targets_with("watch=1");
    EXPECT_TRUE(contains(watch_targets[0], "resourceVersion=100&"));
    EXPECT_TRUE(contains(watch_targets[1], "resourceVersion=101&"));
    EXPECT_TRUE(contains(watch_targets[2], "resourceVersion=150&"));
    EXPECT_EQ(w.informer->stats().lists, 1u);  // a clean end is no reason to relist
    EXPECT_EQ(w.informer->stats().errors, 0u);
    EXPECT_EQ(w.log, (std::vector<std::string>{"added ns/a", "added ns/b"}));
}

struct GoneCase {
    const char* name;
    Reply first_watch;
};

class KubeInformerGone : public testing::TestWithParam<GoneCase> {};

TEST_P(KubeInformerGone, RelistsAndDropsWhatDisappeared) {
    std::atomic<int> lists{0}, watches{0};
    TestApiServer server([&](const std::string& target) -> Reply {
        if (is_list(target)) {
            if (lists++ == 0)
                return json_reply(list_json({pod_json("a", "90"), pod_json("b", "91")}, "100"));
            return json_reply(list_json({pod_json("a", "95"), pod_json("c", "96")}, "200"));
        }
        return watches++ == 0 ? GetParam().first_watch : Reply{200, {}, true, false};
    });
    PodWatcher w(config_for(server.port(), server.ca_pem()));
    ASSERT_TRUE(run_until(w.io, [&] { return server.targets_with("watch=1").size() >= 2; }));
    EXPECT_TRUE(contains(server.targets_with("watch=1")[1], "resourceVersion=200&"));
    const InformerStats stats = w.informer->stats();
    EXPECT_EQ(stats.lists, 2u);
    EXPECT_EQ(stats.relists, 1u);
    EXPECT_EQ(stats.errors, 0u);  // 410 is the protocol working, not a failure
    EXPECT_EQ(w.log,
              (std::vector<std::string>{"added ns/a", "added ns/b", "deleted ns/b", "updated ns/a@95", "added ns/c"}));
}

INSTANTIATE_TEST_SUITE_P(
    Table, KubeInformerGone,
    testing::Values(
        GoneCase{"error_event",
                 Reply{200,
                       {line(event("ERROR", status_json(410, "Expired", "too old resource version: 100 (150)")))},
                       true,
                       false}},
        GoneCase{"http_410",
                 Reply{410, {status_json(410, "Gone", "too old resource version: 100 (150)").dump()}, false, false}}),
    [](const testing::TestParamInfo<GoneCase>& info) { return std::string(info.param.name); });

TEST(KubeInformer, BrokenStreamBacksOffAndRewatchesFromLastVersion) {
    std::atomic<int> watches{0};
    TestApiServer server([&](const std::string& target) -> Reply {
        if (is_list(target))
            return json_reply(list_json({}, "100"));
        if (watches++ == 0)  // one event, then half of another and the connection drops
            return Reply{200, {line(event("ADDED", pod_json("a", "101"))), "{\"type\":\"ADD"}, false, true};
        return Reply{200, {}, true, false};
    });
    PodWatcher w(config_for(server.port(), server.ca_pem()));
    ASSERT_TRUE(run_until(w.io, [&] { return server.targets_with("watch=1").size() >= 2; }));
    EXPECT_TRUE(contains(server.targets_with("watch=1")[1], "resourceVersion=101&"));
    EXPECT_EQ(w.informer->stats().errors, 1u);
    EXPECT_EQ(w.informer->stats().lists, 1u);
    EXPECT_EQ(w.log, (std::vector<std::string>{"added ns/a"}));
}

uint16_t unused_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return probe.local_endpoint().port();
}

TEST(KubeInformer, OutageBacksOffKeepsObjectsAndRecovers) {
    const uint16_t port = unused_port();
    const TestCertificate certificate = make_certificate("podid-test-apiserver");
    std::atomic<int> lists{0};
    auto handler = [&](const std::string& target) -> Reply {
        if (is_list(target))
            return json_reply(list_json({pod_json("a", "90")}, std::to_string(100 + lists++)));
        return Reply{200, {}, true, false};
    };
    PodWatcher w(config_for(port, certificate.cert_pem));

    // Down from the start: connections are refused, and retried with backoff, not in a tight loop.
    const auto start = std::chrono::steady_clock::now();
    run_until(
        w.io, [] { return false; }, 400ms);
    const uint64_t refused = w.informer->stats().errors;
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_GE(refused, 3u);
    // 20ms doubling to 100ms, half of each delay random: never more than one attempt per 10ms.
    EXPECT_LE(refused, 2 + static_cast<uint64_t>(elapsed / 10ms)) << refused;
    EXPECT_FALSE(w.informer->synced());

    // Up: it lists and watches.
    auto server = std::make_unique<TestApiServer>(handler, port, certificate);
    ASSERT_TRUE(run_until(w.io, [&] { return server->targets_with("watch=1").size() == 1; }));
    EXPECT_TRUE(w.informer->synced());
    EXPECT_EQ(w.log, (std::vector<std::string>{"added ns/a"}));

    // Down again while watching: the stream breaks, known objects stay.
    server.reset();
    ASSERT_TRUE(run_until(w.io, [&] { return w.informer->stats().errors >= refused + 2; }));
    EXPECT_EQ(w.informer->items().count("ns/a"), 1u);
    EXPECT_EQ(w.log.size(), 1u);

    // Back: watching resumes from the last version (no relist needed).
    server = std::make_unique<TestApiServer>(handler, port, certificate);
    ASSERT_TRUE(run_until(w.io, [&] { return server->targets_with("watch=1").size() == 1; }));
    EXPECT_TRUE(contains(server->targets_with("watch=1")[0], "resourceVersion=100&"));
    EXPECT_EQ(w.informer->stats().lists, 1u);
}

TEST(KubeInformer, OptionalResourceNotServedCountsAsEmpty) {
    TestApiServer server([](const std::string&) {
        return json_reply(status_json(404, "NotFound", "the server could not find the requested resource"), 404);
    });
    PodWatcher w(config_for(server.port(), server.ca_pem()), fast_options(), /*optional=*/true);
    ASSERT_TRUE(run_until(w.io, [&] { return w.informer->synced(); }));
    EXPECT_TRUE(w.informer->items().empty());
    EXPECT_EQ(w.informer->stats().errors, 0u);
    EXPECT_TRUE(server.targets_with("watch=1").empty());
}

TEST(KubeInformer, RequiredResourceNotServedIsAnError) {
    TestApiServer server([](const std::string&) {
        return json_reply(status_json(404, "NotFound", "the server could not find the requested resource"), 404);
    });
    PodWatcher w(config_for(server.port(), server.ca_pem()));
    ASSERT_TRUE(run_until(w.io, [&] { return w.informer->stats().errors >= 2; }));
    EXPECT_FALSE(w.informer->synced());
}

// Client calls, one at a time.
template <class T>
T run_call(asio::io_context& io, asio::awaitable<T> call) {
    std::optional<T> out;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(call)); },
        [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
    run_until(io, [&] { return out.has_value(); });
    return std::move(*out);
}

TEST(KubeClient, ApiStatusBecomesTheError) {
    TestApiServer server([](const std::string&) {
        return json_reply(status_json(403, "Forbidden",
                                      "pods is forbidden: User \"system:serviceaccount:podid:podid\" cannot list "
                                      "resource \"pods\" in API group \"\" at the cluster scope"),
                          403);
    });
    asio::io_context io;
    auto client = Client::create(config_for(server.port(), server.ca_pem())).value();
    auto result = run_call(io, client->list("/api/v1/pods?limit=1"));
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().http_status, 403u);
    EXPECT_EQ(result.error().reason, "Forbidden");
    EXPECT_TRUE(contains(result.error().error.message, "HTTP 403: pods is forbidden")) << result.error().error.message;
    EXPECT_TRUE(contains(result.error().error.message, "127.0.0.1:" + std::to_string(server.port())));

    auto watch = run_call(io, client->watch("/api/v1/pods?watch=1", 5s));
    ASSERT_FALSE(watch);
    EXPECT_EQ(watch.error().http_status, 403u);
    EXPECT_EQ(watch.error().reason, "Forbidden");
}

TEST(KubeClient, RefusesAServerItDoesNotTrust) {
    TestApiServer server([](const std::string& target) { return json_reply(list_json({}, "1")); });
    asio::io_context io;
    auto client = Client::create(config_for(server.port(), make_certificate("someone-else").cert_pem)).value();
    auto result = run_call(io, client->list("/api/v1/pods"));
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().http_status, 0u);
    EXPECT_EQ(result.error().error.code, EPROTO);
    EXPECT_TRUE(contains(result.error().error.message, "certificate verify failed")) << result.error().error.message;
    EXPECT_TRUE(server.targets().empty());  // the token never left
}

TEST(KubeClient, ChecksTheServerName) {
    TestApiServer server([](const std::string& target) { return json_reply(list_json({}, "1")); });
    asio::io_context io;
    KubeConfig config = config_for(server.port(), server.ca_pem());
    config.tls_server_name = "kubernetes.default.svc";  // not in the certificate (IP:127.0.0.1 only)
    auto client = Client::create(config).value();
    auto result = run_call(io, client->list("/api/v1/pods"));
    ASSERT_FALSE(result);
    EXPECT_TRUE(contains(result.error().error.message, "TLS handshake")) << result.error().error.message;
}

TEST(KubeClient, ListPageAndPathPrefix) {
    TestApiServer server(
        [](const std::string& target) { return json_reply(list_json({pod_json("a", "5")}, "77", "next")); });
    asio::io_context io;
    KubeConfig config = config_for(server.port(), server.ca_pem());
    config.path_prefix = "/k8s/clusters/c-1";
    auto client = Client::create(config).value();
    auto page = run_call(io, client->list("/api/v1/pods?limit=1"));
    ASSERT_TRUE(page) << page.error().error.message;
    EXPECT_EQ(page->resource_version, "77");
    EXPECT_EQ(page->continue_token, "next");
    ASSERT_EQ(page->items.size(), 1u);
    EXPECT_EQ(page->items[0]["metadata"]["name"], "a");
    EXPECT_EQ(server.targets(), (std::vector<std::string>{"/k8s/clusters/c-1/api/v1/pods?limit=1"}));
}

TEST(KubeClient, WatchDeliversEventsAsTheyArriveAndEndsCleanly) {
    TestApiServer server([](const std::string&) {
        return Reply{200,
                     {line(event("ADDED", pod_json("a", "1"))) + "{\"type\":\"MOD", "IFIED\",\"object\":{}}\n"},
                     true,
                     false};
    });
    asio::io_context io;
    auto client = Client::create(config_for(server.port(), server.ca_pem())).value();
    auto stream = run_call(io, client->watch("/api/v1/pods?watch=1", 5s));
    ASSERT_TRUE(stream) << stream.error().error.message;
    auto first = run_call(io, (*stream)->next());
    ASSERT_TRUE(first && *first);
    EXPECT_EQ((*first)->type, WatchEvent::Type::added);
    EXPECT_EQ((*first)->object["metadata"]["name"], "a");
    auto second = run_call(io, (*stream)->next());
    ASSERT_TRUE(second && *second);
    EXPECT_EQ((*second)->type, WatchEvent::Type::modified);
    // Held open: the next read waits until the server ends the stream, then reports the clean end.
    server.release();
    auto end = run_call(io, (*stream)->next());
    ASSERT_TRUE(end) << end.error().error.message;
    EXPECT_FALSE(*end);
}

TEST(KubeClient, WatchIdleTimeout) {
    TestApiServer server([](const std::string&) { return Reply{200, {}, true, false}; });
    asio::io_context io;
    auto client = Client::create(config_for(server.port(), server.ca_pem())).value();
    auto stream = run_call(io, client->watch("/api/v1/pods?watch=1", 100ms));
    ASSERT_TRUE(stream);
    auto next = run_call(io, (*stream)->next());
    ASSERT_FALSE(next);
    EXPECT_EQ(next.error().error.code, ETIMEDOUT);
}

TEST(KubeClient, ShutdownEndsAWatchInProgress) {
    TestApiServer server([](const std::string&) { return Reply{200, {}, true, false}; });
    asio::io_context io;
    auto client = Client::create(config_for(server.port(), server.ca_pem())).value();
    auto stream = run_call(io, client->watch("/api/v1/pods?watch=1", 60s));
    ASSERT_TRUE(stream);
    std::optional<ApiResult<std::optional<WatchEvent>>> next;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { next.emplace(co_await (*stream)->next()); }, asio::detached);
    run_until(
        io, [] { return false; }, 50ms);
    EXPECT_FALSE(next);
    client->shutdown();
    ASSERT_TRUE(run_until(
        io, [&] { return next.has_value(); }, 2s));
    ASSERT_FALSE(*next);
    EXPECT_EQ(next->error().error.code, ECANCELED);
    auto after = run_call(io, client->list("/api/v1/pods"));
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error().error.code, ECANCELED);
}

}  // namespace
}  // namespace podid::kube
