// The Kubernetes API-server double checked two ways: against the real kubectl (discovery, lists, CRDs,
// selectors, jsonpath, Unauthorized, --watch), and at the protocol level with a small Beast client (list
// resourceVersions and chunking, watch replay, bookmarks, 410 Expired, dropped streams, selector-filtered
// watches, token rotation, restarts), and its service-account tokens both ways: `kubectl create token` and
// `kubectl get --raw` of the OIDC documents, then every TokenRequest answer over HTTPS. Tokens are verified with
// the IMDS emulator's RS256 code against the published JWKS, not with the double's own key. Needs no
// privileges: everything is on 127.0.0.1.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <ctime>
#include <optional>
#include <regex>
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

#include "imds-emulator/base64url.h"
#include "imds-emulator/jwt.h"
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

json pod_of(const std::string& ns, const std::string& name, const std::string& service_account,
            const std::string& node) {
    json spec = {{"nodeName", node}, {"containers", json::array()}};
    if (!service_account.empty())
        spec["serviceAccountName"] = service_account;
    return {{"metadata", {{"name", name}, {"namespace", ns}}}, {"spec", spec}, {"status", {{"phase", "Running"}}}};
}

std::string rfc3339(int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool is_uuid(const std::string& text) {
    static const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    return std::regex_match(text, uuid);
}

// Kubernetes' key id: base64url SHA-256 of the public key's DER SubjectPublicKeyInfo.
std::string kid_of_pem(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* key = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (!key)
        return "(no public key in PEM)";
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(key, &der);
    EVP_PKEY_free(key);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest(der, static_cast<size_t>(len), digest, &digest_len, EVP_sha256(), nullptr);
    OPENSSL_free(der);
    return emulator::base64url_encode(std::string_view(reinterpret_cast<char*>(digest), digest_len));
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
    std::string content_type;
    std::string cache_control;
    std::string warning;
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

    // Connects and sends GET (or `method`, with `body` when not empty) for `target`; false when the server cannot
    // be reached.
    bool send(const std::string& target, const std::string& method = "GET", const std::string& body = "") {
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
        http::request<http::string_body> req{http::string_to_verb(method), target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::accept, "application/json");
        if (!token_.empty())
            req.set(http::field::authorization, "Bearer " + token_);
        if (!body.empty()) {
            req.set(http::field::content_type, "application/json");
            req.body() = body;
        }
        req.prepare_payload();
        done = false;
        http::async_write(*stream_, req, [&](auto e, size_t) { ec = e, done = true; });
        return run_until(done, 5s) && !ec;
    }

    HttpResult post(const std::string& target, const std::string& body) { return get(target, "POST", body); }

    HttpResult get(const std::string& target, const std::string& method = "GET", const std::string& body = "") {
        HttpResult out;
        if (!send(target, method, body))
            return out;
        http::response<http::string_body> res;
        boost::system::error_code ec;
        bool done = false;
        http::async_read(*stream_, buffer_, res, [&](auto e, size_t) { ec = e, done = true; });
        if (!run_until(done, 5s) || ec)
            return out;
        out.status = res.result_int();
        out.raw = res.body();
        out.content_type = res[http::field::content_type];
        out.cache_control = res[http::field::cache_control];
        out.warning = res[http::field::warning];
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

    // Service accounts and pods for TokenRequests: ns1/workload runs pod "app" on node1; pod "x" (from seed) runs
    // as ns1/default; pod "bare" names no service account (admission would have made it "default").
    void seed_service_accounts() {
        seed();
        for (const char* name : {"default", "workload"}) {
            auto sa = api.create("ServiceAccount", {{"metadata", {{"name", name}, {"namespace", "ns1"}}}});
            ASSERT_TRUE(sa) << sa.error().message;
        }
        auto app = api.create("Pod", pod_of("ns1", "app", "workload", "node1"));
        ASSERT_TRUE(app) << app.error().message;
        ASSERT_TRUE(api.create("Pod", pod_of("ns1", "bare", "", "")));
        pod_uid = (*app)["metadata"]["uid"];
        sa_uid = (*api.get("ServiceAccount", "ns1", "workload"))["metadata"]["uid"];
    }

    static KubeApiServerOptions options() {
        KubeApiServerOptions o;
        o.tokens = {kToken};
        return o;
    }

    KubeApiServer api{options()};
    std::string home;
    std::string pod_uid, sa_uid;  // of ns1/app and ns1/workload, once seeded
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

// ---- service-account tokens: kubectl --------------------------------------------------------------------

TEST_F(KubeApiServerTest, KubectlCreateTokenBoundToPodVerifiesAgainstThePublishedJwks) {
    require_kubectl();
    seed_service_accounts();
    int64_t before = unix_now();
    Kubectl r =
        kubectl({"create", "token", "workload", "-n", "ns1", "--audience", "api://AzureADTokenExchange", "--duration",
                 "1h", "--bound-object-kind", "Pod", "--bound-object-name", "app", "--bound-object-uid", pod_uid});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // kubectl ends the token with a newline only on a terminal; into a pipe it writes the token alone.
    std::string token = r.out;
    ASSERT_EQ(token.find_first_of(" \t\r\n"), std::string::npos) << r.out;

    Kubectl config_out = kubectl({"get", "--raw", "/.well-known/openid-configuration"});
    ASSERT_EQ(config_out.exit_code, 0) << config_out.err;
    json config = json::parse(config_out.out, nullptr, false);
    EXPECT_EQ(config, json({{"issuer", api.url()},
                            {"jwks_uri", api.url() + "/openid/v1/jwks"},
                            {"response_types_supported", json::array({"id_token"})},
                            {"subject_types_supported", json::array({"public"})},
                            {"id_token_signing_alg_values_supported", json::array({"RS256"})}}))
        << config_out.out;

    Kubectl jwks_out = kubectl({"get", "--raw", "/openid/v1/jwks"});
    ASSERT_EQ(jwks_out.exit_code, 0) << jwks_out.err;
    json jwks = json::parse(jwks_out.out, nullptr, false);
    ASSERT_TRUE(jwks.is_object() && jwks["keys"].is_array() && jwks["keys"].size() == 1) << jwks_out.out;
    json key = jwks["keys"][0];
    std::set<std::string> members;
    for (const auto& item : key.items())
        members.insert(item.key());
    EXPECT_EQ(members, (std::set<std::string>{"use", "kty", "kid", "alg", "n", "e"}));
    EXPECT_EQ(key["use"], "sig");
    EXPECT_EQ(key["kty"], "RSA");
    EXPECT_EQ(key["alg"], "RS256");
    EXPECT_EQ(key["e"], "AQAB");
    EXPECT_EQ(emulator::base64url_decode(key["n"].get<std::string>()).value_or("").size(), 256u) << "RSA-2048";
    auto pem = api.service_account_public_key_pem();
    ASSERT_TRUE(pem) << pem.error().message;
    EXPECT_EQ(key["kid"], kid_of_pem(*pem)) << "kid = base64url(SHA-256(DER public key)), as Kubernetes makes it";

    // Verified with the emulator's RS256 code and nothing but the JWKS kubectl fetched.
    auto verified = emulator::verify_jwt(token, jwks);
    ASSERT_TRUE(verified) << verified.error().message;
    EXPECT_EQ(verified->header, json({{"alg", "RS256"}, {"kid", key["kid"]}})) << "no typ, as go-jose writes it";
    const json& claims = verified->claims;
    ASSERT_TRUE(claims["iat"].is_number_integer()) << claims.dump();
    int64_t iat = claims["iat"];
    EXPECT_GE(iat, before - 1);
    EXPECT_LE(iat, unix_now() + 1);
    ASSERT_TRUE(claims["jti"].is_string());
    EXPECT_TRUE(is_uuid(claims["jti"])) << claims["jti"];
    json expected = {{"aud", json::array({"api://AzureADTokenExchange"})},
                     {"exp", iat + 3600},
                     {"iat", iat},
                     {"iss", api.url()},
                     {"jti", claims["jti"]},
                     {"kubernetes.io",
                      {{"namespace", "ns1"},
                       {"node", {{"name", "node1"}}},
                       {"pod", {{"name", "app"}, {"uid", pod_uid}}},
                       {"serviceaccount", {{"name", "workload"}, {"uid", sa_uid}}}}},
                     {"nbf", iat},
                     {"sub", "system:serviceaccount:ns1:workload"}};
    EXPECT_EQ(claims, expected) << claims.dump(2);
    EXPECT_TRUE(api.verify_token(token));

    EXPECT_EQ(api.token_requests(), 1u);
    EXPECT_EQ(api.token_requests("ns1", "workload"), 1u);
    auto issued = api.issued_tokens();
    ASSERT_EQ(issued.size(), 1u);
    EXPECT_EQ(issued[0].token, token);
    EXPECT_EQ(issued[0].audiences, std::vector<std::string>{"api://AzureADTokenExchange"});
    EXPECT_EQ(issued[0].bound_kind, "Pod");
    EXPECT_EQ(issued[0].bound_uid, pod_uid);
    EXPECT_EQ(issued[0].expiration_seconds, 3600);
    bool recorded = false;
    std::string log;
    for (const auto& rec : api.requests()) {
        recorded |=
            rec.method == "POST" &&
            rec.target.substr(0, rec.target.find('?')) == "/api/v1/namespaces/ns1/serviceaccounts/workload/token" &&
            rec.verb == "create" && rec.resource == "serviceaccounts/token" && rec.status == 201 &&
            rec.user == std::string("token:") + kToken;
        log += rec.method + " " + rec.target + " " + rec.verb + " " + rec.resource + " " + std::to_string(rec.status) +
               " " + rec.user + "\n";
    }
    EXPECT_TRUE(recorded) << log;
}

TEST_F(KubeApiServerTest, KubectlCreateTokenRefusalsCarryTheRealMessages) {
    require_kubectl();
    seed_service_accounts();
    const std::string wrong_uid = "00000000-0000-4000-8000-000000000000";
    struct Row {
        std::string name;
        std::vector<std::string> args;
        std::string message;  // what kubectl prints after "error: failed to create token: "
    } rows[] = {
        {"shorter than 10 minutes",
         {"create", "token", "workload", "-n", "ns1", "--duration", "5m"},
         "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 300: may not "
         "specify a duration less than 10 minutes"},
        {"pod uid mismatch",
         {"create", "token", "workload", "-n", "ns1", "--bound-object-kind", "Pod", "--bound-object-name", "app",
          "--bound-object-uid", wrong_uid},
         "Operation cannot be fulfilled on Pod \"app\": the UID in the bound object reference (" + wrong_uid +
             ") does not match the UID in record. The object might have been deleted and then recreated"},
        {"pod of another service account",
         {"create", "token", "workload", "-n", "ns1", "--bound-object-kind", "Pod", "--bound-object-name", "x"},
         "cannot bind token for serviceaccount \"workload\" to pod running with different serviceaccount name."},
        {"missing service account", {"create", "token", "ghost", "-n", "ns1"}, "serviceaccounts \"ghost\" not found"},
        {"missing pod",
         {"create", "token", "workload", "-n", "ns1", "--bound-object-kind", "Pod", "--bound-object-name", "ghost"},
         "pods \"ghost\" not found"},
    };
    for (const auto& row : rows) {
        Kubectl r = kubectl(row.args);
        EXPECT_NE(r.exit_code, 0) << row.name;
        EXPECT_TRUE(r.out.empty()) << row.name << ": " << r.out;
        EXPECT_NE(r.err.find("error: failed to create token: " + row.message), std::string::npos)
            << row.name << ": " << r.err;
    }
    EXPECT_TRUE(api.issued_tokens().empty());
    EXPECT_EQ(api.token_requests(), 5u);
}

TEST_F(KubeApiServerTest, KubectlCreateTokenDefaultsAndTheServersCap) {
    require_kubectl();
    seed_service_accounts();
    Kubectl plain = kubectl({"create", "token", "workload", "-n", "ns1"});
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    auto decoded = api.verify_token(plain.out);
    ASSERT_TRUE(decoded) << decoded.error().message;
    const json& claims = decoded->claims;
    EXPECT_EQ(claims["aud"], json::array({api.url()})) << "no audience: the API audiences, i.e. the issuer";
    EXPECT_EQ(claims["exp"].get<int64_t>() - claims["iat"].get<int64_t>(), 3600) << "the default lifetime";
    EXPECT_EQ(claims["kubernetes.io"],
              json({{"namespace", "ns1"}, {"serviceaccount", {{"name", "workload"}, {"uid", sa_uid}}}}))
        << "an unbound token names no pod";

    // The server shortens what it was asked for and says so; clients must read the answer's expiry.
    api.set_max_token_expiration(std::chrono::hours(1));
    Kubectl capped = kubectl({"create", "token", "workload", "-n", "ns1", "--duration", "2h", "-o", "json"});
    ASSERT_EQ(capped.exit_code, 0) << capped.err;
    EXPECT_NE(capped.err.find("Warning: requested expiration of 7200 seconds shortened to 3600 seconds"),
              std::string::npos)
        << capped.err;
    json answer = json::parse(capped.out, nullptr, false);
    ASSERT_TRUE(answer.is_object()) << capped.out;
    EXPECT_EQ(answer["spec"]["expirationSeconds"], 3600);
    auto token = api.verify_token(answer["status"]["token"].get<std::string>());
    ASSERT_TRUE(token) << token.error().message;
    int64_t iat = token->claims["iat"];
    EXPECT_EQ(token->claims["exp"], iat + 3600);
    EXPECT_EQ(answer["status"]["expirationTimestamp"], rfc3339(iat + 3600));
}

// ---- service-account tokens: protocol level -------------------------------------------------------------

TEST_F(KubeApiServerTest, TokenRequestAnswers) {
    seed_service_accounts();
    const std::string wrong_uid = "00000000-0000-4000-8000-000000000000";
    auto request = [](json spec) {
        return json{{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", std::move(spec)}}
            .dump();
    };
    auto pod_ref = [](const std::string& name, const std::string& uid = "") {
        json ref = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", name}};
        if (!uid.empty())
            ref["uid"] = uid;
        return ref;
    };
    const std::string aud = "api://AzureADTokenExchange";
    struct Row {
        std::string name;
        std::string sa;  // "ns/name"
        std::string body;
        int status;
        std::string reason;    // of the Status; "" for 201
        std::string message;   // exact Status message
        int64_t lifetime = 0;  // for 201: exp - iat
    } rows[] = {
        {"unbound, all defaults", "ns1/workload", "{}", 201, "", "", 3600},
        {"kubectl's shape: nulls for what is unset", "ns1/workload",
         R"({"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},)"
         R"("spec":{"audiences":null,"expirationSeconds":null,"boundObjectRef":null},)"
         R"("status":{"token":"","expirationTimestamp":null}})",
         201, "", "", 3600},
        {"bound to its pod, uid given", "ns1/workload",
         request({{"audiences", json::array({aud})},
                  {"expirationSeconds", 600},
                  {"boundObjectRef", pod_ref("app", pod_uid)}}),
         201, "", "", 600},
        {"bound to its pod, no uid", "ns1/workload", request({{"boundObjectRef", pod_ref("app")}}), 201, "", "", 3600},
        {"a pod without serviceAccountName runs as default", "ns1/default",
         request({{"boundObjectRef", pod_ref("bare")}}), 201, "", "", 3600},
        {"599 s", "ns1/workload", request({{"expirationSeconds", 599}}), 422, "Invalid",
         "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not "
         "specify a duration less than 10 minutes"},
        {"over 2^32 s", "ns1/workload", request({{"expirationSeconds", (int64_t{1} << 32) + 1}}), 422, "Invalid",
         "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 4294967297: may "
         "not specify a duration larger than 2^32 seconds"},
        {"missing service account", "ns1/ghost", "{}", 404, "NotFound", "serviceaccounts \"ghost\" not found"},
        {"service account of another namespace", "ns2/workload", "{}", 404, "NotFound",
         "serviceaccounts \"workload\" not found"},
        {"missing pod", "ns1/workload", request({{"boundObjectRef", pod_ref("ghost")}}), 404, "NotFound",
         "pods \"ghost\" not found"},
        {"pod of another service account", "ns1/workload", request({{"boundObjectRef", pod_ref("x")}}), 400,
         "BadRequest",
         "cannot bind token for serviceaccount \"workload\" to pod running with different serviceaccount name."},
        {"pod uid mismatch", "ns1/workload", request({{"boundObjectRef", pod_ref("app", wrong_uid)}}), 409, "Conflict",
         "Operation cannot be fulfilled on Pod \"app\": the UID in the bound object reference (" + wrong_uid +
             ") does not match the UID in record. The object might have been deleted and then recreated"},
        {"secret (the double keeps none)", "ns1/workload",
         request({{"boundObjectRef", {{"apiVersion", "v1"}, {"kind", "Secret"}, {"name", "s"}}}}), 404, "NotFound",
         "secrets \"s\" not found"},
        {"node (feature gate off)", "ns1/workload",
         request({{"boundObjectRef", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", "node1"}}}}), 400, "BadRequest",
         "cannot bind token to a Node object as the \"ServiceAccountTokenNodeBinding\" feature-gate is disabled"},
        {"configmap", "ns1/workload",
         request({{"boundObjectRef", {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "c"}}}}), 400, "BadRequest",
         "cannot bind token to object of type /v1, Kind=ConfigMap"},
        {"deployment", "ns1/workload",
         request({{"boundObjectRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "d"}}}}), 400,
         "BadRequest", "cannot bind token to object of type apps/v1, Kind=Deployment"},
        {"body names another service account", "ns1/workload",
         json{{"metadata", {{"name", "other"}}}, {"spec", json::object()}}.dump(), 422, "Invalid",
         "TokenRequest.authentication.k8s.io \"workload\" is invalid: metadata.name: Invalid value: \"other\": must "
         "match the service account name if specified"},
        {"body names another namespace", "ns1/workload", json{{"metadata", {{"namespace", "ns2"}}}}.dump(), 422,
         "Invalid",
         "TokenRequest.authentication.k8s.io \"workload\" is invalid: metadata.namespace: Invalid value: \"ns2\": "
         "must match the service account namespace if specified"},
        {"expirationSeconds as a string", "ns1/workload", R"({"spec":{"expirationSeconds":"3600"}})", 400, "BadRequest",
         "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal string into Go "
         "struct field TokenRequestSpec.spec.expirationSeconds of type int64"},
        {"wrong apiVersion", "ns1/workload", R"({"apiVersion":"v1","kind":"TokenRequest"})", 400, "BadRequest",
         "the API version in the data (v1) does not match the expected API version (authentication.k8s.io/v1)"},
    };
    for (const auto& row : rows) {
        std::string ns = row.sa.substr(0, row.sa.find('/'));
        std::string name = row.sa.substr(row.sa.find('/') + 1);
        HttpResult r =
            Client(api, kToken).post("/api/v1/namespaces/" + ns + "/serviceaccounts/" + name + "/token", row.body);
        ASSERT_EQ(r.status, row.status) << row.name << ": " << r.raw;
        if (row.status != 201) {
            EXPECT_EQ(r.body["kind"], "Status") << row.name;
            EXPECT_EQ(r.body["code"], row.status) << row.name;
            EXPECT_EQ(r.body["reason"], row.reason) << row.name;
            EXPECT_EQ(r.body["message"], row.message) << row.name;
            continue;
        }
        EXPECT_EQ(r.body["kind"], "TokenRequest") << row.name;
        EXPECT_EQ(r.body["apiVersion"], "authentication.k8s.io/v1") << row.name;
        EXPECT_EQ(r.body["metadata"]["name"], name) << row.name;
        EXPECT_EQ(r.body["metadata"]["namespace"], ns) << row.name;
        auto token = api.verify_token(r.body["status"]["token"].get<std::string>());
        ASSERT_TRUE(token) << row.name << ": " << token.error().message;
        int64_t iat = token->claims["iat"];
        EXPECT_EQ(token->claims["exp"].get<int64_t>() - iat, row.lifetime) << row.name;
        EXPECT_EQ(r.body["spec"]["expirationSeconds"], row.lifetime) << row.name;
        EXPECT_EQ(r.body["status"]["expirationTimestamp"], rfc3339(iat + row.lifetime)) << row.name;
        EXPECT_EQ(r.body["metadata"]["creationTimestamp"], rfc3339(iat)) << row.name;
        EXPECT_EQ(token->claims["sub"], "system:serviceaccount:" + ns + ":" + name) << row.name;
        EXPECT_EQ(r.body["spec"]["audiences"], token->claims["aud"]) << row.name;
    }
}

TEST_F(KubeApiServerTest, TokenRequestDetailsOfInvalidAndConflict) {
    seed_service_accounts();
    HttpResult invalid =
        Client(api, kToken)
            .post("/api/v1/namespaces/ns1/serviceaccounts/workload/token", R"({"spec":{"expirationSeconds":60}})");
    ASSERT_EQ(invalid.status, 422) << invalid.raw;
    EXPECT_EQ(invalid.body["details"],
              json({{"group", "authentication.k8s.io"},
                    {"kind", "TokenRequest"},
                    {"causes",
                     json::array({{{"reason", "FieldValueInvalid"},
                                   {"message", "Invalid value: 60: may not specify a duration less than 10 minutes"},
                                   {"field", "spec.expirationSeconds"}}})}}));
    json conflict_body = {{"spec", {{"boundObjectRef", {{"kind", "Pod"}, {"name", "app"}, {"uid", "nope"}}}}}};
    HttpResult conflict =
        Client(api, kToken).post("/api/v1/namespaces/ns1/serviceaccounts/workload/token", conflict_body.dump());
    ASSERT_EQ(conflict.status, 409) << conflict.raw;
    EXPECT_EQ(conflict.body["details"], json({{"name", "app"}, {"kind", "Pod"}}));
    EXPECT_EQ(Client(api, kToken).get("/api/v1/namespaces/ns1/serviceaccounts/workload/token").status, 405);
    EXPECT_EQ(Client(api, "").post("/api/v1/namespaces/ns1/serviceaccounts/workload/token", "{}").status, 401);
    EXPECT_EQ(api.token_requests("ns1", "workload"), 3u) << "the 401 never reached the token endpoint";
}

TEST_F(KubeApiServerTest, TokenRequestAnswerEchoesTheRequest) {
    seed_service_accounts();
    json ref = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", "app"}};
    json body = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenRequest"},
                 {"spec", {{"audiences", {"a1", "a2"}}, {"expirationSeconds", 1200}, {"boundObjectRef", ref}}}};
    HttpResult r = Client(api, kToken).post("/api/v1/namespaces/ns1/serviceaccounts/workload/token", body.dump());
    ASSERT_EQ(r.status, 201) << r.raw;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.body["spec"], json({{"audiences", {"a1", "a2"}}, {"expirationSeconds", 1200}, {"boundObjectRef", ref}}))
        << "the reference as sent: the server does not fill the uid in";
    auto token = api.verify_token(r.body["status"]["token"].get<std::string>());
    ASSERT_TRUE(token);
    EXPECT_EQ(token->claims["aud"], json({"a1", "a2"}));
    EXPECT_EQ(token->claims["kubernetes.io"]["pod"], json({{"name", "app"}, {"uid", pod_uid}}));
    EXPECT_NE(token->claims["jti"],
              api.verify_token(Client(api, kToken)
                                   .post("/api/v1/namespaces/ns1/serviceaccounts/workload/token", body.dump())
                                   .body["status"]["token"]
                                   .get<std::string>())
                  ->claims["jti"])
        << "every token has its own id";
}

TEST_F(KubeApiServerTest, MaxExpirationShortensWithAWarning) {
    seed_service_accounts();
    api.set_max_token_expiration(std::chrono::minutes(15));
    HttpResult r =
        Client(api, kToken)
            .post("/api/v1/namespaces/ns1/serviceaccounts/workload/token", R"({"spec":{"expirationSeconds":7200}})");
    ASSERT_EQ(r.status, 201) << r.raw;
    EXPECT_EQ(r.warning, "299 - \"requested expiration of 7200 seconds shortened to 900 seconds\"");
    EXPECT_EQ(r.body["spec"]["expirationSeconds"], 900);
    auto token = api.verify_token(r.body["status"]["token"].get<std::string>());
    ASSERT_TRUE(token);
    EXPECT_EQ(token->claims["exp"].get<int64_t>() - token->claims["iat"].get<int64_t>(), 900);
    ASSERT_EQ(api.issued_tokens().size(), 1u);
    EXPECT_EQ(api.issued_tokens()[0].expiration_seconds, 900);

    HttpResult shorter =
        Client(api, kToken)
            .post("/api/v1/namespaces/ns1/serviceaccounts/workload/token", R"({"spec":{"expirationSeconds":600}})");
    EXPECT_EQ(shorter.body["spec"]["expirationSeconds"], 600);
    EXPECT_EQ(shorter.warning, "") << "nothing shortened, nothing said";
}

TEST_F(KubeApiServerTest, KubeletsProjectedTokenLifetimeIsExtended) {
    seed_service_accounts();
    json ref = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", "app"}};
    // kubelet's default request (3607 s, API audiences, bound to the pod) gets a year, warned after 3607 s.
    HttpResult kubelet = Client(api, kToken)
                             .post("/api/v1/namespaces/ns1/serviceaccounts/workload/token",
                                   json{{"spec", {{"expirationSeconds", 3607}, {"boundObjectRef", ref}}}}.dump());
    ASSERT_EQ(kubelet.status, 201) << kubelet.raw;
    auto token = api.verify_token(kubelet.body["status"]["token"].get<std::string>());
    ASSERT_TRUE(token);
    int64_t iat = token->claims["iat"];
    EXPECT_EQ(token->claims["exp"], iat + 365 * 24 * 3600);
    EXPECT_EQ(token->claims["kubernetes.io"]["warnafter"], iat + 3607);
    EXPECT_EQ(kubelet.body["status"]["expirationTimestamp"], rfc3339(iat + 3607)) << "the answer keeps 3607 s";

    // Another audience (Entra's) or no pod: no extension.
    for (const json& spec : {json{{"expirationSeconds", 3607}, {"boundObjectRef", ref}, {"audiences", {"api://x"}}},
                             json{{"expirationSeconds", 3607}}}) {
        HttpResult r = Client(api, kToken)
                           .post("/api/v1/namespaces/ns1/serviceaccounts/workload/token", json{{"spec", spec}}.dump());
        auto t = api.verify_token(r.body["status"]["token"].get<std::string>());
        ASSERT_TRUE(t) << r.raw;
        EXPECT_EQ(t->claims["exp"].get<int64_t>() - t->claims["iat"].get<int64_t>(), 3607) << spec.dump();
        EXPECT_FALSE(t->claims["kubernetes.io"].contains("warnafter")) << spec.dump();
    }
}

TEST_F(KubeApiServerTest, OidcDocumentsAreServedWithoutCredentials) {
    struct Row {
        std::string path;
        std::string content_type;
    } rows[] = {{"/.well-known/openid-configuration", "application/json"},
                {"/openid/v1/jwks", "application/jwk-set+json"}};
    for (const auto& row : rows) {
        HttpResult anonymous = Client(api, "").get(row.path);
        EXPECT_EQ(anonymous.status, 200) << row.path << ": " << anonymous.raw;
        EXPECT_EQ(anonymous.content_type, row.content_type) << row.path;
        EXPECT_EQ(anonymous.cache_control, "public, max-age=3600") << row.path;
        EXPECT_EQ(Client(api, kToken).get(row.path).body, anonymous.body) << row.path;
        EXPECT_EQ(Client(api, "wrong-token").get(row.path).status, 401) << row.path << ": bad credentials still fail";
    }
    EXPECT_EQ(api.requests().front().user, "anonymous");
    EXPECT_EQ(api.requests().front().verb, "discovery");
    EXPECT_EQ(Client(api, "").get("/api/v1/pods").status, 401) << "anonymous gets the OIDC documents only";

    HttpResult jwks = Client(api, "").get("/openid/v1/jwks");
    auto published = api.service_account_jwks();
    ASSERT_TRUE(published);
    EXPECT_EQ(jwks.body, *published);
    EXPECT_EQ(jwks.body["keys"][0]["kid"], *api.service_account_key_id());
    HttpResult config = Client(api, "").get("/.well-known/openid-configuration");
    EXPECT_EQ(config.body["issuer"], api.service_account_issuer());
    EXPECT_EQ(config.body["jwks_uri"], api.url() + "/openid/v1/jwks");

    // The subresource is in discovery, as kubectl api-resources shows it.
    bool listed = false;
    HttpResult core = Client(api, kToken).get("/api/v1");
    for (const auto& r : core.body["resources"])
        listed |= r["name"] == "serviceaccounts/token" && r["kind"] == "TokenRequest" &&
                  r["group"] == "authentication.k8s.io" && r["verbs"] == json::array({"create"});
    EXPECT_TRUE(listed);
}

TEST_F(KubeApiServerTest, ConfiguredIssuerAndAudiences) {
    KubeApiServerOptions o = options();
    o.token_issuer.issuer = "https://oidc.example/cluster-1";
    o.token_issuer.api_audiences = {"https://kubernetes.default.svc"};
    KubeApiServer other(o);
    ASSERT_TRUE(other.listen("127.0.0.1", 0));
    ASSERT_TRUE(other.create("ServiceAccount", {{"metadata", {{"name", "sa"}, {"namespace", "ns1"}}}}));
    HttpResult r = Client(other, kToken).post("/api/v1/namespaces/ns1/serviceaccounts/sa/token", "{}");
    ASSERT_EQ(r.status, 201) << r.raw;
    auto token = other.verify_token(r.body["status"]["token"].get<std::string>());
    ASSERT_TRUE(token);
    EXPECT_EQ(token->claims["iss"], "https://oidc.example/cluster-1");
    EXPECT_EQ(token->claims["aud"], json::array({"https://kubernetes.default.svc"}));
    EXPECT_EQ(other.service_account_issuer(), "https://oidc.example/cluster-1");
    HttpResult config = Client(other, "").get("/.well-known/openid-configuration");
    EXPECT_EQ(config.body["issuer"], "https://oidc.example/cluster-1");
    EXPECT_EQ(config.body["jwks_uri"], other.url() + "/openid/v1/jwks") << "derived from the server's address";

    // Each server has its own key: a token of one does not verify with the other.
    EXPECT_NE(*other.service_account_key_id(), *api.service_account_key_id());
    auto foreign = api.verify_token(r.body["status"]["token"].get<std::string>());
    ASSERT_FALSE(foreign);
    EXPECT_NE(foreign.error().message.find("not this server's key"), std::string::npos) << foreign.error().message;
}

TEST_F(KubeApiServerTest, TokenCountersAndTheirReset) {
    seed_service_accounts();
    for (const char* sa : {"workload", "workload", "default", "ghost"})
        Client(api, kToken).post(std::string("/api/v1/namespaces/ns1/serviceaccounts/") + sa + "/token", "{}");
    EXPECT_EQ(api.token_requests(), 4u);
    EXPECT_EQ(api.token_requests("ns1", "workload"), 2u);
    EXPECT_EQ(api.token_requests("ns1", "default"), 1u);
    EXPECT_EQ(api.token_requests("ns1", "ghost"), 1u) << "refused requests count too";
    EXPECT_EQ(api.token_requests("ns2", "workload"), 0u);
    ASSERT_EQ(api.issued_tokens().size(), 3u);
    EXPECT_EQ(api.issued_tokens()[2].service_account, "default");
    api.clear_requests();
    EXPECT_EQ(api.token_requests(), 0u);
    EXPECT_TRUE(api.issued_tokens().empty());
}

}  // namespace
}  // namespace podid::test
