// The Kubernetes API-server double checked two ways: against the real kubectl (discovery, lists, CRDs,
// selectors, jsonpath, Unauthorized, --watch), and at the protocol level with a small Beast client (list
// resourceVersions and chunking, watch replay, bookmarks, 410 Expired, dropped streams, selector-filtered
// watches, token rotation, restarts). Needs no privileges: everything is on 127.0.0.1.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>

#include "support/kube_apiserver.h"

namespace podid::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kToken = "good-token-0123456789";
constexpr const char* kKubectl = "/usr/bin/kubectl";

json pod(const std::string& ns, const std::string& name, const std::string& node,
         const std::map<std::string, std::string>& labels = {}) {
    json meta = {{"name", name}, {"namespace", ns}};
    if (!labels.empty())
        meta["labels"] = labels;
    return {{"metadata", meta},
            {"spec", {{"nodeName", node}, {"serviceAccountName", "default"}, {"containers", json::array()}}},
            {"status", {{"phase", "Running"}, {"podIP", "10.77.0.10"}}}};
}

json azure_identity(const std::string& ns, const std::string& name, const std::string& client_id) {
    return {{"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec", {{"type", 0}, {"clientID", client_id}, {"resourceID", "/subscriptions/s/rg/" + name}}}};
}

std::vector<std::string> names_of(const json& list) {
    std::vector<std::string> names;
    for (const auto& item : list["items"])
        names.push_back(item["metadata"]["name"].get<std::string>());
    return names;
}

// ---- a small HTTPS client for protocol-level checks ----------------------------------------------------

struct HttpResult {
    int status = 0;
    json body;
    std::string raw;
};

class Client {
public:
    Client(const KubeApiServer& api, std::string token, bool client_cert = false)
        : ctx_(ssl::context::tls_client), token_(std::move(token)) {
        ctx_.add_certificate_authority(asio::buffer(api.pki().ca.cert_pem));
        ctx_.set_verify_mode(ssl::verify_peer);
        if (client_cert) {
            ctx_.use_certificate_chain(asio::buffer(api.pki().client.cert_pem));
            ctx_.use_private_key(asio::buffer(api.pki().client.key_pem), ssl::context::pem);
        }
        stream_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, ctx_);
        port_ = api.port();
    }

    // Connects and sends GET (or `method`) for `target`; false when the server cannot be reached.
    bool send(const std::string& target, const std::string& method = "GET") {
        boost::system::error_code ec;
        auto& tcp = beast::get_lowest_layer(*stream_);
        tcp.expires_after(5s);
        bool done = false;
        tcp.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
                          [&](auto e) { ec = e, done = true; });
        if (!run_until(done, 5s) || ec)
            return false;
        done = false;
        stream_->async_handshake(ssl::stream_base::client, [&](auto e) { ec = e, done = true; });
        if (!run_until(done, 5s) || ec)
            return false;
        http::request<http::empty_body> req{http::string_to_verb(method), target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::accept, "application/json");
        if (!token_.empty())
            req.set(http::field::authorization, "Bearer " + token_);
        done = false;
        http::async_write(*stream_, req, [&](auto e, size_t) { ec = e, done = true; });
        return run_until(done, 5s) && !ec;
    }

    HttpResult get(const std::string& target, const std::string& method = "GET") {
        HttpResult out;
        if (!send(target, method))
            return out;
        http::response<http::string_body> res;
        boost::system::error_code ec;
        bool done = false;
        http::async_read(*stream_, buffer_, res, [&](auto e, size_t) { ec = e, done = true; });
        if (!run_until(done, 5s) || ec)
            return out;
        out.status = res.result_int();
        out.raw = res.body();
        out.body = json::parse(res.body(), nullptr, false);
        return out;
    }

    // Watch: send, then read events one line at a time.
    bool watch(const std::string& target) {
        if (!send(target))
            return false;
        parser_.emplace();
        parser_->body_limit(boost::none);
        boost::system::error_code ec;
        bool done = false;
        http::async_read_header(*stream_, buffer_, *parser_, [&](auto e, size_t) { ec = e, done = true; });
        beast::get_lowest_layer(*stream_).expires_never();
        return run_until(done, 5s) && !ec && parser_->get().result_int() == 200 && parser_->chunked();
    }

    // The next watch event, or nullopt when none arrives in time or the stream ended (see ended()).
    std::optional<json> next(std::chrono::milliseconds timeout = 5s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            std::string& body = parser_->get().body();
            if (size_t nl = body.find('\n', consumed_); nl != std::string::npos) {
                std::string line = body.substr(consumed_, nl - consumed_);
                consumed_ = nl + 1;
                return json::parse(line, nullptr, false);
            }
            if (ended_)
                return std::nullopt;
            auto left = deadline - std::chrono::steady_clock::now();
            if (left <= 0s)
                return std::nullopt;
            if (!reading_) {
                reading_ = true;
                http::async_read_some(*stream_, buffer_, *parser_, [this](auto e, size_t) {
                    reading_ = false;
                    if (e || parser_->is_done()) {
                        ended_ = true;
                        clean_end_ = !e && parser_->is_done();
                    }
                });
            }
            ioc_.restart();
            ioc_.run_one_for(std::chrono::duration_cast<std::chrono::milliseconds>(left));
        }
    }

    // Reads until the stream ends; true when it ended with the final chunk (not cut off).
    std::optional<bool> wait_end(std::chrono::milliseconds timeout = 5s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!ended_ && std::chrono::steady_clock::now() < deadline)
            next(100ms);
        if (!ended_)
            return std::nullopt;
        return clean_end_;
    }

private:
    bool run_until(bool& done, std::chrono::milliseconds timeout) {
        ioc_.restart();
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done && std::chrono::steady_clock::now() < deadline)
            ioc_.run_one_for(deadline - std::chrono::steady_clock::now());
        return done;
    }

    asio::io_context ioc_;
    ssl::context ctx_;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream_;
    std::string token_;
    uint16_t port_ = 0;
    beast::flat_buffer buffer_;
    std::optional<http::response_parser<http::string_body>> parser_;
    size_t consumed_ = 0;
    bool reading_ = false, ended_ = false, clean_end_ = false;
};

// ---- running kubectl --------------------------------------------------------------------------------

struct Kubectl {
    int exit_code = -1;
    std::string out;
    std::string err;
};

class KubectlProcess {
public:
    KubectlProcess(const std::string& kubeconfig, const std::string& home, std::vector<std::string> args) {
        int out[2], err[2];
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe");
        std::vector<std::string> argv = {kKubectl,        "--kubeconfig",      kubeconfig, "--cache-dir",
                                         home + "/cache", "--request-timeout", "10s"};
        argv.insert(argv.end(), args.begin(), args.end());
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], 1);
            ::dup2(err[1], 2);
            ::setenv("HOME", home.c_str(), 1);
            ::unsetenv("KUBECONFIG");
            std::vector<char*> cargv;
            for (auto& a : argv)
                cargv.push_back(a.data());
            cargv.push_back(nullptr);
            ::execv(kKubectl, cargv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        ::close(err[1]);
        out_fd_ = out[0];
        err_fd_ = err[0];
    }
    ~KubectlProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(out_fd_);
        ::close(err_fd_);
    }

    // Collects output until `until` holds for stdout or the process exits or `timeout` passes.
    void pump(std::chrono::milliseconds timeout, const std::function<bool(const std::string&)>& until = {}) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        bool out_open = true, err_open = true;
        while ((out_open || err_open) && std::chrono::steady_clock::now() < deadline) {
            if (until && until(result.out))
                return;
            pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
            ::poll(fds, 2, 50);
            char buf[4096];
            for (int i = 0; i < 2; ++i) {
                if (!(fds[i].revents & (POLLIN | POLLHUP)))
                    continue;
                ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
                if (n <= 0)
                    (i == 0 ? out_open : err_open) = false;
                else
                    (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
            }
        }
    }

    Kubectl finish(std::chrono::milliseconds timeout = 20s) {
        pump(timeout);
        // The pipes close a moment before the process can be reaped: wait for the exit, bounded.
        int status = 0;
        for (int i = 0; i < 500; ++i) {
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return result;
    }

    Kubectl result;

private:
    pid_t pid_ = -1;
    int out_fd_ = -1, err_fd_ = -1;
};

// ---- fixture -------------------------------------------------------------------------------------------

class KubeApiServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto port = api.listen("127.0.0.1", 0);
        ASSERT_TRUE(port) << port.error().message;
        home = api.pki().dir + "/../home";
    }

    Kubectl kubectl(std::vector<std::string> args, const std::string& kubeconfig_text = "") {
        auto path =
            api.write_file("kubeconfig", kubeconfig_text.empty() ? api.kubeconfig_with_token(kToken) : kubeconfig_text);
        if (!path)
            ADD_FAILURE() << path.error().message;
        KubectlProcess process(*path, home, std::move(args));
        return process.finish();
    }

    void require_kubectl() {
        ASSERT_EQ(::access(kKubectl, X_OK), 0)
            << kKubectl << " is missing: apt-get install kubernetes-client (or tools/install-deps.sh)";
    }

    void seed() {
        // kubectl looks the namespace up when an object is missing, to say which of the two is.
        ASSERT_TRUE(api.create("Namespace", {{"metadata", {{"name", "ns1"}}}}));
        ASSERT_TRUE(api.create("Namespace", {{"metadata", {{"name", "ns2"}}}}));
        ASSERT_TRUE(api.create("Pod", pod("ns1", "x", "node1", {{"app", "web"}, {"aadpodidbinding", "sel"}})));
        ASSERT_TRUE(api.create("Pod", pod("ns1", "y", "node2", {{"app", "db"}, {"env", "prod"}})));
        ASSERT_TRUE(api.create("Pod", pod("ns2", "z", "node1")));
        ASSERT_TRUE(api.create("AzureIdentity", azure_identity("ns1", "id1", "00000000-0000-0000-0000-0000000000a1")));
        ASSERT_TRUE(api.create("AzureIdentityBinding", {{"metadata", {{"name", "b1"}, {"namespace", "ns1"}}},
                                                        {"spec", {{"azureIdentity", "id1"}, {"selector", "sel"}}}}));
    }

    static KubeApiServerOptions options() {
        KubeApiServerOptions o;
        o.tokens = {kToken};
        return o;
    }

    KubeApiServer api{options()};
    std::string home;
};

// ---- kubectl fidelity ------------------------------------------------------------------------------

TEST_F(KubeApiServerTest, KubectlListsPodsInAllNamespaces) {
    require_kubectl();
    seed();
    Kubectl r = kubectl({"get", "pods", "-A", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json list = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(list.is_object()) << r.out;
    EXPECT_EQ(names_of(list), (std::vector<std::string>{"x", "y", "z"}));
    EXPECT_EQ(list["items"][0]["kind"], "Pod");
    EXPECT_GE(api.list_calls("pods"), 1u);
}

TEST_F(KubeApiServerTest, KubectlFieldSelectorIsAppliedByTheServer) {
    require_kubectl();
    seed();
    Kubectl r = kubectl({"get", "pods", "-n", "ns1", "--field-selector", "spec.nodeName=node1", "-o", "name"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "pod/x\n");
    bool sent = false;
    for (const auto& rec : api.requests())
        sent |= rec.verb == "list" && rec.target.find("fieldSelector=spec.nodeName%3Dnode1") != std::string::npos;
    EXPECT_TRUE(sent) << "kubectl should send the selector to the server";
}

TEST_F(KubeApiServerTest, KubectlReadsTheCrd) {
    require_kubectl();
    seed();
    Kubectl r = kubectl({"get", "azureidentities", "-n", "ns1", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json list = json::parse(r.out, nullptr, false);
    ASSERT_EQ(names_of(list), std::vector<std::string>{"id1"}) << r.out;
    EXPECT_EQ(list["items"][0]["apiVersion"], "aadpodidentity.k8s.io/v1");
    EXPECT_EQ(list["items"][0]["spec"]["clientID"], "00000000-0000-0000-0000-0000000000a1");
}

TEST_F(KubeApiServerTest, KubectlDefaultTableOutputAndJsonpath) {
    require_kubectl();
    seed();
    Kubectl table = kubectl({"get", "azureidentitybindings", "-n", "ns1"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("b1"), std::string::npos) << table.out;

    Kubectl r = kubectl({"get", "pod", "x", "-n", "ns1", "-o", "jsonpath={.spec.nodeName}/{.metadata.labels.app}"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "node1/web");
    EXPECT_GE(api.get_calls("pods"), 1u);
}

TEST_F(KubeApiServerTest, KubectlReportsMissingObjects) {
    require_kubectl();
    seed();
    Kubectl r = kubectl({"get", "pod", "nope", "-n", "ns1", "-o", "name"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("pods \"nope\" not found"), std::string::npos) << r.err;
}

TEST_F(KubeApiServerTest, KubectlWithWrongTokenIsUnauthorized) {
    require_kubectl();
    Kubectl r = kubectl({"get", "pods", "-n", "ns1"}, api.kubeconfig_with_token("wrong-token"));
    EXPECT_NE(r.exit_code, 0);
    // kubectl's wording for a 401 during discovery, as against a real API server (it does not print the
    // Status body's "Unauthorized" there, it maps the code).
    EXPECT_NE(r.err.find("You must be logged in to the server"), std::string::npos) << r.err;
    EXPECT_GE(api.auth_failures(), 1u);
}

TEST_F(KubeApiServerTest, KubectlWithClientCertificate) {
    require_kubectl();
    seed();
    Kubectl r = kubectl({"get", "pods", "-n", "ns2", "-o", "name"}, api.kubeconfig_with_client_cert());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "pod/z\n");
    ASSERT_FALSE(api.requests().empty());
    EXPECT_EQ(api.requests().back().user, "cert:podid-test");
}

TEST_F(KubeApiServerTest, KubectlWatchSeesANewPod) {
    require_kubectl();
    seed();
    auto path = api.write_file("kubeconfig", api.kubeconfig_with_token(kToken));
    ASSERT_TRUE(path);
    KubectlProcess watch(*path, home, {"get", "pods", "-n", "ns1", "--watch", "-o", "name"});
    ASSERT_TRUE(KubeApiServer::wait_for([&] {
        watch.pump(50ms);
        return api.watch_calls("pods") >= 1;
    })) << watch.result.err;
    ASSERT_TRUE(api.create("Pod", pod("ns1", "newcomer", "node1")));
    watch.pump(10s, [](const std::string& out) { return out.find("pod/newcomer") != std::string::npos; });
    EXPECT_NE(watch.result.out.find("pod/newcomer"), std::string::npos) << watch.result.out << watch.result.err;
    EXPECT_NE(watch.result.out.find("pod/x"), std::string::npos) << "the initial list comes first";
}

// ---- protocol level --------------------------------------------------------------------------------

TEST_F(KubeApiServerTest, DiscoveryDocuments) {
    struct Row {
        std::string path;
        std::string kind;
    } rows[] = {{"/api", "APIVersions"},
                {"/api/v1", "APIResourceList"},
                {"/apis", "APIGroupList"},
                {"/apis/aadpodidentity.k8s.io", "APIGroup"},
                {"/apis/aadpodidentity.k8s.io/v1", "APIResourceList"}};
    for (const auto& row : rows) {
        HttpResult r = Client(api, kToken).get(row.path);
        EXPECT_EQ(r.status, 200) << row.path;
        EXPECT_EQ(r.body["kind"], row.kind) << row.path;
    }
    HttpResult crds = Client(api, kToken).get("/apis/aadpodidentity.k8s.io/v1");
    std::set<std::string> names;
    for (const auto& r : crds.body["resources"])
        names.insert(r["name"].get<std::string>());
    EXPECT_EQ(names, (std::set<std::string>{"azureidentities", "azureidentitybindings", "azurepodidentityexceptions"}));
    EXPECT_EQ(Client(api, kToken).get("/version").body["major"], "1");
    EXPECT_EQ(Client(api, kToken).get("/openapi/v2").status, 404);
}

TEST_F(KubeApiServerTest, ListCarriesResourceVersionAndItemKinds) {
    seed();
    HttpResult r = Client(api, kToken).get("/api/v1/namespaces/ns1/pods");
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["kind"], "PodList");
    EXPECT_EQ(r.body["apiVersion"], "v1");
    EXPECT_EQ(r.body["metadata"]["resourceVersion"], std::to_string(api.resource_version()));
    for (const auto& item : r.body["items"]) {
        EXPECT_EQ(item["kind"], "Pod");
        EXPECT_FALSE(item["metadata"]["uid"].get<std::string>().empty());
        EXPECT_FALSE(item["metadata"]["creationTimestamp"].get<std::string>().empty());
    }
    HttpResult crd = Client(api, kToken).get("/apis/aadpodidentity.k8s.io/v1/azureidentities");
    EXPECT_EQ(crd.body["kind"], "AzureIdentityList");
    EXPECT_EQ(names_of(crd.body), std::vector<std::string>{"id1"});
}

TEST_F(KubeApiServerTest, ListSelectors) {
    seed();
    struct Row {
        std::string query;
        int status;
        std::vector<std::string> names;
    } rows[] = {
        {"fieldSelector=spec.nodeName%3Dnode1", 200, {"x", "z"}},
        {"fieldSelector=spec.nodeName!%3Dnode1", 200, {"y"}},
        {"fieldSelector=metadata.namespace%3Dns2", 200, {"z"}},
        {"fieldSelector=metadata.name%3Dy,spec.nodeName%3Dnode2", 200, {"y"}},
        {"labelSelector=app%3Dweb", 200, {"x"}},
        {"labelSelector=app!%3Dweb", 200, {"y", "z"}},
        {"labelSelector=app+in+(web,db)", 200, {"x", "y"}},
        {"labelSelector=env+notin+(prod)", 200, {"x", "z"}},
        {"labelSelector=app", 200, {"x", "y"}},
        {"labelSelector=!app", 200, {"z"}},
        {"labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dnode2", 200, {}},
        {"fieldSelector=spec.bogus%3D1", 400, {}},
        {"labelSelector=a+in+x", 400, {}},
    };
    for (const auto& row : rows) {
        HttpResult r = Client(api, kToken).get("/api/v1/pods?" + row.query);
        EXPECT_EQ(r.status, row.status) << row.query << " " << r.raw;
        if (row.status == 200) {
            EXPECT_EQ(names_of(r.body), row.names) << row.query;
        } else {
            EXPECT_EQ(r.body["kind"], "Status") << row.query;
            EXPECT_EQ(r.body["reason"], "BadRequest") << row.query;
        }
    }
}

TEST_F(KubeApiServerTest, ListChunksAreOneConsistentSnapshot) {
    for (const char* name : {"a", "b", "c", "d", "e"})
        ASSERT_TRUE(api.create("Pod", pod("ns1", name, "node1")));
    HttpResult first = Client(api, kToken).get("/api/v1/namespaces/ns1/pods?limit=2");
    ASSERT_EQ(first.status, 200);
    EXPECT_EQ(names_of(first.body), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(first.body["metadata"]["remainingItemCount"], 3);
    std::string rv = first.body["metadata"]["resourceVersion"];

    // Changes after the first page stay invisible to the following pages.
    ASSERT_TRUE(api.create("Pod", pod("ns1", "c2", "node1")));
    ASSERT_TRUE(api.remove("Pod", "ns1", "d"));

    std::string token = first.body["metadata"]["continue"];
    HttpResult second = Client(api, kToken).get("/api/v1/namespaces/ns1/pods?limit=2&continue=" + token);
    ASSERT_EQ(second.status, 200) << second.raw;
    EXPECT_EQ(names_of(second.body), (std::vector<std::string>{"c", "d"}));
    EXPECT_EQ(second.body["metadata"]["resourceVersion"], rv);
    std::string token2 = second.body["metadata"]["continue"];
    HttpResult third = Client(api, kToken).get("/api/v1/namespaces/ns1/pods?limit=2&continue=" + token2);
    EXPECT_EQ(names_of(third.body), std::vector<std::string>{"e"});
    EXPECT_FALSE(third.body["metadata"].contains("continue"));

    api.compact();
    HttpResult expired = Client(api, kToken).get("/api/v1/namespaces/ns1/pods?limit=2&continue=" + token);
    EXPECT_EQ(expired.status, 410);
    EXPECT_EQ(expired.body["reason"], "Expired");
}

TEST_F(KubeApiServerTest, GetOneObjectAndErrors) {
    seed();
    HttpResult r = Client(api, kToken).get("/api/v1/namespaces/ns1/pods/x");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body["spec"]["nodeName"], "node1");
    HttpResult missing = Client(api, kToken).get("/api/v1/namespaces/ns1/pods/nope");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.body["kind"], "Status");
    EXPECT_EQ(missing.body["reason"], "NotFound");
    EXPECT_EQ(missing.body["details"]["name"], "nope");
    EXPECT_EQ(Client(api, kToken).get("/api/v1/namespaces/ns1/pods/x", "DELETE").status, 405);
    EXPECT_EQ(Client(api, kToken).get("/api/v1/namespaces/ns1/widgets").status, 404);
    HttpResult ns = Client(api, kToken).get("/api/v1/namespaces/ns1");
    EXPECT_EQ(ns.body["kind"], "Namespace");
    EXPECT_FALSE(ns.body["metadata"].contains("namespace"));
}

TEST_F(KubeApiServerTest, ControlApiAssignsVersionsAndChecksConflicts) {
    auto a = api.create("pods", pod("ns1", "a", "node1"));
    ASSERT_TRUE(a);
    EXPECT_EQ((*a)["metadata"]["resourceVersion"], std::to_string(api.resource_version()));
    EXPECT_FALSE(api.create("Pod", pod("ns1", "a", "node1"))) << "AlreadyExists";
    json stale = *a;
    json changed = *a;
    changed["spec"]["nodeName"] = "node2";
    auto updated = api.update("Pod", changed);
    ASSERT_TRUE(updated);
    EXPECT_EQ((*updated)["metadata"]["uid"], (*a)["metadata"]["uid"]);
    EXPECT_NE((*updated)["metadata"]["resourceVersion"], (*a)["metadata"]["resourceVersion"]);
    stale["spec"]["nodeName"] = "node3";
    auto conflict = api.update("Pod", stale);
    ASSERT_FALSE(conflict);
    EXPECT_NE(conflict.error().message.find("Conflict"), std::string::npos);
    uint64_t rv = api.resource_version();
    EXPECT_TRUE(api.update("Pod", *updated));
    EXPECT_EQ(api.resource_version(), rv) << "a no-op update makes no new version";
    EXPECT_FALSE(api.create("Gadget", json::object()));
}

TEST_F(KubeApiServerTest, WatchFromResourceVersionReplaysInOrder) {
    seed();  // resourceVersion "0" would mean "any version", not "from the start"
    uint64_t rv0 = api.resource_version();
    auto a = api.create("Pod", pod("ns1", "a", "node1"));
    ASSERT_TRUE(a);
    json changed = *a;
    changed["status"]["phase"] = "Succeeded";
    ASSERT_TRUE(api.update("Pod", changed));
    ASSERT_TRUE(api.remove("Pod", "ns1", "a"));

    Client c(api, kToken);
    ASSERT_TRUE(c.watch("/api/v1/namespaces/ns1/pods?watch=true&resourceVersion=" + std::to_string(rv0)));
    std::vector<std::string> types;
    uint64_t last = rv0;
    for (int i = 0; i < 3; ++i) {
        auto ev = c.next();
        ASSERT_TRUE(ev);
        types.push_back((*ev)["type"]);
        uint64_t rv = std::stoull((*ev)["object"]["metadata"]["resourceVersion"].get<std::string>());
        EXPECT_GT(rv, last);
        last = rv;
        EXPECT_EQ((*ev)["object"]["kind"], "Pod");
    }
    EXPECT_EQ(types, (std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"}));

    // Live events follow the replay on the same stream.
    ASSERT_TRUE(api.create("Pod", pod("ns1", "b", "node1")));
    auto live = c.next();
    ASSERT_TRUE(live);
    EXPECT_EQ((*live)["type"], "ADDED");
    EXPECT_EQ((*live)["object"]["metadata"]["name"], "b");
    EXPECT_EQ(api.watch_calls("pods"), 1u);
}

TEST_F(KubeApiServerTest, WatchWithoutResourceVersionStartsWithCurrentState) {
    seed();
    Client c(api, kToken);
    ASSERT_TRUE(c.watch("/apis/aadpodidentity.k8s.io/v1/namespaces/ns1/azureidentitybindings?watch=1"));
    auto ev = c.next();
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["type"], "ADDED");
    EXPECT_EQ((*ev)["object"]["metadata"]["name"], "b1");
    EXPECT_FALSE(c.next(200ms));
}

TEST_F(KubeApiServerTest, BookmarksCarryOnlyTheResourceVersion) {
    seed();
    api.set_bookmark_interval(100ms);
    Client c(api, kToken);
    std::string rv = std::to_string(api.resource_version());
    ASSERT_TRUE(c.watch("/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion=" + rv));
    auto ev = c.next(3s);
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["type"], "BOOKMARK");
    EXPECT_EQ((*ev)["object"]["kind"], "Pod");
    EXPECT_EQ((*ev)["object"]["metadata"], json({{"resourceVersion", rv}}));
}

TEST_F(KubeApiServerTest, WatchFromCompactedVersionGets410) {
    seed();
    uint64_t old_rv = api.resource_version() - 1;
    api.compact();
    Client c(api, kToken);
    ASSERT_TRUE(c.watch("/api/v1/pods?watch=true&resourceVersion=" + std::to_string(old_rv)));
    auto ev = c.next();
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["type"], "ERROR");
    EXPECT_EQ((*ev)["object"]["kind"], "Status");
    EXPECT_EQ((*ev)["object"]["code"], 410);
    EXPECT_EQ((*ev)["object"]["reason"], "Expired");
    EXPECT_EQ(c.wait_end(), std::optional<bool>(true));

    // The current version is still watchable.
    Client now(api, kToken);
    ASSERT_TRUE(now.watch("/api/v1/pods?watch=true&resourceVersion=" + std::to_string(api.resource_version())));
    EXPECT_FALSE(now.next(200ms));
}

TEST_F(KubeApiServerTest, HistoryLimitExpiresOlderVersions) {
    ASSERT_TRUE(api.create("Pod", pod("ns1", "first", "node1")));
    api.set_watch_history_limit(2);
    uint64_t rv0 = api.resource_version();
    for (const char* name : {"a", "b", "c", "d"})
        ASSERT_TRUE(api.create("Pod", pod("ns1", name, "node1")));
    Client old(api, kToken);
    ASSERT_TRUE(old.watch("/api/v1/pods?watch=true&resourceVersion=" + std::to_string(rv0)));
    EXPECT_EQ((*old.next())["object"]["code"], 410);
    Client recent(api, kToken);
    ASSERT_TRUE(recent.watch("/api/v1/pods?watch=true&resourceVersion=" + std::to_string(rv0 + 2)));
    EXPECT_EQ((*recent.next())["object"]["metadata"]["name"], "c");
    EXPECT_EQ((*recent.next())["object"]["metadata"]["name"], "d");
}

TEST_F(KubeApiServerTest, DropWatchesCutsStreamsOff) {
    Client a(api, kToken), b(api, kToken);
    ASSERT_TRUE(a.watch("/api/v1/pods?watch=true"));
    ASSERT_TRUE(b.watch("/apis/aadpodidentity.k8s.io/v1/azureidentities?watch=true"));
    ASSERT_TRUE(KubeApiServer::wait_for([&] { return api.open_watches() == 2; }));
    api.drop_watches();
    EXPECT_EQ(a.wait_end(), std::optional<bool>(false)) << "no final chunk: the stream was cut";
    EXPECT_EQ(b.wait_end(), std::optional<bool>(false));
    EXPECT_TRUE(KubeApiServer::wait_for([&] { return api.open_watches() == 0; }));
    // Other requests keep working.
    EXPECT_EQ(Client(api, kToken).get("/api/v1/pods").status, 200);
}

TEST_F(KubeApiServerTest, WatchTimeoutEndsTheStreamCleanly) {
    Client c(api, kToken);
    ASSERT_TRUE(c.watch("/api/v1/pods?watch=true&timeoutSeconds=1"));
    EXPECT_EQ(c.wait_end(3s), std::optional<bool>(true));
}

TEST_F(KubeApiServerTest, FieldSelectorFiltersWatchEvents) {
    Client c(api, kToken);
    ASSERT_TRUE(c.watch("/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dnode1"));
    ASSERT_TRUE(KubeApiServer::wait_for([&] { return api.open_watches() == 1; }));
    ASSERT_TRUE(api.create("Pod", pod("ns1", "elsewhere", "node2")));
    auto mine = api.create("Pod", pod("ns1", "mine", "node1"));
    ASSERT_TRUE(mine);
    auto ev = c.next();
    ASSERT_TRUE(ev);
    EXPECT_EQ((*ev)["type"], "ADDED");
    EXPECT_EQ((*ev)["object"]["metadata"]["name"], "mine");

    // Leaving the selection is a DELETED for this watch; joining it is an ADDED.
    json moved = *mine;
    moved["spec"]["nodeName"] = "node2";
    ASSERT_TRUE(api.update("Pod", moved));
    auto elsewhere = api.get("Pod", "ns1", "elsewhere");
    ASSERT_TRUE(elsewhere);
    (*elsewhere)["spec"]["nodeName"] = "node1";
    ASSERT_TRUE(api.update("Pod", *elsewhere));
    auto left = c.next();
    auto joined = c.next();
    ASSERT_TRUE(left && joined);
    EXPECT_EQ((*left)["type"], "DELETED");
    EXPECT_EQ((*left)["object"]["metadata"]["name"], "mine");
    EXPECT_EQ((*joined)["type"], "ADDED");
    EXPECT_EQ((*joined)["object"]["metadata"]["name"], "elsewhere");
}

TEST_F(KubeApiServerTest, TokenRotationAndClientCertificates) {
    HttpResult ok = Client(api, kToken).get("/api/v1/pods");
    EXPECT_EQ(ok.status, 200);
    api.set_tokens({"rotated"});
    HttpResult old = Client(api, kToken).get("/api/v1/pods");
    EXPECT_EQ(old.status, 401);
    EXPECT_EQ(old.body["kind"], "Status");
    EXPECT_EQ(old.body["reason"], "Unauthorized");
    EXPECT_EQ(old.body["code"], 401);
    EXPECT_EQ(Client(api, "rotated").get("/api/v1/pods").status, 200);
    EXPECT_EQ(Client(api, "").get("/api/v1/pods").status, 401);
    EXPECT_EQ(Client(api, "", /*client_cert=*/true).get("/api/v1/pods").status, 200);
    EXPECT_EQ(api.auth_failures(), 2u);
}

TEST_F(KubeApiServerTest, StopAndStartOnTheSamePort) {
    uint16_t port = api.port();
    Client watcher(api, kToken);
    ASSERT_TRUE(watcher.watch("/api/v1/pods?watch=true"));
    api.stop();
    EXPECT_FALSE(api.listening());
    EXPECT_EQ(watcher.wait_end(), std::optional<bool>(false));
    EXPECT_EQ(Client(api, kToken).get("/api/v1/pods").status, 0) << "nothing listens while stopped";
    ASSERT_TRUE(api.create("Pod", pod("ns1", "while-down", "node1")));  // the store outlives the listener
    auto again = api.start();
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(*again, port);
    HttpResult r = Client(api, kToken).get("/api/v1/pods");
    EXPECT_EQ(names_of(r.body), std::vector<std::string>{"while-down"});
}

}  // namespace
}  // namespace podid::test
