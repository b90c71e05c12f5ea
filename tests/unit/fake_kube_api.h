// A kube::KubeState fed by a scripted in-memory API server, for tests of what reads it (the caller resolver,
// /host/token): whole lists per collection, and watches the test pushes events into. The same shape as the fake in
// kube_state_test.cpp, reduced to what a reader of the state needs.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "kube/api.h"
#include "kube/state.h"

namespace podid::test {

namespace kube = podid::kube;
using nlohmann::json;

inline const std::string kPodsPath = "/api/v1/pods";
inline const std::string kIdentitiesPath = "/apis/aadpodidentity.k8s.io/v1/azureidentities";
inline const std::string kBindingsPath = "/apis/aadpodidentity.k8s.io/v1/azureidentitybindings";
inline const std::string kExceptionsPath = "/apis/aadpodidentity.k8s.io/v1/azurepodidentityexceptions";
inline const std::string kServiceAccountsPath = "/api/v1/serviceaccounts";

class FakeKubeApi final : public kube::KubeApi {
public:
    explicit FakeKubeApi(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

    std::map<std::string, std::vector<json>> lists;  // by collection path; a missing path answers 404
    bool down = false;                               // every call fails as if the server were unreachable

    boost::asio::awaitable<kube::ApiResult<kube::ListPage>> list(std::string target) override {
        const std::string path = target.substr(0, target.find('?'));
        if (stopped_ || down)
            co_return kube::ApiError{0, "", make_error("connection refused", ECONNREFUSED)};
        auto it = lists.find(path);
        if (it == lists.end())
            co_return kube::ApiError{404, "NotFound", make_error("HTTP 404")};
        kube::ListPage page;
        page.resource_version = std::to_string(++version_);
        page.items = it->second;
        co_return page;
    }

    boost::asio::awaitable<kube::ApiResult<std::unique_ptr<kube::WatchStream>>> watch(
        std::string target, std::chrono::milliseconds) override {
        const std::string path = target.substr(0, target.find('?'));
        if (stopped_ || down)
            co_return kube::ApiError{0, "", make_error("connection refused", ECONNREFUSED)};
        auto channel = std::make_shared<Channel>(executor_);
        channels_[path] = channel;
        co_return std::unique_ptr<kube::WatchStream>(new Stream(channel));
    }

    void shutdown() override {
        stopped_ = true;
        for (auto& [path, channel] : channels_)
            channel->end();
    }

    bool watching(const std::string& path) const { return channels_.count(path) > 0; }
    // Delivers an event on the open watch of `path` (watching(path) must be true).
    void push(const std::string& path, kube::WatchEvent::Type type, json object) {
        channels_.at(path)->push(kube::WatchEvent{type, std::move(object)});
    }

private:
    struct Channel {
        explicit Channel(boost::asio::any_io_executor executor) : signal(std::move(executor)) {}
        std::deque<kube::WatchEvent> events;
        boost::asio::steady_timer signal;
        bool ended = false;
        void push(kube::WatchEvent event) {
            events.push_back(std::move(event));
            signal.cancel();
        }
        void end() {
            ended = true;
            signal.cancel();
        }
    };

    class Stream final : public kube::WatchStream {
    public:
        explicit Stream(std::shared_ptr<Channel> channel) : channel_(std::move(channel)) {}
        boost::asio::awaitable<kube::ApiResult<std::optional<kube::WatchEvent>>> next() override {
            while (channel_->events.empty() && !channel_->ended) {
                channel_->signal.expires_at(boost::asio::steady_timer::time_point::max());
                boost::system::error_code ignored;
                co_await channel_->signal.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
            }
            if (channel_->events.empty())
                co_return kube::ApiError{0, "", make_error("connection reset", ECONNRESET)};
            kube::WatchEvent event = std::move(channel_->events.front());
            channel_->events.pop_front();
            co_return std::optional<kube::WatchEvent>(std::move(event));
        }
        void cancel() override { channel_->end(); }

    private:
        std::shared_ptr<Channel> channel_;
    };

    boost::asio::any_io_executor executor_;
    std::map<std::string, std::shared_ptr<Channel>> channels_;
    bool stopped_ = false;
    int version_ = 100;
};

// A pod of node "n1" as the API server lists it; a changed pod needs a new resourceVersion to count as news.
inline json pod_object(const std::string& ns, const std::string& name, const std::string& uid,
                       json labels = json::object(), const std::string& service_account = "default",
                       const std::string& node = "n1", const std::string& resource_version = "1") {
    return json{
        {"metadata",
         {{"namespace", ns}, {"name", name}, {"uid", uid}, {"resourceVersion", resource_version}, {"labels", labels}}},
        {"spec", {{"nodeName", node}, {"serviceAccountName", service_account}}}};
}

// A namespaced object with a spec (AzureIdentity, AzureIdentityBinding, ...) or annotations (ServiceAccount).
inline json named_object(const std::string& ns, const std::string& name, json spec = json::object(),
                         json annotations = json::object()) {
    return json{
        {"metadata", {{"namespace", ns}, {"name", name}, {"resourceVersion", "1"}, {"annotations", annotations}}},
        {"spec", spec}};
}

// Runs `io` in small steps until `done()` or `limit`; false on timeout.
template <class Pred>
bool run_until(boost::asio::io_context& io, Pred done, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        io.run_for(std::chrono::milliseconds(2));
        if (io.stopped())
            io.restart();
    }
    return true;
}

// The state of node "n1" over a FakeKubeApi whose lists the test fills before start().
struct KubeStateFixture {
    boost::asio::io_context io;
    std::shared_ptr<FakeKubeApi> api = std::make_shared<FakeKubeApi>(io.get_executor());
    kube::KubeState state{fast_options()};

    KubeStateFixture() {
        for (const auto* path : {&kPodsPath, &kIdentitiesPath, &kBindingsPath, &kExceptionsPath, &kServiceAccountsPath})
            api->lists[*path] = {};
    }
    ~KubeStateFixture() {
        state.stop();
        io.restart();
        io.run_for(std::chrono::seconds(5));  // returns as soon as the informers and waiters have ended
    }
    void start() { state.start(io.get_executor(), api, "n1"); }
    // Starts and runs until every list is in and the pod watch is open.
    bool start_synced() {
        start();
        return run_until(io, [&] { return state.synced() && api->watching(kPodsPath); });
    }

    // Runs a coroutine on `io` (alongside the informers) to completion; nullopt if it did not finish within `limit`.
    template <class T>
    std::optional<T> run(boost::asio::awaitable<T> coroutine,
                         std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        auto out = std::make_shared<std::optional<T>>();
        boost::asio::co_spawn(io, std::move(coroutine), [out](std::exception_ptr e, T value) {
            if (e)
                std::rethrow_exception(e);
            out->emplace(std::move(value));
        });
        run_until(
            io, [&] { return out->has_value(); }, limit);
        return std::move(*out);
    }

    static kube::KubeStateOptions fast_options() {
        kube::KubeStateOptions options;
        options.informer.backoff_initial = std::chrono::milliseconds(10);
        options.informer.backoff_max = std::chrono::milliseconds(50);
        options.informer.min_healthy_watch = std::chrono::milliseconds(0);
        return options;
    }
};

}  // namespace podid::test
