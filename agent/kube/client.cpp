#include "kube/client.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <deque>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "common/log.h"
#include "common/tcp_keepalive.h"
#include "kube/json_splitter.h"

namespace podid::kube {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using boost::system::error_code;
using nlohmann::json;

struct Client::Connection {
    Connection(const asio::any_io_executor& executor, ssl::context& context) : stream(executor, context) {}
    ssl::stream<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    void close() {
        error_code ignored;
        beast::get_lowest_layer(stream).socket().close(ignored);
    }
};

namespace {

constexpr std::size_t kMaxErrorBody = 64 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;

bool is_ip_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::optional<WatchEvent::Type> event_type(const json& value) {
    if (!value.is_string())
        return std::nullopt;
    const std::string& s = value.get_ref<const std::string&>();
    if (s == "ADDED")
        return WatchEvent::Type::added;
    if (s == "MODIFIED")
        return WatchEvent::Type::modified;
    if (s == "DELETED")
        return WatchEvent::Type::deleted;
    if (s == "BOOKMARK")
        return WatchEvent::Type::bookmark;
    if (s == "ERROR")
        return WatchEvent::Type::error;
    return std::nullopt;
}

std::string string_at(const json& object, const char* key) {
    if (!object.is_object())
        return {};
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

const char* to_string(WatchEvent::Type type) {
    switch (type) {
    case WatchEvent::Type::added: return "ADDED";
    case WatchEvent::Type::modified: return "MODIFIED";
    case WatchEvent::Type::deleted: return "DELETED";
    case WatchEvent::Type::bookmark: return "BOOKMARK";
    case WatchEvent::Type::error: return "ERROR";
    }
    return "?";
}

// The body of a watch, read as it arrives through a buffer_body parser (the body has no length).
class HttpsWatchStream final : public WatchStream {
public:
    HttpsWatchStream(std::shared_ptr<Client> client, std::shared_ptr<Client::Connection> connection,
                     std::unique_ptr<http::response_parser<http::buffer_body>> parser, std::string target,
                     std::chrono::milliseconds idle_timeout)
        : client_(std::move(client)),
          connection_(std::move(connection)),
          parser_(std::move(parser)),
          target_(std::move(target)),
          idle_timeout_(idle_timeout),
          splitter_(client_->options_.max_event_bytes) {}

    ~HttpsWatchStream() override { connection_->close(); }

    void cancel() override { connection_->close(); }

    asio::awaitable<ApiResult<std::optional<WatchEvent>>> next() override {
        while (pending_.empty()) {
            if (parser_->is_done()) {
                if (!splitter_.idle())
                    co_return protocol_error("the watch ended inside an event");
                co_return std::optional<WatchEvent>();
            }
            std::array<char, kReadChunk> chunk;
            parser_->get().body().data = chunk.data();
            parser_->get().body().size = chunk.size();
            beast::get_lowest_layer(connection_->stream).expires_after(idle_timeout_);
            error_code ec;
            co_await http::async_read_some(connection_->stream, connection_->buffer, *parser_,
                                           asio::redirect_error(asio::use_awaitable, ec));
            if (ec == http::error::need_buffer)
                ec = {};
            if (ec)
                co_return client_->failure(ec, http::verb::get, target_, "watch read");
            const std::size_t got = chunk.size() - parser_->get().body().size;
            std::vector<std::string> objects;
            if (!splitter_.feed(std::string_view(chunk.data(), got), objects))
                co_return protocol_error("the watch body is not a sequence of JSON objects within " +
                                         std::to_string(client_->options_.max_event_bytes) + " bytes");
            for (auto& o : objects)
                pending_.push_back(std::move(o));
        }
        const std::string text = std::move(pending_.front());
        pending_.pop_front();
        json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
        auto type = parsed.is_object() ? event_type(parsed["type"]) : std::nullopt;
        if (!type || !parsed["object"].is_object())
            co_return protocol_error("the watch sent an event that is not {type, object}");
        co_return std::optional<WatchEvent>(WatchEvent{*type, std::move(parsed["object"])});
    }

private:
    ApiError protocol_error(const std::string& what) const {
        return ApiError{0, "", make_error(client_->where(http::verb::get, target_) + what, EPROTO)};
    }

    std::shared_ptr<Client> client_;
    std::shared_ptr<Client::Connection> connection_;
    std::unique_ptr<http::response_parser<http::buffer_body>> parser_;
    std::string target_;
    std::chrono::milliseconds idle_timeout_;
    JsonObjectSplitter splitter_;
    std::deque<std::string> pending_;
};

Client::Client(const KubeConfig& config, ClientOptions options)
    : config_(config),
      options_(std::move(options)),
      verify_name_(config.tls_server_name.empty() ? config.host : config.tls_server_name),
      host_header_(config.host.find(':') != std::string::npos ? "[" + config.host + "]:" + config.port
                                                              : config.host + ":" + config.port),
      ssl_(ssl::context::tls_client),
      token_(config.token, config.token_file) {}

Client::~Client() = default;

Result<std::shared_ptr<Client>> Client::create(const KubeConfig& config, ClientOptions options) {
    std::shared_ptr<Client> client(new Client(config, std::move(options)));
    error_code ec;
    client->ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                                 ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                             ec);
    client->ssl_.set_verify_mode(ssl::verify_peer, ec);
    if (config.ca_pem.empty())
        client->ssl_.set_default_verify_paths(ec);
    else
        client->ssl_.add_certificate_authority(asio::buffer(config.ca_pem), ec);
    if (ec)
        return make_error("API server CA does not load: " + ec.message(), EINVAL);
    if (!config.client_cert_pem.empty()) {
        client->ssl_.use_certificate_chain(asio::buffer(config.client_cert_pem), ec);
        if (!ec)
            client->ssl_.use_private_key(asio::buffer(config.client_key_pem), ssl::context::pem, ec);
        if (ec)
            return make_error("API client certificate or key does not load: " + ec.message(), EINVAL);
    }
    return client;
}

bool Client::track(const std::shared_ptr<Connection>& connection) {
    std::lock_guard lock(mu_);
    if (stopped_)
        return false;
    open_.remove_if([](const std::weak_ptr<Connection>& w) { return w.expired(); });
    open_.push_back(connection);
    return true;
}

void Client::shutdown() {
    std::list<std::weak_ptr<Connection>> open;
    {
        std::lock_guard lock(mu_);
        stopped_ = true;
        open.swap(open_);
    }
    // A socket is closed on its own executor: the call using it may be running there right now.
    for (auto& weak : open)
        if (auto connection = weak.lock())
            asio::post(connection->stream.get_executor(), [connection] { connection->close(); });
}

std::string Client::where(http::verb method, const std::string& target) const {
    return "API server " + host_header_ + ": " + std::string(http::to_string(method)) + " " + target + ": ";
}

ApiError Client::failure(const error_code& ec, http::verb method, const std::string& target, const char* stage) const {
    const std::string where = this->where(method, target);
    if (ec == beast::error::timeout)
        return ApiError{0, "", make_error(where + stage + " timed out", ETIMEDOUT)};
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
        return ApiError{0, "", make_error(where + stage + " cancelled", ECANCELED)};
    int code = EPROTO;
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == ssl::error::stream_truncated)
        code = ECONNRESET;
    else if (ec.category() == boost::system::system_category())
        code = ec.value();
    std::string detail = ec.message();
    if (ec.category() == asio::error::get_ssl_category()) {
        char reason[256];
        ERR_error_string_n(static_cast<unsigned long>(ec.value()), reason, sizeof reason);
        detail = std::string("TLS: ") + reason;
    }
    return ApiError{0, "", make_error(where + stage + " failed: " + detail, code)};
}

ApiError Client::status_failure(unsigned status, const std::string& body, http::verb method,
                                const std::string& target) const {
    // The API answers errors with a metav1.Status: {"kind":"Status","reason":"Forbidden","message":"…"}.
    const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
    std::string message = string_at(parsed, "message");
    if (message.empty())
        message = body.substr(0, 200);
    return ApiError{
        status, string_at(parsed, "reason"),
        make_error(where(method, target) + "HTTP " + std::to_string(status) + (message.empty() ? "" : ": " + message))};
}

asio::awaitable<ApiResult<std::shared_ptr<Client::Connection>>> Client::open(http::verb method,
                                                                             const std::string& target,
                                                                             std::string body) {
    ++requests_;
    auto token = token_.get();
    if (!token)
        co_return ApiError{0, "", token.error()};
    const auto executor = co_await asio::this_coro::executor;
    error_code ec;
    asio::ip::tcp::resolver resolver(executor);
    const auto endpoints =
        co_await resolver.async_resolve(config_.host, config_.port, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failure(ec, method, target, "resolve");

    auto connection = std::make_shared<Connection>(executor, ssl_);
    if (!track(connection))
        co_return ApiError{0, "", make_error("API client is shut down", ECANCELED)};
    auto& lowest = beast::get_lowest_layer(connection->stream);
    lowest.expires_after(options_.connect_timeout);
    co_await lowest.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failure(ec, method, target, "connect");
    // A watch is quiet for minutes; without keepalive a control-plane node that died without a FIN would only be
    // noticed when the watch's idle limit (~10 min) ends. Best effort: a refusal here changes nothing else.
    if (auto keepalive = enable_tcp_keepalive(lowest.socket().native_handle()); !keepalive)
        log_warn("kube: cannot enable TCP keepalive on the API-server connection",
                 kv("reason", keepalive.error().message));
    // SNI carries names only (RFC 6066 §3); the certificate is checked against the name or the address.
    if (!is_ip_literal(verify_name_))
        SSL_set_tlsext_host_name(connection->stream.native_handle(), verify_name_.c_str());
    connection->stream.set_verify_callback(ssl::host_name_verification(verify_name_));
    co_await connection->stream.async_handshake(ssl::stream_base::client,
                                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failure(ec, method, target, "TLS handshake");

    http::request<http::string_body> request(method, config_.path_prefix + target, 11);
    request.set(http::field::host, host_header_);
    request.set(http::field::user_agent, options_.user_agent);
    request.set(http::field::accept, "application/json");
    if (!token->empty())
        request.set(http::field::authorization, "Bearer " + *token);
    // A GET carries no body and no Content-Length, as kubectl sends it; a POST its JSON and its length.
    if (method != http::verb::get) {
        request.set(http::field::content_type, "application/json");
        request.body() = std::move(body);
        request.prepare_payload();
    }
    co_await http::async_write(connection->stream, request, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return failure(ec, method, target, "send");
    co_return connection;
}

asio::awaitable<ApiResult<Client::Answer>> Client::exchange(http::verb method, const std::string& target,
                                                            std::string body, std::size_t max_bytes, const char* what) {
    auto opened = co_await open(method, target, std::move(body));
    if (!opened)
        co_return opened.error();
    auto connection = std::move(*opened);
    beast::get_lowest_layer(connection->stream).expires_after(options_.request_timeout);
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_bytes);
    error_code ec;
    // Boost 1.74's parser loses the body_limit error of a Content-Length when it parses the header and body in one
    // eager pass (async_read's), and then reads the whole body; reading the header on its own first keeps the error.
    co_await http::async_read_header(connection->stream, connection->buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (!ec)
        co_await http::async_read(connection->stream, connection->buffer, parser,
                                  asio::redirect_error(asio::use_awaitable, ec));
    connection->close();
    if (ec == http::error::body_limit)
        co_return ApiError{
            0, "",
            make_error(where(method, target) + what + " larger than " + std::to_string(max_bytes) + " bytes",
                       EMSGSIZE)};
    if (ec)
        co_return failure(ec, method, target, (std::string(what) + " read").c_str());
    auto& response = parser.get();
    co_return Answer{response.result_int(), std::move(response.body())};
}

asio::awaitable<ApiResult<ListPage>> Client::list(std::string target) {
    auto answer = co_await exchange(http::verb::get, target, {}, options_.max_list_bytes, "list");
    if (!answer)
        co_return answer.error();
    if (answer->status != 200)
        co_return status_failure(answer->status, answer->body, http::verb::get, target);
    json parsed = json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_object() || !parsed["items"].is_array())
        co_return ApiError{0, "",
                           make_error(where(http::verb::get, target) + "the answer is not a list object", EPROTO)};
    ListPage page;
    const json& meta = parsed["metadata"];
    page.resource_version = string_at(meta, "resourceVersion");
    page.continue_token = string_at(meta, "continue");
    page.items = std::move(parsed["items"]);
    co_return page;
}

ApiResult<json> Client::object_answer(http::verb method, const std::string& target, ApiResult<Answer> answer,
                                      std::initializer_list<unsigned> ok) const {
    if (!answer)
        return answer.error();
    // Never a successful answer's body in a message: it may be a Secret or a TokenRequest with its token.
    if (std::find(ok.begin(), ok.end(), answer->status) == ok.end()) {
        if (answer->status / 100 != 2)
            return status_failure(answer->status, answer->body, method, target);
        return ApiError{answer->status, "",
                        make_error(where(method, target) + "HTTP " + std::to_string(answer->status) +
                                   ": not the answer this call expects")};
    }
    json parsed = json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_object())
        return ApiError{0, "", make_error(where(method, target) + "the answer is not a JSON object", EPROTO)};
    return parsed;
}

asio::awaitable<ApiResult<json>> Client::get(std::string target) {
    auto answer = co_await exchange(http::verb::get, target, {}, options_.max_object_bytes, "get");
    co_return object_answer(http::verb::get, target, std::move(answer), {200});
}

asio::awaitable<ApiResult<json>> Client::create(std::string target, json body) {
    // dump() would throw on invalid UTF-8; the server refuses the replacement character with a message instead.
    auto answer = co_await exchange(http::verb::post, target, body.dump(-1, ' ', false, json::error_handler_t::replace),
                                    options_.max_object_bytes, "create");
    co_return object_answer(http::verb::post, target, std::move(answer), {201, 200});
}

asio::awaitable<ApiResult<std::unique_ptr<WatchStream>>> Client::watch(std::string target,
                                                                       std::chrono::milliseconds idle_timeout) {
    auto opened = co_await open(http::verb::get, target);
    if (!opened)
        co_return opened.error();
    auto connection = std::move(*opened);
    auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
    parser->body_limit(boost::none);  // a watch body has no end but the server's timeoutSeconds
    beast::get_lowest_layer(connection->stream).expires_after(options_.request_timeout);
    error_code ec;
    co_await http::async_read_header(connection->stream, connection->buffer, *parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        connection->close();
        co_return failure(ec, http::verb::get, target, "watch header read");
    }
    const unsigned status = parser->get().result_int();
    if (status != 200) {
        std::string body;
        while (!parser->is_done() && body.size() < kMaxErrorBody) {
            std::array<char, 4096> chunk;
            parser->get().body().data = chunk.data();
            parser->get().body().size = chunk.size();
            co_await http::async_read_some(connection->stream, connection->buffer, *parser,
                                           asio::redirect_error(asio::use_awaitable, ec));
            if (ec && ec != http::error::need_buffer)
                break;
            body.append(chunk.data(), chunk.size() - parser->get().body().size);
        }
        connection->close();
        co_return status_failure(status, body, http::verb::get, target);
    }
    // A stream keeps its client alive: the informer may outlive whoever created the client.
    co_return std::unique_ptr<WatchStream>(
        new HttpsWatchStream(shared_from_this(), connection, std::move(parser), target, idle_timeout));
}

}  // namespace podid::kube
