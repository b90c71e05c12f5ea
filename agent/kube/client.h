// HTTPS client to the Kubernetes API server: a list (one page, whole JSON), a watch (one decoded
// event at a time as the chunked body arrives), a get of one object and a create (POST). One TLS
// connection per call: lists are rare, a watch holds its connection for minutes, and gets and creates
// sit behind caches (service_account_tokens.h, secrets.h), so pooling would save little. Calls run on
// the caller's executor; failures are ApiError values (status, API Status reason and message, or errno).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/verb.hpp>

#include "common/result.h"
#include "common/url.h"
#include "kube/api.h"
#include "kube/bearer_token.h"
#include "kube/config.h"

namespace podid::kube {

struct ClientOptions {
    std::chrono::milliseconds connect_timeout{10'000};  // TCP connect + TLS handshake + request sent
    std::chrono::milliseconds request_timeout{60'000};  // a list page's whole response
    std::size_t max_list_bytes = std::size_t{256} << 20;
    std::size_t max_event_bytes = std::size_t{16} << 20;
    std::string user_agent = "podid-agent";
    std::size_t max_object_bytes = std::size_t{16} << 20;  // a get's or a create's answer
};

class Client final : public KubeApi, public KubeRequests, public std::enable_shared_from_this<Client> {
public:
    // Fails when the CA or client certificate does not load into a TLS context.
    static Result<std::shared_ptr<Client>> create(const KubeConfig& config, ClientOptions options = {});
    ~Client() override;

    boost::asio::awaitable<ApiResult<ListPage>> list(std::string target) override;
    boost::asio::awaitable<ApiResult<std::unique_ptr<WatchStream>>> watch(
        std::string target, std::chrono::milliseconds idle_timeout) override;
    // Both bounded by request_timeout and max_object_bytes.
    boost::asio::awaitable<ApiResult<nlohmann::json>> get(std::string target) override;
    boost::asio::awaitable<ApiResult<nlohmann::json>> create(std::string target, nlohmann::json body) override;
    void shutdown() override;

    std::size_t requests() const { return requests_.load(); }
    const KubeConfig& config() const { return config_; }

    struct Connection;  // a TLS stream and its read buffer (client.cpp)

private:
    // A whole answer to a call that is not a watch.
    struct Answer {
        unsigned status = 0;
        std::string body;
    };

    Client(const KubeConfig& config, ClientOptions options);
    // Connects and sends the request; `body` (JSON) only with a method that takes one.
    boost::asio::awaitable<ApiResult<std::shared_ptr<Connection>>> open(boost::beast::http::verb method,
                                                                        const std::string& target,
                                                                        std::string body = {});
    // open(), then reads the whole answer: at most `max_bytes` of body within request_timeout. `what` names the
    // call in errors ("list", "get", "create").
    boost::asio::awaitable<ApiResult<Answer>> exchange(boost::beast::http::verb method, const std::string& target,
                                                       std::string body, std::size_t max_bytes, const char* what);
    // The answer of a get or create when its status is one of `ok`: the JSON object it carries.
    ApiResult<nlohmann::json> object_answer(boost::beast::http::verb method, const std::string& target,
                                            ApiResult<Answer> answer, std::initializer_list<unsigned> ok) const;
    std::string where(boost::beast::http::verb method, const std::string& target) const;
    ApiError failure(const boost::system::error_code& ec, boost::beast::http::verb method, const std::string& target,
                     const char* stage) const;
    ApiError status_failure(unsigned status, const std::string& body, boost::beast::http::verb method,
                            const std::string& target) const;
    bool track(const std::shared_ptr<Connection>& connection);  // false after shutdown()

    KubeConfig config_;
    ClientOptions options_;
    std::string verify_name_;  // tls_server_name or host
    std::string host_header_;
    boost::asio::ssl::context ssl_;
    BearerToken token_;
    std::atomic<std::size_t> requests_{0};
    std::mutex mu_;
    bool stopped_ = false;
    std::list<std::weak_ptr<Connection>> open_;

    friend class HttpsWatchStream;
};

}  // namespace podid::kube
