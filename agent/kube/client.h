// HTTPS client to the Kubernetes API server: a list (one page, whole JSON) and a watch (one decoded
// event at a time as the chunked body arrives). One TLS connection per call: lists are rare and a
// watch holds its connection for minutes, so pooling would save little. Calls run on the caller's
// executor; failures are ApiError values (status, API Status reason and message, or errno).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>

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
};

class Client final : public KubeApi, public std::enable_shared_from_this<Client> {
public:
    // Fails when the CA or client certificate does not load into a TLS context.
    static Result<std::shared_ptr<Client>> create(const KubeConfig& config, ClientOptions options = {});
    ~Client() override;

    boost::asio::awaitable<ApiResult<ListPage>> list(std::string target) override;
    boost::asio::awaitable<ApiResult<std::unique_ptr<WatchStream>>> watch(
        std::string target, std::chrono::milliseconds idle_timeout) override;
    void shutdown() override;

    std::size_t requests() const { return requests_.load(); }
    const KubeConfig& config() const { return config_; }

    struct Connection;  // a TLS stream and its read buffer (client.cpp)

private:
    Client(const KubeConfig& config, ClientOptions options);
    boost::asio::awaitable<ApiResult<std::shared_ptr<Connection>>> open(const std::string& target);
    ApiError failure(const boost::system::error_code& ec, const std::string& target, const char* stage) const;
    ApiError status_failure(unsigned status, const std::string& body, const std::string& target) const;
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
