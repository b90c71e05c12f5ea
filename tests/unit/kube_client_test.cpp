// The HTTPS client's get (one object) and create (POST of JSON): against the API-server double (objects, the
// TokenRequest subresource, Status errors) and against a recording TLS server on 127.0.0.1:0 for what the double
// does not show (the request's headers and body) and answers it never gives. Lists and watches are covered in
// kube_informer_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "kube/client.h"
#include "support/kube_apiserver.h"
#include "support/tls_certs.h"

namespace podid::kube {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using namespace std::chrono_literals;
using nlohmann::json;
using test::KubeApiServer;
using test::KubeApiServerOptions;

const std::string kToken = "t0k3n";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Runs `call` on `io` and returns its result (the io_context runs on this thread until it is done).
template <class T>
T run_call(asio::io_context& io, asio::awaitable<T> call) {
    auto result = std::make_shared<std::optional<T>>();
    asio::co_spawn(
        io,
        [result, call = std::move(call)]() mutable -> asio::awaitable<void> {
            result->emplace(co_await std::move(call));
        },
        asio::detached);
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!result->has_value() && std::chrono::steady_clock::now() < deadline)
        io.run_for(10ms);
    if (!result->has_value())
        throw std::runtime_error("the call did not finish within 20 s");
    return std::move(**result);
}

KubeConfig config_for(uint16_t port, const std::string& ca_pem) {
    KubeConfig config;
    config.server = "https://127.0.0.1:" + std::to_string(port);
    config.host = "127.0.0.1";
    config.port = std::to_string(port);
    config.ca_pem = ca_pem;
    config.token = kToken;
    return config;
}

// A TLS server on 127.0.0.1:0 that records every request and answers each with the same reply.
class RecordingServer {
public:
    RecordingServer(unsigned status, std::string body) : status_(status), body_(std::move(body)) {
        auto pki = test::make_test_pki();
        if (!pki)
            throw std::runtime_error(pki.error().message);
        ca_pem_ = pki->ca.cert_pem;
        tls_.use_certificate_chain(asio::buffer(pki->server.cert_pem));
        tls_.use_private_key(asio::buffer(pki->server.key_pem), ssl::context::pem);
        acceptor_.open(asio::ip::tcp::v4());
        acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        asio::co_spawn(io_, serve(), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~RecordingServer() {
        io_.stop();
        thread_.join();
    }

    uint16_t port() const { return acceptor_.local_endpoint().port(); }
    const std::string& ca_pem() const { return ca_pem_; }
    std::vector<http::request<http::string_body>> requests() const {
        std::lock_guard lock(mu_);
        return requests_;
    }

private:
    asio::awaitable<void> serve() {
        for (;;) {
            auto socket = co_await acceptor_.async_accept(asio::use_awaitable);
            try {
                ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), tls_);
                co_await stream.async_handshake(ssl::stream_base::server, asio::use_awaitable);
                beast::flat_buffer buffer;
                http::request<http::string_body> request;
                co_await http::async_read(stream, buffer, request, asio::use_awaitable);
                {
                    std::lock_guard lock(mu_);
                    requests_.push_back(request);
                }
                http::response<http::string_body> response(static_cast<http::status>(status_), 11);
                response.set(http::field::content_type, "application/json");
                response.body() = body_;
                response.keep_alive(false);
                response.prepare_payload();
                co_await http::async_write(stream, response, asio::use_awaitable);
            } catch (const std::exception&) {
                // the client went away: the next connection
            }
        }
    }

    unsigned status_;
    std::string body_;
    std::string ca_pem_;
    asio::io_context io_;
    ssl::context tls_{ssl::context::tls_server};
    asio::ip::tcp::acceptor acceptor_{io_};
    mutable std::mutex mu_;
    std::vector<http::request<http::string_body>> requests_;
    std::thread thread_;
};

// ---- against the API-server double ------------------------------------------------------------------

class KubeClientDoubleTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(api.listen("127.0.0.1", 0));
        ASSERT_TRUE(api.create("ServiceAccount", {{"metadata", {{"name", "workload"}, {"namespace", "ns1"}}}}));
        auto pod = api.create("Pod", {{"metadata", {{"name", "app"}, {"namespace", "ns1"}}},
                                      {"spec", {{"nodeName", "node1"}, {"serviceAccountName", "workload"}}}});
        ASSERT_TRUE(pod) << pod.error().message;
        pod_uid = (*pod)["metadata"]["uid"];
        client = Client::create(config_for(api.port(), api.pki().ca.cert_pem)).value();
    }

    static KubeApiServerOptions options() {
        KubeApiServerOptions o;
        o.tokens = {kToken};
        return o;
    }

    json token_request() const {
        return {{"apiVersion", "authentication.k8s.io/v1"},
                {"kind", "TokenRequest"},
                {"spec",
                 {{"audiences", {"api://AzureADTokenExchange"}},
                  {"expirationSeconds", 600},
                  {"boundObjectRef", {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", "app"}, {"uid", pod_uid}}}}}};
    }

    KubeApiServer api{options()};
    asio::io_context io;
    std::shared_ptr<Client> client;
    std::string pod_uid;
};

TEST_F(KubeClientDoubleTest, GetAnswersTheObject) {
    auto pod = run_call(io, client->get("/api/v1/namespaces/ns1/pods/app"));
    ASSERT_TRUE(pod) << pod.error().error.message;
    EXPECT_EQ((*pod)["metadata"]["uid"], pod_uid);
    EXPECT_EQ((*pod)["kind"], "Pod");
    const auto log = api.requests();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].method, "GET");
    EXPECT_EQ(log[0].verb, "get");
    EXPECT_EQ(log[0].user, "token:" + kToken);
    EXPECT_EQ(api.get_calls("pods"), 1u);
}

TEST_F(KubeClientDoubleTest, GetOfAMissingObjectCarriesTheStatus) {
    auto pod = run_call(io, client->get("/api/v1/namespaces/ns1/pods/nope"));
    ASSERT_FALSE(pod);
    EXPECT_EQ(pod.error().http_status, 404u);
    EXPECT_EQ(pod.error().reason, "NotFound");
    const std::string& message = pod.error().error.message;
    EXPECT_TRUE(contains(message, "GET /api/v1/namespaces/ns1/pods/nope: HTTP 404: pods \"nope\" not found"))
        << message;
    EXPECT_TRUE(contains(message, "127.0.0.1:" + std::to_string(api.port()))) << message;
}

TEST_F(KubeClientDoubleTest, CreateAnswersTheTokenRequest) {
    auto answer =
        run_call(io, client->create("/api/v1/namespaces/ns1/serviceaccounts/workload/token", token_request()));
    ASSERT_TRUE(answer) << answer.error().error.message;
    EXPECT_EQ((*answer)["kind"], "TokenRequest");
    ASSERT_TRUE((*answer)["status"]["token"].is_string());
    EXPECT_TRUE(api.verify_token((*answer)["status"]["token"].get<std::string>()));
    EXPECT_EQ(api.token_requests("ns1", "workload"), 1u);
    const auto log = api.requests();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].method, "POST");
    EXPECT_EQ(log[0].verb, "create");
    EXPECT_EQ(log[0].resource, "serviceaccounts/token");
    EXPECT_EQ(log[0].status, 201);
    EXPECT_EQ(log[0].user, "token:" + kToken);
}

TEST_F(KubeClientDoubleTest, CreateRefusedCarriesTheStatus) {
    auto answer = run_call(io, client->create("/api/v1/namespaces/ns1/serviceaccounts/nope/token", token_request()));
    ASSERT_FALSE(answer);
    EXPECT_EQ(answer.error().http_status, 404u);
    EXPECT_EQ(answer.error().reason, "NotFound");
    EXPECT_TRUE(contains(answer.error().error.message,
                         "POST /api/v1/namespaces/ns1/serviceaccounts/nope/token: HTTP 404: serviceaccounts \"nope\" "
                         "not found"))
        << answer.error().error.message;
}

TEST_F(KubeClientDoubleTest, CallsAfterShutdownFail) {
    client->shutdown();
    auto got = run_call(io, client->get("/api/v1/namespaces/ns1/pods/app"));
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().error.code, ECANCELED);
    auto created =
        run_call(io, client->create("/api/v1/namespaces/ns1/serviceaccounts/workload/token", token_request()));
    ASSERT_FALSE(created);
    EXPECT_EQ(created.error().error.code, ECANCELED);
    EXPECT_TRUE(api.requests().empty());
}

// ---- the request on the wire, and answers the double does not give ----------------------------------

TEST(KubeClientWire, CreatePostsJsonWithTheBearerToken) {
    RecordingServer server(201, R"({"kind":"TokenRequest"})");
    asio::io_context io;
    auto client = Client::create(config_for(server.port(), server.ca_pem())).value();
    const json body = {{"kind", "TokenRequest"}, {"spec", {{"expirationSeconds", 600}}}};
    auto answer = run_call(io, client->create("/api/v1/namespaces/ns1/serviceaccounts/sa/token", body));
    ASSERT_TRUE(answer) << answer.error().error.message;
    EXPECT_EQ((*answer)["kind"], "TokenRequest");

    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    const auto& request = requests[0];
    EXPECT_EQ(request.method(), http::verb::post);
    EXPECT_EQ(request.target(), "/api/v1/namespaces/ns1/serviceaccounts/sa/token");
    EXPECT_EQ(request[http::field::content_type], "application/json");
    EXPECT_EQ(request[http::field::accept], "application/json");
    EXPECT_EQ(request[http::field::authorization], "Bearer " + kToken);
    EXPECT_EQ(request[http::field::content_length], std::to_string(request.body().size()));
    EXPECT_EQ(json::parse(request.body()), body);
}

TEST(KubeClientWire, GetSendsNoBody) {
    RecordingServer server(200, R"({"kind":"Secret"})");
    asio::io_context io;
    auto client = Client::create(config_for(server.port(), server.ca_pem())).value();
    auto answer = run_call(io, client->get("/api/v1/namespaces/ns1/secrets/s1"));
    ASSERT_TRUE(answer) << answer.error().error.message;

    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].method(), http::verb::get);
    EXPECT_EQ(requests[0].target(), "/api/v1/namespaces/ns1/secrets/s1");
    EXPECT_EQ(requests[0].count(http::field::content_type), 0u);
    EXPECT_EQ(requests[0].count(http::field::content_length), 0u);
    EXPECT_EQ(requests[0][http::field::authorization], "Bearer " + kToken);
    EXPECT_TRUE(requests[0].body().empty());
}

struct AnswerCase {
    const char* name;
    bool post;
    unsigned status;
    std::string body;
    unsigned want_status;  // ApiError.http_status; 0 with want_ok
    bool want_ok;
    int want_code;            // Error.code when failing
    const char* want_reason;  // ApiError.reason when failing
    const char* want_text;    // in the message when failing
};

TEST(KubeClientWire, AnswersBecomeObjectsOrErrors) {
    const json forbidden = {{"kind", "Status"},
                            {"status", "Failure"},
                            {"reason", "Forbidden"},
                            {"code", 403},
                            {"message",
                             "secrets \"s1\" is forbidden: User \"system:serviceaccount:podid:podid\" cannot get "
                             "resource \"secrets\" in API group \"\" in the namespace \"ns1\""}};
    const std::string big = R"({"data":")" + std::string(2000, 'x') + R"("})";
    const std::vector<AnswerCase> cases = {
        {"create 201", true, 201, R"({"a":1})", 0, true, 0, "", ""},
        {"create 200", true, 200, R"({"a":1})", 0, true, 0, "", ""},
        {"create 202 is not a creation", true, 202, R"({"a":1})", 202, false, 0, "", "POST /x: HTTP 202"},
        {"get 200", false, 200, R"({"a":1})", 0, true, 0, "", ""},
        {"get 201 is not an answer to a get", false, 201, R"({"a":1})", 201, false, 0, "", "GET /x: HTTP 201"},
        {"an unexpected success is not quoted", false, 203, R"({"data":"hunter2"})", 203, false, 0, "",
         "GET /x: HTTP 203: not the answer this call expects"},
        {"Status error", false, 403, forbidden.dump(), 403, false, 0, "Forbidden",
         "GET /x: HTTP 403: secrets \"s1\" is forbidden"},
        {"not JSON, and the body is not quoted", false, 200, "hunter2", 0, false, EPROTO, "",
         "the answer is not a JSON object"},
        {"a JSON array, not quoted either", false, 200, R"(["hunter2"])", 0, false, EPROTO, "",
         "the answer is not a JSON object"},
        {"over max_object_bytes", false, 200, big, 0, false, EMSGSIZE, "", "get larger than 1024 bytes"},
    };
    for (const auto& c : cases) {
        RecordingServer server(c.status, c.body);
        asio::io_context io;
        ClientOptions options;
        options.max_object_bytes = 1024;
        auto client = Client::create(config_for(server.port(), server.ca_pem()), options).value();
        auto answer = c.post ? run_call(io, client->create("/x", json::object())) : run_call(io, client->get("/x"));
        ASSERT_EQ(answer.ok(), c.want_ok) << c.name << ": " << (answer ? "" : answer.error().error.message);
        if (c.want_ok) {
            EXPECT_EQ((*answer)["a"], 1) << c.name;
            continue;
        }
        const ApiError& e = answer.error();
        EXPECT_EQ(e.http_status, c.want_status) << c.name;
        EXPECT_EQ(e.error.code, c.want_code) << c.name;
        EXPECT_EQ(e.reason, c.want_reason) << c.name;
        EXPECT_TRUE(contains(e.error.message, c.want_text)) << c.name << ": " << e.error.message;
        if (c.status / 100 == 2) {
            EXPECT_FALSE(contains(e.error.message, "hunter2")) << c.name << ": " << e.error.message;
        }
    }
}

// The limit holds for a list too (Boost 1.74 lost it when header and body came in one read: see exchange()).
TEST(KubeClientWire, AListOverItsLimitIsRefused) {
    RecordingServer server(
        200, R"({"kind":"PodList","metadata":{"resourceVersion":"1"},"items":[")" + std::string(4000, 'x') + R"("]})");
    asio::io_context io;
    ClientOptions options;
    options.max_list_bytes = 1024;
    auto client = Client::create(config_for(server.port(), server.ca_pem()), options).value();
    auto page = run_call(io, client->list("/api/v1/pods"));
    ASSERT_FALSE(page);
    EXPECT_EQ(page.error().error.code, EMSGSIZE);
    EXPECT_TRUE(contains(page.error().error.message, "GET /api/v1/pods: list larger than 1024 bytes"))
        << page.error().error.message;
}

}  // namespace
}  // namespace podid::kube
