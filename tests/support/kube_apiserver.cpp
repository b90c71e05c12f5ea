#include "kube_apiserver.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "kube_apiserver_router.h"

namespace podid::test {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using nlohmann::json;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

struct KubeApiServer::Connection {
    std::function<void()> close;  // closes the socket at once and wakes a waiting watch; I/O thread only
    int fd = -1;                  // the socket, for stop_silently()
    bool watching = false;
    bool closed = false;
};

namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::seconds(120);
constexpr auto kWriteTimeout = std::chrono::seconds(30);

const kube::ResourceType* resource_or_null(const std::string& kind) { return kube::resource_named(kind); }

Error unknown_kind(const std::string& kind) { return make_error("the double serves no resource named '" + kind + "'"); }

// Control-API results: the object, or the Status message a client would have seen.
Result<json> to_result(kube::Outcome<json> outcome) {
    if (auto* status = std::get_if<kube::ApiStatus>(&outcome))
        return make_error(std::to_string(status->code) + " " + status->reason + ": " + status->message);
    return std::get<json>(std::move(outcome));
}

std::string line(const json& event) { return event.dump() + "\n"; }

json bookmark(const kube::ResourceType& type, uint64_t rv) {
    return {{"type", "BOOKMARK"},
            {"object",
             {{"kind", type.kind},
              {"apiVersion", type.api_version()},
              {"metadata", {{"resourceVersion", std::to_string(rv)}}}}}};
}

std::string make_workdir() {
    std::string templ = "/tmp/podid-kube-XXXXXX";
    if (!::mkdtemp(templ.data()))
        throw std::runtime_error("mkdtemp /tmp/podid-kube-XXXXXX failed");
    return templ;
}

asio::awaitable<bool> write_chunk(TlsStream& stream, const std::string& text) {
    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_after(kWriteTimeout);
    // Named, not a temporary inside co_await: GCC 12 cannot copy the chunk header's array into the frame.
    auto chunk = http::make_chunk(asio::buffer(text));
    co_await asio::async_write(stream, chunk, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
}

// Streams one watch. Returns whether the connection may carry another request (the stream ended cleanly).
asio::awaitable<bool> stream_watch(TlsStream& stream, const http::request<http::string_body>& req,
                                   kube::ObjectStore& store, const kube::WatchCall& call,
                                   std::chrono::milliseconds bookmark_interval, asio::io_context& ioc,
                                   const std::shared_ptr<asio::steady_timer>& timer, const bool& closed) {
    std::weak_ptr<asio::steady_timer> weak = timer;
    auto wake = [ex = ioc.get_executor(), weak] {
        asio::post(ex, [weak] {
            if (auto t = weak.lock())
                t->cancel();
        });
    };
    auto subscribed = store.subscribe(call.request, wake);
    boost::system::error_code ec;
    auto* status = std::get_if<kube::ApiStatus>(&subscribed);
    if (status && status->code != 410) {
        kube::Reply reply = kube::status_reply(*status);
        http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
        res.set(http::field::content_type, reply.content_type);
        res.keep_alive(req.keep_alive());
        res.body() = reply.body;
        res.prepare_payload();
        co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        co_return !ec && req.keep_alive();
    }

    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-cache, private");
    res.keep_alive(req.keep_alive());
    res.chunked(true);
    http::response_serializer<http::empty_body> serializer{res};
    beast::get_lowest_layer(stream).expires_after(kWriteTimeout);
    co_await http::async_write_header(stream, serializer, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return false;

    if (status) {
        // The real server answers a too-old resourceVersion with 200 and one ERROR event, then ends the stream.
        // Built outside co_await: GCC 12 mishandles an initializer list's array kept alive across a suspension.
        std::string error = line(json{{"type", "ERROR"}, {"object", kube::status_json(*status)}});
        if (!co_await write_chunk(stream, error))
            co_return false;
    } else {
        auto sub = std::get<std::shared_ptr<kube::Subscription>>(subscribed);
        struct Unsubscribe {
            kube::ObjectStore& store;
            std::shared_ptr<kube::Subscription> sub;
            ~Unsubscribe() { store.unsubscribe(sub); }
        } unsubscribe{store, sub};

        using Clock = std::chrono::steady_clock;
        auto deadline = call.timeout ? Clock::now() + *call.timeout : Clock::time_point::max();
        auto next_bookmark = Clock::now() + bookmark_interval;
        for (;;) {
            if (closed)
                co_return false;
            kube::WatchBatch batch = store.drain(*sub);
            for (const auto& event : batch.events)
                if (!co_await write_chunk(stream, line(event)))
                    co_return false;
            if (closed)
                co_return false;
            auto now = Clock::now();
            if (now >= deadline)
                break;
            if (call.bookmarks && now >= next_bookmark) {
                std::string mark = line(bookmark(sub->type(), batch.seen_rv));
                if (!co_await write_chunk(stream, mark))
                    co_return false;
                next_bookmark = now + bookmark_interval;
            }
            beast::get_lowest_layer(stream).expires_never();
            timer->expires_at(call.bookmarks ? std::min(deadline, next_bookmark) : deadline);
            co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
    }
    beast::get_lowest_layer(stream).expires_after(kWriteTimeout);
    auto last = http::make_chunk_last();
    co_await asio::async_write(stream, last, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec && req.keep_alive();
}

}  // namespace

template <class F>
auto KubeApiServer::on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto done = task.get_future();
    asio::post(*ioc_, std::move(task));
    return done.get();
}

KubeApiServer::KubeApiServer(KubeApiServerOptions options)
    : options_(std::move(options)),
      issuer_(options_.token_issuer),
      tokens_(options_.tokens),
      bookmark_interval_(options_.bookmark_interval),
      ssl_(ssl::context::tls_server) {
    own_workdir_ = options_.workdir.empty();
    workdir_ = own_workdir_ ? make_workdir() : options_.workdir;
    auto pki = make_test_pki(options_.pki);
    if (!pki)
        throw std::runtime_error("test PKI: " + pki.error().message);
    pki_ = std::move(*pki);
    if (auto w = write_pki(pki_, workdir_ + "/pki"); !w)
        throw std::runtime_error("test PKI: " + w.error().message);
    store_.set_history_limit(options_.history_limit);

    ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    SSL_CTX_set_min_proto_version(ssl_.native_handle(), TLS1_2_VERSION);
    ssl_.use_certificate_chain(asio::buffer(pki_.server.cert_pem));
    ssl_.use_private_key(asio::buffer(pki_.server.key_pem), ssl::context::pem);
    ssl_.add_certificate_authority(asio::buffer(pki_.ca.cert_pem));
    // Ask for a client certificate but accept connections without one (they may bring a token instead);
    // a certificate that does not verify fails the handshake, as with Go's VerifyClientCertIfGiven.
    ssl_.set_verify_mode(ssl::verify_peer);
    std::string ca_name = "podid-test-ca";
    SSL_CTX_set_session_id_context(ssl_.native_handle(), reinterpret_cast<const unsigned char*>(ca_name.data()),
                                   static_cast<unsigned>(ca_name.size()));

    ioc_ = std::make_unique<asio::io_context>(1);
    thread_ = std::thread([this] {
        auto work = asio::make_work_guard(*ioc_);
        ioc_->run();
    });
}

KubeApiServer::~KubeApiServer() {
    ioc_->stop();
    if (thread_.joinable())
        thread_.join();
    for (int fd : silenced_)
        ::close(fd);
    acceptor_.reset();
    connections_.clear();
    ioc_.reset();  // destroys every suspended session with its socket and subscription
    if (own_workdir_) {
        std::error_code ec;
        std::filesystem::remove_all(workdir_, ec);
    }
}

Result<uint16_t> KubeApiServer::listen(const std::string& address, uint16_t port, SocketFactory make_socket) {
    {
        std::lock_guard lock(mu_);
        address_ = address;
        port_ = port;
        factory_ = std::move(make_socket);
    }
    return start();
}

Result<uint16_t> KubeApiServer::listen(int fd, const std::string& address, uint16_t port) {
    {
        std::lock_guard lock(mu_);
        address_ = address;
        port_ = port;
        factory_ = nullptr;
    }
    return on_io([this, fd] { return open_listener(fd); });
}

Result<uint16_t> KubeApiServer::start() {
    SocketFactory factory;
    {
        std::lock_guard lock(mu_);
        if (address_.empty())
            return make_error("start() before listen(): no address to listen on");
        factory = factory_;
    }
    int fd = -1;
    if (factory) {
        fd = factory();
        if (fd < 0)
            return make_error("the socket factory returned no socket");
    }
    return on_io([this, fd] { return open_listener(fd); });
}

Result<uint16_t> KubeApiServer::open_listener(int fd) {
    auto close_fd = [&] {
        if (fd >= 0)
            ::close(fd);
    };
    if (acceptor_) {
        close_fd();
        return make_error("already listening");
    }
    std::string address;
    uint16_t port;
    {
        std::lock_guard lock(mu_);
        address = address_;
        port = port_;
    }
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(address, ec);
    if (ec) {
        close_fd();
        return make_error("bad listen address '" + address + "': " + ec.message(), ec.value());
    }
    tcp::endpoint endpoint(ip, port);
    auto acceptor = std::make_shared<tcp::acceptor>(*ioc_);
    if (fd >= 0) {
        acceptor->assign(endpoint.protocol(), fd, ec);
        if (ec)
            close_fd();
    } else {
        acceptor->open(endpoint.protocol(), ec);
    }
    if (!ec)
        acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && acceptor->local_endpoint(ec).port() == 0 && !ec)
        acceptor->bind(endpoint, ec);
    if (!ec)
        acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error("cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message(), ec.value());
    uint16_t bound = acceptor->local_endpoint(ec).port();
    {
        std::lock_guard lock(mu_);
        port_ = bound;  // a restart reuses the port picked for port 0
    }
    acceptor_ = acceptor;
    asio::co_spawn(*ioc_, accept_loop(acceptor), asio::detached);
    return bound;
}

void KubeApiServer::stop() { stop_serving(false); }

void KubeApiServer::stop_silently() { stop_serving(true); }

void KubeApiServer::stop_serving(bool keep_open) {
    on_io([this, keep_open] {
        if (acceptor_) {
            boost::system::error_code ec;
            acceptor_->close(ec);
            acceptor_.reset();
        }
        auto connections = connections_;  // close() makes sessions unregister themselves
        for (auto& [id, conn] : connections) {
            // The duplicate keeps the socket open in the kernel once the session has closed its own descriptor.
            if (keep_open)
                if (int copy = ::fcntl(conn->fd, F_DUPFD_CLOEXEC, 0); copy >= 0)
                    silenced_.push_back(copy);
            conn->close();
        }
        return 0;
    });
}

void KubeApiServer::release_silenced() {
    on_io([this] {
        for (int fd : silenced_)
            ::close(fd);
        silenced_.clear();
        return 0;
    });
}

bool KubeApiServer::listening() const {
    return const_cast<KubeApiServer*>(this)->on_io([this] { return acceptor_ != nullptr; });
}

void KubeApiServer::drop_watches() {
    on_io([this] {
        auto connections = connections_;
        for (auto& [id, conn] : connections)
            if (conn->watching)
                conn->close();
        return 0;
    });
}

asio::awaitable<void> KubeApiServer::accept_loop(std::shared_ptr<tcp::acceptor> acceptor) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor->is_open())
            co_return;
        if (ec)
            continue;  // EMFILE or a client that gave up before accept: keep serving the others
        // Asio accepts without SOCK_CLOEXEC. A process the test spawns later (a load helper) would inherit the
        // socket and keep it open after stop(), so that the client saw no FIN: an outage turned silent by accident.
        ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
        asio::co_spawn(*ioc_, serve(std::move(socket)), asio::detached);
    }
}

std::string KubeApiServer::authenticate(const std::string& authorization, void* ssl_handle) const {
    // Like kube-apiserver's union authenticator: a verified client certificate wins, then the bearer token.
    auto* ssl = static_cast<SSL*>(ssl_handle);
    if (X509* peer = SSL_get0_peer_certificate(ssl); peer && SSL_get_verify_result(ssl) == X509_V_OK) {
        char cn[256] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
        return std::string("cert:") + cn;
    }
    const std::string scheme = "bearer ";
    if (authorization.size() <= scheme.size())
        return "";
    for (size_t i = 0; i < scheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
            return "";
    std::string token = authorization.substr(scheme.size());
    std::lock_guard lock(mu_);
    return tokens_.count(token) ? "token:" + token : "";
}

asio::awaitable<void> KubeApiServer::serve(tcp::socket socket) {
    auto conn = std::make_shared<Connection>();
    uint64_t id = next_connection_++;
    auto timer = std::make_shared<asio::steady_timer>(*ioc_);
    conn->fd = socket.native_handle();
    TlsStream stream(std::move(socket), ssl_);
    conn->close = [raw = conn.get(), &stream, timer] {
        raw->closed = true;
        boost::system::error_code ec;
        beast::get_lowest_layer(stream).socket().close(ec);
        timer->cancel();
    };
    connections_[id] = conn;
    struct Unregister {
        std::map<uint64_t, std::shared_ptr<Connection>>& connections;
        uint64_t id;
        ~Unregister() { connections.erase(id); }
    } unregister{connections_, id};

    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_after(kHandshakeTimeout);
    co_await stream.async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return;

    beast::flat_buffer buffer;
    std::string server_address;
    {
        std::lock_guard lock(mu_);
        server_address = address_ + ":" + std::to_string(port_);
    }
    const std::string server_url = url();
    while (!conn->closed) {
        beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
        http::request<http::string_body> req;
        co_await http::async_read(stream, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            break;

        KubeRequestRecord record{std::string(req.method_string()), std::string(req.target()), "", "other", "", 0};
        std::string authorization(req[http::field::authorization]);
        record.user = authenticate(authorization, stream.native_handle());
        // Like the real server: no credentials at all make system:anonymous, bad credentials a 401 everywhere.
        if (record.user.empty() && authorization.empty() && kube::serves_anonymously(record.method, record.target))
            record.user = "anonymous";
        kube::Reply reply;
        if (record.user.empty()) {
            reply = kube::status_reply({401, "Unauthorized", "Unauthorized", "", ""});
        } else {
            kube::ApiRequest api_request{record.method, record.target, std::string(req[http::field::content_type]),
                                         req.body()};
            kube::RouteContext context{store_, server_address, server_url, issuer_, std::chrono::system_clock::now()};
            kube::Routed routed = kube::route_request(api_request, context);
            static const char* verbs[] = {"discovery", "get", "list", "watch", "create", "other"};
            record.verb = verbs[static_cast<int>(routed.verb)];
            record.resource = routed.resource;
            if (routed.resource == "serviceaccounts/token")
                count_token_request(routed.ns, routed.name, std::move(routed.issued));
            if (routed.watch) {
                record.status = 200;
                count(record);
                std::chrono::milliseconds interval;
                {
                    std::lock_guard lock(mu_);
                    interval = bookmark_interval_;
                }
                conn->watching = true;
                bool reusable =
                    co_await stream_watch(stream, req, store_, *routed.watch, interval, *ioc_, timer, conn->closed);
                conn->watching = false;
                if (!reusable)
                    break;
                continue;
            }
            reply = std::move(routed.reply);
        }
        record.status = reply.status;
        count(record);

        http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
        res.set(http::field::content_type, reply.content_type);
        res.set(http::field::cache_control, "no-cache, private");
        for (const auto& [name, value] : reply.headers)
            res.set(name, value);
        res.keep_alive(req.keep_alive());
        res.body() = std::move(reply.body);
        res.prepare_payload();
        beast::get_lowest_layer(stream).expires_after(kWriteTimeout);
        co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !res.keep_alive())
            break;
    }
    if (!conn->closed) {
        beast::get_lowest_layer(stream).expires_after(kWriteTimeout);
        co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    }
}

void KubeApiServer::count(const KubeRequestRecord& record) {
    std::lock_guard lock(mu_);
    if (record.user.empty())
        ++auth_failures_;
    if (record.verb == "list")
        ++lists_[record.resource];
    if (record.verb == "watch")
        ++watches_[record.resource];
    if (record.verb == "get")
        ++gets_[record.resource];
    log_.push_back(record);
}

void KubeApiServer::count_token_request(const std::string& ns, const std::string& name,
                                        std::optional<kube::IssuedToken> issued) {
    std::lock_guard lock(mu_);
    ++token_requests_total_;
    ++token_requests_[ns + "/" + name];
    if (issued)
        issued_.push_back(std::move(*issued));
}

std::string KubeApiServer::address() const {
    std::lock_guard lock(mu_);
    return address_;
}

uint16_t KubeApiServer::port() const {
    std::lock_guard lock(mu_);
    return port_;
}

std::string KubeApiServer::url() const {
    std::lock_guard lock(mu_);
    bool v6 = address_.find(':') != std::string::npos;
    return "https://" + (v6 ? "[" + address_ + "]" : address_) + ":" + std::to_string(port_);
}

void KubeApiServer::set_tokens(std::set<std::string> tokens) {
    std::lock_guard lock(mu_);
    tokens_ = std::move(tokens);
}

void KubeApiServer::add_token(const std::string& token) {
    std::lock_guard lock(mu_);
    tokens_.insert(token);
}

void KubeApiServer::remove_token(const std::string& token) {
    std::lock_guard lock(mu_);
    tokens_.erase(token);
}

void KubeApiServer::set_bookmark_interval(std::chrono::milliseconds interval) {
    std::lock_guard lock(mu_);
    bookmark_interval_ = interval;
}

namespace {

json kubeconfig(const std::string& url, const std::string& ca_pem, json user) {
    return {{"apiVersion", "v1"},
            {"kind", "Config"},
            {"clusters",
             {{{"name", "podid-test"},
               {"cluster", {{"server", url}, {"certificate-authority-data", base64_encode(ca_pem)}}}}}},
            {"users", {{{"name", "podid-test"}, {"user", std::move(user)}}}},
            {"contexts", {{{"name", "podid-test"}, {"context", {{"cluster", "podid-test"}, {"user", "podid-test"}}}}}},
            {"current-context", "podid-test"}};
}

}  // namespace

std::string KubeApiServer::kubeconfig_with_token(const std::string& token) const {
    return kubeconfig(url(), pki_.ca.cert_pem, {{"token", token}}).dump(2);
}

std::string KubeApiServer::kubeconfig_with_client_cert() const {
    return kubeconfig(url(), pki_.ca.cert_pem,
                      {{"client-certificate-data", base64_encode(pki_.client.cert_pem)},
                       {"client-key-data", base64_encode(pki_.client.key_pem)}})
        .dump(2);
}

Result<std::string> KubeApiServer::write_file(const std::string& name, const std::string& text) const {
    std::string path = workdir_ + "/" + name;
    std::ofstream out(path, std::ios::trunc);
    out << text;
    out.close();
    if (!out)
        return make_error("cannot write " + path, errno);
    return path;
}

Result<void> KubeApiServer::write_service_account_dir(const std::string& dir, const std::string& token,
                                                      const std::string& ns) const {
    std::error_code fs_ec;
    std::filesystem::create_directories(dir, fs_ec);
    if (fs_ec)
        return make_error("cannot create " + dir + ": " + fs_ec.message(), fs_ec.value());
    for (const auto& [name, text] :
         {std::pair{"token", token}, std::pair{"ca.crt", pki_.ca.cert_pem}, std::pair{"namespace", ns}}) {
        std::ofstream out(dir + "/" + name, std::ios::trunc);
        out << text;
        out.close();
        if (!out)
            return make_error("cannot write " + dir + "/" + name, errno);
    }
    return {};
}

Result<json> KubeApiServer::create(const std::string& kind, json object) {
    const auto* type = resource_or_null(kind);
    if (!type)
        return unknown_kind(kind);
    return to_result(store_.create(*type, std::move(object)));
}

Result<json> KubeApiServer::update(const std::string& kind, json object) {
    const auto* type = resource_or_null(kind);
    if (!type)
        return unknown_kind(kind);
    return to_result(store_.update(*type, std::move(object)));
}

Result<json> KubeApiServer::remove(const std::string& kind, const std::string& ns, const std::string& name) {
    const auto* type = resource_or_null(kind);
    if (!type)
        return unknown_kind(kind);
    return to_result(store_.remove(*type, ns, name));
}

Result<json> KubeApiServer::get(const std::string& kind, const std::string& ns, const std::string& name) const {
    const auto* type = resource_or_null(kind);
    if (!type)
        return unknown_kind(kind);
    return to_result(store_.get(*type, ns, name));
}

uint64_t KubeApiServer::list_calls(const std::string& resource) const {
    std::lock_guard lock(mu_);
    auto it = lists_.find(resource);
    return it == lists_.end() ? 0 : it->second;
}

uint64_t KubeApiServer::watch_calls(const std::string& resource) const {
    std::lock_guard lock(mu_);
    auto it = watches_.find(resource);
    return it == watches_.end() ? 0 : it->second;
}

uint64_t KubeApiServer::get_calls(const std::string& resource) const {
    std::lock_guard lock(mu_);
    auto it = gets_.find(resource);
    return it == gets_.end() ? 0 : it->second;
}

uint64_t KubeApiServer::auth_failures() const {
    std::lock_guard lock(mu_);
    return auth_failures_;
}

std::vector<KubeRequestRecord> KubeApiServer::requests() const {
    std::lock_guard lock(mu_);
    return log_;
}

void KubeApiServer::clear_requests() {
    std::lock_guard lock(mu_);
    log_.clear();
    lists_.clear();
    watches_.clear();
    gets_.clear();
    auth_failures_ = 0;
    token_requests_.clear();
    token_requests_total_ = 0;
    issued_.clear();
}

std::string KubeApiServer::service_account_issuer() const { return issuer_.issuer(url()); }

Result<json> KubeApiServer::service_account_jwks() const { return issuer_.key().jwks(); }

Result<std::string> KubeApiServer::service_account_key_id() const { return issuer_.key().key_id(); }

Result<std::string> KubeApiServer::service_account_public_key_pem() const { return issuer_.key().public_key_pem(); }

Result<kube::DecodedJwt> KubeApiServer::verify_token(const std::string& jwt) const { return issuer_.key().verify(jwt); }

void KubeApiServer::set_max_token_expiration(std::chrono::seconds max) { issuer_.set_max_expiration(max); }

uint64_t KubeApiServer::token_requests() const {
    std::lock_guard lock(mu_);
    return token_requests_total_;
}

uint64_t KubeApiServer::token_requests(const std::string& ns, const std::string& service_account) const {
    std::lock_guard lock(mu_);
    auto it = token_requests_.find(ns + "/" + service_account);
    return it == token_requests_.end() ? 0 : it->second;
}

std::vector<kube::IssuedToken> KubeApiServer::issued_tokens() const {
    std::lock_guard lock(mu_);
    return issued_;
}

bool KubeApiServer::wait_for(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return condition();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

}  // namespace podid::test
