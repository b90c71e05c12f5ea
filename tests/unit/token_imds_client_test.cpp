// ImdsClient against a tiny Beast server on 127.0.0.1 inside the test: the exact request sent,
// keep-alive reuse, timeouts, resets, forwarding; and the IMDS adapter on top of it.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "token/imds_client.h"
#include "token/imds_token_upstream.h"

namespace podid {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

struct Action {
    enum Kind { respond, respond_then_close, hang, reset } kind = respond;
    unsigned status = 200;
    std::string body = "{}";
    std::vector<std::pair<std::string, std::string>> headers;
    bool chunked = false;
};

Action act(Action::Kind kind) {
    Action action;
    action.kind = kind;
    return action;
}

Action answer_with(unsigned status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {},
                   bool chunked = false) {
    Action action;
    action.status = status;
    action.body = std::move(body);
    action.headers = std::move(headers);
    action.chunked = chunked;
    return action;
}

struct Seen {
    HttpRequest request;
    int connection = 0;
};

// One listening socket on 127.0.0.1:<ephemeral>; every request is recorded and answered per `script`.
class TinyServer {
public:
    explicit TinyServer(asio::io_context& ioc) : acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(ioc, accept_loop(), asio::detached);
    }

    uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

    std::function<Action(const HttpRequest&)> script;
    std::vector<Seen> seen;
    int accepted = 0;

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            boost::system::error_code ec;
            tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec)
                co_return;
            asio::co_spawn(acceptor_.get_executor(), session(std::move(socket), accepted++), asio::detached);
        }
    }

    asio::awaitable<void> session(tcp::socket socket, int connection) {
        boost::beast::flat_buffer buffer;
        for (;;) {
            boost::system::error_code ec;
            HttpRequest request;
            co_await http::async_read(socket, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
            if (ec)
                co_return;
            seen.push_back({request, connection});
            const Action action = script ? script(request) : Action{};
            if (action.kind == Action::hang) {
                asio::steady_timer timer(socket.get_executor(), 30s);
                co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                co_return;
            }
            if (action.kind == Action::reset) {
                socket.set_option(asio::socket_base::linger(true, 0));  // close() now sends RST
                socket.close();
                co_return;
            }
            HttpResponse response{static_cast<http::status>(action.status), 11};
            for (const auto& [name, value] : action.headers)
                response.set(name, value);
            response.body() = action.body;
            if (action.chunked)
                response.chunked(true);
            else
                response.prepare_payload();
            co_await http::async_write(socket, response, asio::redirect_error(asio::use_awaitable, ec));
            if (ec || action.kind == Action::respond_then_close)
                co_return;
        }
    }

    tcp::acceptor acceptor_;
};

ImdsClientOptions options_for(const TinyServer& server, std::chrono::milliseconds timeout = 2000ms) {
    ImdsClientOptions options;
    options.url = *parse_imds_url(server.url());
    options.request_timeout = timeout;
    return options;
}

// Runs one coroutine on `ioc` to completion and returns its result.
template <class T>
T run(asio::io_context& ioc, std::function<asio::awaitable<T>()> make) {
    std::optional<T> out;
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { out.emplace(co_await make()); }, asio::detached);
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!out && std::chrono::steady_clock::now() < give_up) {
        ioc.run_for(5ms);
        if (ioc.stopped())
            ioc.restart();
    }
    EXPECT_TRUE(out) << "timed out";
    return std::move(*out);
}

Result<ImdsResponse> get_token(asio::io_context& ioc, ImdsClient& client, const TokenKey& key) {
    return run<Result<ImdsResponse>>(ioc, [&] { return client.get_token(key); });
}

std::set<std::string> header_names(const HttpRequest& request) {
    std::set<std::string> names;
    for (const auto& field : request)
        names.insert(std::string(field.name_string()));
    return names;
}

TEST(TokenImdsClient, SendsExactlyTheTokenRequest) {
    struct Row {
        TokenKey key;
        std::string target;
    };
    const Row rows[] = {
        {{"11111111-2222", "", "", "https://vault.azure.net"},
         "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
         "&client_id=11111111-2222"},
        {{"", "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x", "",
          "https://management.core.windows.net/"},
         "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.core.windows.net%2F"
         "&msi_res_id=%2Fsubscriptions%2Fs%2FresourceGroups%2Fg%2Fproviders%2FMicrosoft.ManagedIdentity%2F"
         "userAssignedIdentities%2Fx"},
        {{"", "", "oid-1", "api://my app"},
         "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api%3A%2F%2Fmy%20app&object_id=oid-1"},
        {{"", "", "", "https://storage.azure.com"},
         "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com"},
    };
    asio::io_context ioc;
    TinyServer server(ioc);
    ImdsClient client(ioc.get_executor(), options_for(server));
    for (const auto& row : rows) {
        SCOPED_TRACE(row.target);
        EXPECT_EQ(token_request_target(row.key), row.target);
        server.seen.clear();
        auto response = get_token(ioc, client, row.key);
        ASSERT_TRUE(response) << response.error().message;
        ASSERT_EQ(server.seen.size(), 1u);
        const auto& request = server.seen[0].request;
        EXPECT_EQ(request.method(), http::verb::get);
        EXPECT_EQ(request.target(), row.target);
        EXPECT_EQ(request.version(), 11);
        EXPECT_EQ(header_names(request), (std::set<std::string>{"Host", "Metadata"}));
        EXPECT_EQ(request["Metadata"], "true");
        EXPECT_EQ(request[http::field::host], "127.0.0.1:" + std::to_string(server.port()));
    }
}

TEST(TokenImdsClient, PercentEncodesAllButUnreservedCharacters) {
    struct Row {
        std::string in, out;
    };
    const Row rows[] = {{"AZaz09-._~", "AZaz09-._~"},
                        {"a b", "a%20b"},
                        {"https://x/", "https%3A%2F%2Fx%2F"},
                        {"a&b=c?d#e+f", "a%26b%3Dc%3Fd%23e%2Bf"},
                        {"\xc3\xa9", "%C3%A9"},
                        {"", ""}};
    for (const auto& row : rows)
        EXPECT_EQ(percent_encode(row.in), row.out) << row.in;
}

TEST(TokenImdsClient, ReusesKeepAliveConnections) {
    asio::io_context ioc;
    TinyServer server(ioc);
    ImdsClient client(ioc.get_executor(), options_for(server));
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(get_token(ioc, client, {"c", "", "", "r"}));
    EXPECT_EQ(server.accepted, 1);
    EXPECT_EQ(client.connections_opened(), 1u);
    EXPECT_EQ(client.idle_connections(), 1u);
    ASSERT_EQ(server.seen.size(), 3u);
    for (const auto& s : server.seen)
        EXPECT_EQ(s.connection, 0);
}

TEST(TokenImdsClient, RetriesOnceOnAFreshConnectionWhenAKeptConnectionWasClosed) {
    asio::io_context ioc;
    TinyServer server(ioc);
    server.script = [](const HttpRequest&) { return act(Action::respond_then_close); };
    ImdsClient client(ioc.get_executor(), options_for(server));
    ASSERT_TRUE(get_token(ioc, client, {"c", "", "", "r"}));
    ioc.run_for(20ms);  // let the server's close arrive
    auto second = get_token(ioc, client, {"c", "", "", "r"});
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(server.accepted, 2);
    EXPECT_EQ(server.seen.size(), 2u);
}

TEST(TokenImdsClient, RequestTimeoutIsAnErrorValue) {
    asio::io_context ioc;
    TinyServer server(ioc);
    server.script = [](const HttpRequest&) { return act(Action::hang); };
    ImdsClient client(ioc.get_executor(), options_for(server, 200ms));
    const auto started = std::chrono::steady_clock::now();
    auto response = get_token(ioc, client, {"c", "", "", "r"});
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, ETIMEDOUT);
    EXPECT_NE(response.error().message.find("200 ms"), std::string::npos) << response.error().message;
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 2s);
    EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(TokenImdsClient, ResetConnectionIsAnErrorValue) {
    asio::io_context ioc;
    TinyServer server(ioc);
    server.script = [](const HttpRequest&) { return act(Action::reset); };
    ImdsClient client(ioc.get_executor(), options_for(server));
    auto response = get_token(ioc, client, {"c", "", "", "r"});
    ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, ECONNRESET) << response.error().message;
    EXPECT_EQ(server.seen.size(), 1u);  // a fresh connection is not retried: the cache owns retries
}

TEST(TokenImdsClient, ConnectionRefusedIsAnErrorValue) {
    asio::io_context ioc;
    uint16_t port = 0;
    {
        tcp::acceptor probe(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = probe.local_endpoint().port();
    }  // closed: nothing listens there now
    ImdsClientOptions options;
    options.url = *parse_imds_url("http://127.0.0.1:" + std::to_string(port));
    ImdsClient client(ioc.get_executor(), options);
    auto response = get_token(ioc, client, {"c", "", "", "r"});
    ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, ECONNREFUSED) << response.error().message;
}

TEST(TokenImdsClient, ReturnsStatusRetryAfterAndBody) {
    asio::io_context ioc;
    TinyServer server(ioc);
    const std::string body = R"({"error":"too_many_requests"})";
    server.script = [&](const HttpRequest&) {
        return answer_with(429, body, {{"Retry-After", "3"}, {"Content-Type", "application/json"}});
    };
    ImdsClient client(ioc.get_executor(), options_for(server));
    auto response = get_token(ioc, client, {"c", "", "", "r"});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 429u);
    EXPECT_EQ(response->retry_after, "3");
    EXPECT_EQ(response->content_type, "application/json");
    EXPECT_EQ(response->body, body);
}

TEST(TokenImdsClient, ForwardDropsHopByHopHeadersBothWays) {
    asio::io_context ioc;
    TinyServer server(ioc);
    server.script = [](const HttpRequest&) {
        return answer_with(200, R"({"compute":{}})",
                           {{"Content-Type", "application/json"}, {"Keep-Alive", "timeout=5"}}, /*chunked=*/true);
    };
    ImdsClient client(ioc.get_executor(), options_for(server));
    HttpRequest request{http::verb::get, "/metadata/instance?api-version=2021-02-01", 11};
    request.set(http::field::host, "169.254.169.254");
    request.set("Metadata", "true");
    request.set("X-Custom", "kept");
    request.set(http::field::connection, "keep-alive, X-Private");
    request.set("X-Private", "dropped");
    request.set(http::field::keep_alive, "timeout=5");
    request.set(http::field::proxy_authorization, "Basic dropped");
    auto response = run<Result<HttpResponse>>(ioc, [&] { return client.forward(request); });
    ASSERT_TRUE(response) << response.error().message;
    ASSERT_EQ(server.seen.size(), 1u);
    const auto& sent = server.seen[0].request;
    EXPECT_EQ(sent.target(), "/metadata/instance?api-version=2021-02-01");
    EXPECT_EQ(sent[http::field::host], "169.254.169.254");
    EXPECT_EQ(header_names(sent), (std::set<std::string>{"Host", "Metadata", "X-Custom"}));
    EXPECT_EQ(response->result_int(), 200u);
    EXPECT_EQ(response->body(), R"({"compute":{}})");
    EXPECT_EQ((*response)[http::field::content_type], "application/json");
    EXPECT_EQ(response->count(http::field::transfer_encoding), 0u);
    EXPECT_EQ(response->count(http::field::keep_alive), 0u);
    EXPECT_EQ((*response)[http::field::content_length], "14");
}

TEST(TokenImdsClient, TokenUpstreamParsesTheAnswer) {
    asio::io_context ioc;
    TinyServer server(ioc);
    std::string answer;
    server.script = [&](const HttpRequest&) { return answer_with(200, answer); };
    ImdsClient client(ioc.get_executor(), options_for(server));
    ImdsTokenUpstream upstream(client, [] { return int64_t{1'000'000}; });
    const TokenKey key{"c", "", "", "r"};  // fetch() keeps a reference: it must outlive the call
    auto fetch = [&] { return run<UpstreamResult>(ioc, [&] { return upstream.fetch(key); }); };

    answer = R"({"access_token":"eyJ.secret.sig","client_id":"c","expires_in":"3599","expires_on":"1003599",)"
             R"("ext_expires_in":"3599","not_before":"999999","resource":"r","token_type":"Bearer"})";
    auto ok = fetch();
    EXPECT_EQ(ok.status, 200);
    ASSERT_TRUE(ok.token);
    EXPECT_EQ(ok.token->access_token, "eyJ.secret.sig");
    EXPECT_EQ(ok.token->expires_on, 1003599);

    answer = R"({"access_token":"eyJ.secret.sig","expires_on":"soon"})";
    auto bad = fetch();
    EXPECT_EQ(bad.status, 502);
    EXPECT_FALSE(bad.token);
    EXPECT_EQ(bad.body.find("secret"), std::string::npos) << bad.body;
    EXPECT_EQ(bad.detail.find("secret"), std::string::npos) << bad.detail;

    server.script = [](const HttpRequest&) { return act(Action::hang); };
    ImdsClientOptions quick = options_for(server, 100ms);
    ImdsClient slow_client(ioc.get_executor(), quick);
    ImdsTokenUpstream slow(slow_client, [] { return int64_t{0}; });
    auto timed_out = run<UpstreamResult>(ioc, [&] { return slow.fetch(key); });
    EXPECT_EQ(timed_out.status, 0);
    EXPECT_TRUE(timed_out.timed_out);
}

}  // namespace
}  // namespace podid
