// A Kubernetes API-server test double speaking the real wire protocol, for podid's Kubernetes-mode tests
// and for checking itself against the real kubectl: HTTPS only (a CA generated at start), bearer-token or
// client-certificate authentication, core v1 pods/serviceaccounts/namespaces and the aadpodidentity.k8s.io/v1
// CRDs, list with selectors and limit/continue chunking, chunked watch streams with history replay,
// bookmarks and 410 Expired, and service-account tokens: the TokenRequest subresource with RS256 JWTs and the
// issuer's OIDC discovery documents. It runs in-process on its own Asio thread; every public function is
// thread-safe and may be called while clients are connected.
//
//   KubeApiServerOptions options;
//   options.tokens = {"t0k3n"};
//   podid::test::KubeApiServer api(options);
//   api.listen("127.0.0.1", 0);
//   api.create("Pod", {{"metadata", {{"name", "a"}, {"namespace", "ns1"}}}, {"spec", {{"nodeName", "node1"}}}});
//   write api.kubeconfig_with_token("t0k3n") to a file, point the client at it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "kube_apiserver_jwt.h"
#include "kube_apiserver_store.h"
#include "kube_apiserver_tokens.h"
#include "tls_certs.h"

namespace podid::test {

struct KubeApiServerOptions {
    std::set<std::string> tokens;  // valid bearer tokens (changeable later with set_tokens)
    PkiOptions pki;
    std::chrono::milliseconds bookmark_interval{10'000};  // for watches with allowWatchBookmarks=true
    size_t history_limit = 1000;                          // events kept for watches resuming from a resourceVersion
    std::string workdir;  // PKI files and kubeconfigs go here; empty: a fresh /tmp dir removed at destruction
    // The service-account token issuer: issuer URL, JWKS URI, API audiences, maximum token lifetime.
    kube::TokenIssuerOptions token_issuer;
};

struct KubeRequestRecord {
    std::string method;
    std::string target;  // path and query as sent
    // "token:<token>", "cert:<CN>", "anonymous" (no credentials, for the OIDC documents only) or "" when
    // authentication failed
    std::string user;
    std::string verb;      // discovery | get | list | watch | create | other
    std::string resource;  // plural; "serviceaccounts/token" for TokenRequests
    int status = 0;
};

class KubeApiServer {
public:
    // Makes the PKI and starts the I/O thread (not yet listening). Throws std::runtime_error when the PKI
    // or the work directory cannot be made: nothing a test could do without them.
    explicit KubeApiServer(KubeApiServerOptions options = {});
    ~KubeApiServer();
    KubeApiServer(const KubeApiServer&) = delete;
    KubeApiServer& operator=(const KubeApiServer&) = delete;

    // Returns a TCP socket fd (unbound, or bound to the address and port listen was given) owned by the
    // server from then on. Lets a test listen inside a network namespace: [&]{ return socket_in_netns(ns, AF_INET,
    // SOCK_STREAM); }. Kept to reopen the listener on start().
    using SocketFactory = std::function<int()>;

    // Listens on address:port (port 0: any free one) and returns the bound port.
    Result<uint16_t> listen(const std::string& address, uint16_t port, SocketFactory make_socket = {});
    // Listens on a socket the caller made (one-shot: start() after stop() then needs listen again).
    Result<uint16_t> listen(int fd, const std::string& address, uint16_t port);
    // API server down: closes the listener and every connection at once (watches end without a final chunk).
    void stop();
    // API server gone without a word, as when its node or the load balancer in front of it vanishes: the listener
    // closes, and every open connection goes silent but stays open, with no FIN or RST. Clients learn of it only
    // from their own timeouts. Keepalive probes are still answered, as by a middlebox that keeps a dead flow.
    // The silenced connections stay so until release_silenced() or the end of the double; start() serves new
    // connections only.
    void stop_silently();
    void release_silenced();  // closes the connections stop_silently() kept (their clients then see the end)
    // Back up on the same address and port (and socket factory).
    Result<uint16_t> start();
    bool listening() const;

    std::string address() const;  // as given to listen
    uint16_t port() const;
    std::string url() const;  // "https://127.0.0.1:PORT"

    const TestPki& pki() const { return pki_; }  // CA, server and client certificates; files in pki().dir

    void set_tokens(std::set<std::string> tokens);  // token rotation: takes effect for the next request
    void add_token(const std::string& token);
    void remove_token(const std::string& token);

    // kubeconfig documents (JSON, which kubectl and client libraries read as YAML) for this server.
    std::string kubeconfig_with_token(const std::string& token) const;
    std::string kubeconfig_with_client_cert() const;
    // Writes `text` to <workdir>/<name> and returns the path.
    Result<std::string> write_file(const std::string& name, const std::string& text) const;
    // In-cluster layout (/var/run/secrets/kubernetes.io/serviceaccount): token, ca.crt, namespace in `dir`.
    Result<void> write_service_account_dir(const std::string& dir, const std::string& token,
                                           const std::string& ns = "kube-system") const;

    // Objects. `kind` is a kind ("Pod"), plural ("pods") or singular ("pod"). The server assigns uid,
    // resourceVersion, creationTimestamp, kind and apiVersion; errors carry the API server's Status message.
    Result<nlohmann::json> create(const std::string& kind, nlohmann::json object);
    Result<nlohmann::json> update(const std::string& kind, nlohmann::json object);
    Result<nlohmann::json> remove(const std::string& kind, const std::string& ns, const std::string& name);
    Result<nlohmann::json> get(const std::string& kind, const std::string& ns, const std::string& name) const;
    uint64_t resource_version() const { return store_.resource_version(); }

    void compact() { store_.compact(); }  // every older resourceVersion now gets 410 Expired
    void set_watch_history_limit(size_t events) { store_.set_history_limit(events); }
    void set_bookmark_interval(std::chrono::milliseconds interval);
    // Closes every open watch stream abruptly (no final chunk), as when an API server instance goes away.
    void drop_watches();
    size_t open_watches() const { return store_.watch_count(); }

    // What clients did.
    uint64_t list_calls(const std::string& resource) const;
    uint64_t watch_calls(const std::string& resource) const;
    uint64_t get_calls(const std::string& resource) const;
    uint64_t auth_failures() const;
    std::vector<KubeRequestRecord> requests() const;
    void clear_requests();  // the log and the counters, token requests and issued tokens included

    // Service-account tokens. POST .../serviceaccounts/<name>/token answers as kube-apiserver does (see
    // kube_apiserver_tokens.h); GET /.well-known/openid-configuration and /openid/v1/jwks are served without
    // credentials. The RSA signing key is made on first use.
    std::string service_account_issuer() const;           // `iss` of every token: options.token_issuer.issuer or url()
    Result<nlohmann::json> service_account_jwks() const;  // what /openid/v1/jwks answers
    Result<std::string> service_account_key_id() const;   // `kid` of every token
    Result<std::string> service_account_public_key_pem() const;
    // Checks that `jwt` was signed by this server's key and returns its header and claims, unjudged: exp, aud and
    // iss are the caller's to check.
    Result<kube::DecodedJwt> verify_token(const std::string& jwt) const;
    // --service-account-max-token-expiration at run time: longer requests are shortened to it (0: no cap).
    void set_max_token_expiration(std::chrono::seconds max);
    uint64_t token_requests() const;  // TokenRequests that passed authentication, whatever their answer
    uint64_t token_requests(const std::string& ns, const std::string& service_account) const;
    std::vector<kube::IssuedToken> issued_tokens() const;  // oldest first

    // Polls `condition` until it holds or `timeout` passes; returns its last value.
    static bool wait_for(const std::function<bool()>& condition,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
    struct Connection;
    boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor);
    // stop() and stop_silently(): no more accepts, every session closed; `keep_open` keeps a duplicate of each
    // socket in silenced_ so that no FIN goes out.
    void stop_serving(bool keep_open);
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
    Result<uint16_t> open_listener(int fd);
    std::string authenticate(const std::string& authorization, void* ssl) const;
    void count(const KubeRequestRecord& record);
    void count_token_request(const std::string& ns, const std::string& name, std::optional<kube::IssuedToken> issued);
    template <class F>
    auto on_io(F f);

    KubeApiServerOptions options_;
    std::string workdir_;
    bool own_workdir_ = false;
    TestPki pki_;
    kube::ObjectStore store_;
    kube::ServiceAccountTokens issuer_;

    mutable std::mutex mu_;  // guards the fields below
    std::set<std::string> tokens_;
    std::chrono::milliseconds bookmark_interval_;
    std::map<std::string, uint64_t> lists_, watches_, gets_;
    uint64_t auth_failures_ = 0;
    std::vector<KubeRequestRecord> log_;
    std::map<std::string, uint64_t> token_requests_;  // "namespace/name" -> count
    uint64_t token_requests_total_ = 0;
    std::vector<kube::IssuedToken> issued_;
    std::string address_;
    uint16_t port_ = 0;
    SocketFactory factory_;

    // Touched on the I/O thread only.
    std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
    std::map<uint64_t, std::shared_ptr<Connection>> connections_;
    uint64_t next_connection_ = 0;
    std::vector<int> silenced_;  // duplicates of the sockets stop_silently() keeps open

    boost::asio::ssl::context ssl_;
    // Declared last: destroying the context destroys suspended sessions, which use the members above.
    std::unique_ptr<boost::asio::io_context> ioc_;
    std::thread thread_;
};

}  // namespace podid::test
