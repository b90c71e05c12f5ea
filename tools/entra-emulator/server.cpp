#include "server.h"

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "admin_api.h"
#include "crypto.h"
#include "discovery.h"
#include "https_client.h"
#include "pki.h"
#include "token_endpoint.h"

namespace podid::entra_emulator {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;

namespace {

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string host_port(const std::string& ip, uint16_t port) {
    std::string host = ip == "0.0.0.0" ? "127.0.0.1" : ip == "::" ? "::1" : ip;
    if (host.find(':') != std::string::npos)
        host = "[" + host + "]";
    return host + ":" + std::to_string(port);
}

Result<tcp::acceptor> listen_on(asio::io_context& ioc, const std::string& ip, uint16_t port) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(ip, ec);
    if (ec)
        return make_error("bad listen address '" + ip + "': " + ec.message(), ec.value());
    tcp::acceptor acceptor(ioc);
    tcp::endpoint ep(address, port);
    acceptor.open(ep.protocol(), ec);
    if (!ec)
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
        acceptor.bind(ep, ec);
    if (!ec)
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error("cannot listen on " + host_port(ip, port) + ": " + ec.message(), ec.value());
    return acceptor;
}

// HTTP/1.1 keep-alive request loop over any stream (TLS or plain); `handler` maps a request to a response.
template <class Stream, class Handler>
asio::awaitable<void> serve_requests(Stream& stream, std::chrono::seconds idle_timeout, Handler handler) {
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (;;) {
        beast::get_lowest_layer(stream).expires_after(idle_timeout);
        HttpRequest req;
        co_await http::async_read(stream, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return;  // peer closed, idle, or a malformed request: nothing sensible to answer
        HttpResponse res = co_await handler(req);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
        co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !res.keep_alive())
            co_return;
    }
}

}  // namespace

EntraEmulator::EntraEmulator(EmulatorOptions options) : options_(std::move(options)) { faults_.set(options_.fault); }

EntraEmulator::~EntraEmulator() { stop(); }

std::string EntraEmulator::origin() const { return "https://" + host_port(options_.listen_ip, port_); }
std::string EntraEmulator::admin_origin() const { return "http://" + host_port(options_.admin_ip, admin_port_); }

Result<std::string> EntraEmulator::mint_issuer_token(const std::string& name, const IssuerTokenSpec& spec) const {
    return issuers_.mint(name, spec, unix_now());
}

void EntraEmulator::clear_issuer_cache() {
    if (issuer_keys_)
        issuer_keys_->clear();
}

Result<void> EntraEmulator::make_tls() {
    if (options_.cert_pem.empty() != options_.key_pem.empty())
        return make_error("a given server certificate needs its key, and a key its certificate");
    std::string cert_pem = options_.cert_pem, key_pem = options_.key_pem;
    if (cert_pem.empty()) {
        ServerPkiOptions pki_options;
        pki_options.dns = options_.dns_names;
        boost::system::error_code ec;
        auto ip = asio::ip::make_address(options_.listen_ip, ec);
        if (!ec && !ip.is_unspecified() && options_.listen_ip != "127.0.0.1")
            pki_options.ips.push_back(ip.to_string());
        auto pki = make_server_pki(pki_options);
        if (!pki)
            return pki.error();
        ca_pem_ = pki->ca.cert_pem;
        cert_pem = pki->server.cert_pem;
        key_pem = pki->server.key_pem;
    }
    auto tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                     ec);
    if (!ec)
        tls->use_certificate_chain(asio::buffer(cert_pem), ec);
    if (!ec)
        tls->use_private_key(asio::buffer(key_pem), ssl::context::pem, ec);
    if (ec)
        return make_error("cannot use the server certificate: " + ec.message());

    std::vector<std::string> trust = options_.trust_ca_pems;
    if (options_.trust_own_ca && !ca_pem_.empty())
        trust.push_back(ca_pem_);
    auto client = make_client_tls(trust, options_.trust_system_cas);
    if (!client)
        return client.error();
    server_tls_ = std::move(tls);
    client_tls_ = std::move(*client);
    issuer_keys_ = std::make_unique<IssuerKeys>(*client_tls_, options_.fetch_timeout, options_.jwks_cache_ttl, stats_);
    return {};
}

Result<void> EntraEmulator::start() {
    if (ioc_)
        return make_error("the emulator is already running");
    if (options_.admin_port) {
        boost::system::error_code ec;
        auto admin_ip = asio::ip::make_address(options_.admin_ip, ec);
        if (ec || !admin_ip.is_loopback())
            return make_error("the admin API listens on loopback only, not '" + options_.admin_ip + "'");
    }
    if (!signer_) {
        auto signer = options_.signing_key_pem.empty() ? emulator::TokenSigner::generate()
                                                       : emulator::TokenSigner::from_pem(options_.signing_key_pem);
        if (!signer)
            return signer.error();
        signer_.emplace(std::move(*signer));
    }
    if (!server_tls_) {
        if (auto r = make_tls(); !r)
            return r;
    }

    auto ioc = std::make_unique<asio::io_context>(1);
    auto acceptor = listen_on(*ioc, options_.listen_ip, options_.port);
    if (!acceptor)
        return acceptor.error();
    std::optional<tcp::acceptor> admin;
    if (options_.admin_port) {
        auto a = listen_on(*ioc, options_.admin_ip, *options_.admin_port);
        if (!a)
            return a.error();
        admin_port_ = a->local_endpoint().port();
        admin.emplace(std::move(*a));
    }
    port_ = acceptor->local_endpoint().port();
    ioc_ = std::move(ioc);
    asio::co_spawn(*ioc_, accept_loop(std::move(*acceptor), false), asio::detached);
    if (admin)
        asio::co_spawn(*ioc_, accept_loop(std::move(*admin), true), asio::detached);
    thread_ = std::thread([this] { ioc_->run(); });
    return {};
}

void EntraEmulator::stop() {
    if (!ioc_)
        return;
    ioc_->stop();
    if (thread_.joinable())
        thread_.join();
    ioc_.reset();  // destroys the acceptors and every suspended session with its socket
}

asio::awaitable<void> EntraEmulator::accept_loop(tcp::acceptor acceptor, bool admin) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted)
            co_return;
        if (ec)
            continue;  // e.g. EMFILE, or the peer gave up before accept: keep serving others
        if (admin)
            asio::co_spawn(acceptor.get_executor(), admin_session(std::move(socket)), asio::detached);
        else
            asio::co_spawn(acceptor.get_executor(), tls_session(std::move(socket)), asio::detached);
    }
}

asio::awaitable<void> EntraEmulator::tls_session(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *server_tls_);
    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    co_await stream.async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return;  // not TLS, or the client rejected the certificate
    co_await serve_requests(stream, options_.idle_timeout, [this](const HttpRequest& req) { return handle(req); });
    // No close_notify exchange: every answer is length-delimited, and a vanished client would hold the session.
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> EntraEmulator::admin_session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    co_await serve_requests(stream, options_.idle_timeout,
                            [this](const HttpRequest& req) { return handle_admin(req); });
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<HttpResponse> EntraEmulator::handle_admin(const HttpRequest& req) {
    AdminContext ctx{directory_, stats_, faults_, issuers_, *signer_, ca_pem_, origin(), unix_now()};
    co_return answer_admin(req, ctx);
}

asio::awaitable<HttpResponse> EntraEmulator::handle(const HttpRequest& req) {
    TraceInfo trace{random_uuid(), "", unix_now()};
    auto request_id = req.find("client-request-id");
    bool echo_request_id = request_id != req.end() && !request_id->value().empty();
    trace.correlation_id = echo_request_id ? std::string(request_id->value()) : random_uuid();
    // Answers name the origin the client used (127.0.0.1, localhost or a configured name).
    std::string host(req[http::field::host]);
    std::string origin = host.empty() ? this->origin() : "https://" + host;

    SplitTarget target = split_request_target(req.target());
    const auto& s = target.segments;
    bool get = req.method() == http::verb::get;
    HttpResponse res;
    if (!s.empty() && s[0] == "_issuers") {
        res = issuers_.answer(req, s);
    } else if (get && s.size() == 3 && s[0] == "common" && s[1] == "discovery" && s[2] == "instance") {
        res = answer_instance_discovery(req, origin, target.query, trace);
    } else if (get && s.size() == 4 && s[1] == "v2.0" && s[2] == ".well-known" && s[3] == "openid-configuration") {
        res = answer_openid_configuration(req, origin, s[0], directory_, trace);
    } else if (get && s.size() == 4 && s[1] == "discovery" && s[2] == "v2.0" && s[3] == "keys") {
        res = answer_signing_keys(req, s[0], directory_, signer_->jwks(), trace);
    } else if (s.size() == 4 && s[1] == "oauth2" && s[2] == "v2.0" && s[3] == "token") {
        res = co_await handle_token(req, s[0], origin, trace);
    } else {
        res = text_response(req, 404, "Not Found\n");
    }
    res.set("x-ms-request-id", trace.trace_id);
    if (echo_request_id)
        res.set("client-request-id", trace.correlation_id);
    co_return res;
}

asio::awaitable<HttpResponse> EntraEmulator::handle_token(const HttpRequest& req, const std::string& tenant,
                                                          const std::string& origin, const TraceInfo& trace) {
    if (req.method() != http::verb::post) {
        EntraError err = errors::post_only(std::string(req.method_string()));
        stats_.record_token_call(requested_client_id(req), "none", "AADSTS" + std::to_string(err.code));
        co_return error_response(req, err, trace);
    }
    FaultAction fault = faults_.take();
    if (fault.latency_ms > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(fault.latency_ms));
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (fault.mode == FaultMode::status) {
        EntraError err = fault.status == 429 ? errors::throttled() : errors::server_fault(fault.status);
        stats_.record_token_call(requested_client_id(req), "none", "fault_" + std::to_string(fault.status));
        HttpResponse res = error_response(req, err, trace);
        if (fault.retry_after >= 0)
            res.set(http::field::retry_after, std::to_string(fault.retry_after));
        co_return res;
    }
    TokenEndpointContext ctx{directory_,         *signer_, *issuer_keys_, origin, unix_now(), options_.token_lifetime,
                             options_.clock_skew};
    TokenOutcome out = co_await answer_token_request(req, tenant, ctx);
    if (out.error) {
        stats_.record_token_call(out.client_id, out.credential, "AADSTS" + std::to_string(out.error->code));
        co_return error_response(req, *out.error, trace);
    }
    stats_.record_token_call(out.client_id, out.credential, "success");
    co_return json_response(req, 200, std::move(out.body));
}

}  // namespace podid::entra_emulator
