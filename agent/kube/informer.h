// The list-then-watch loop that keeps a local copy of one resource (client-go's reflector, reduced):
// list in pages, watch from the list's resourceVersion with bookmarks, re-watch from the last version
// seen when the server ends the stream, relist when that version is gone (410), and back off with
// jitter on errors without ever giving up. Known objects stay known while the API server is away.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

#include "kube/api.h"
#include "kube/decode.h"

namespace podid::kube {

struct Resource {
    std::string name;            // "pods": for logs and metrics labels
    std::string path;            // collection path: "/api/v1/pods", "/apis/aadpodidentity.k8s.io/v1/azureidentities"
    std::string field_selector;  // "spec.nodeName=node-1", or empty
    // A 404 on list (the CRD is not installed) counts as an empty, synced list, looked at again every
    // backoff_max: clusters without AAD Pod Identity must still sync.
    bool optional = false;
};

struct InformerOptions {
    unsigned page_size = 500;                 // list `limit`
    std::chrono::seconds watch_timeout{300};  // timeoutSeconds drawn from [t, 2t): watches end spread out
    std::chrono::milliseconds backoff_initial{500};
    std::chrono::milliseconds backoff_max{30'000};
    std::chrono::milliseconds min_healthy_watch{1'000};   // a shorter watch without events counts as a failure
    std::chrono::milliseconds min_nudge_interval{1'000};  // nudge(): at most one reconnection per interval
    // A nudge after which the watch delivered nothing found the watch healthy (the object just does not exist:
    // a cgroup whose pod the API server never had). The interval doubles after each such nudge up to this, so
    // a persistent unknown caller costs the API server one re-watch a minute per node, not one a second.
    std::chrono::milliseconds max_nudge_interval{60'000};
    // While the informer cannot reach the API server, its warning is repeated this often (with how long it has
    // been disconnected) even when the error stays the same.
    std::chrono::milliseconds repeat_warning{60'000};
};

struct InformerStats {
    uint64_t lists = 0;    // complete lists (all pages)
    uint64_t relists = 0;  // lists forced by 410 Gone
    uint64_t watches = 0;  // watch (re)starts
    uint64_t events = 0;   // ADDED/MODIFIED/DELETED applied
    uint64_t errors = 0;   // failed calls and broken streams
    bool synced = false;
    uint64_t nudges = 0;  // reconnections nudge() asked for
};

class InformerBase : public std::enable_shared_from_this<InformerBase> {
public:
    InformerBase(std::shared_ptr<KubeApi> api, Resource resource, InformerOptions options);
    virtual ~InformerBase() = default;
    InformerBase(const InformerBase&) = delete;
    InformerBase& operator=(const InformerBase&) = delete;

    // Runs the loop on `strand`; every callback and every store access happens there.
    void start(boost::asio::strand<boost::asio::any_io_executor> strand);
    // Any thread. The loop makes no further callbacks and ends at its next step; a call in flight ends
    // when it completes or when the API is shut down.
    void stop();

    // Any thread. Someone expects an object this informer has not delivered (a pod asking for a token before its
    // watch event): a watch can go silent without any sign (an API server that vanished without a FIN, a middlebox
    // that keeps a dead flow open), and a backoff after an outage can outlast the outage. So drop the current watch
    // and watch again from the last resourceVersion, or end the backoff sleep, now; at most once per
    // min_nudge_interval. `why` goes into the log line.
    void nudge(std::string why);

    bool synced() const { return synced_.load(); }
    InformerStats stats() const;
    const Resource& resource() const { return resource_; }

protected:
    // On the strand. A list is begin_list, list_item per object, then end_list (or abort_list).
    virtual void begin_list() = 0;
    virtual void list_item(const nlohmann::json& object) = 0;
    virtual void abort_list() = 0;
    virtual void end_list() = 0;
    virtual void apply(WatchEvent::Type type, const nlohmann::json& object) = 0;

private:
    boost::asio::awaitable<void> run();
    boost::asio::awaitable<ApiResult<std::string>> list_all();  // the list's resourceVersion
    boost::asio::awaitable<void> sleep(std::chrono::milliseconds delay);
    std::chrono::milliseconds next_backoff();
    std::string list_target(const std::string& continue_token) const;
    std::string watch_target(const std::string& resource_version);
    void note_error(const ApiError& error);
    void note_healthy();    // a list worked: backoff starts over
    void note_connected();  // logs the recovery after logged failures
    void nudge_on_strand(const std::string& why);

    std::shared_ptr<KubeApi> api_;
    Resource resource_;
    InformerOptions options_;
    std::optional<boost::asio::strand<boost::asio::any_io_executor>> strand_;
    std::optional<boost::asio::steady_timer> timer_;
    std::chrono::milliseconds backoff_;
    std::mt19937_64 rng_;
    std::string last_logged_error_;
    // Since the first failure after the last success (unset while connected), and when it was last logged.
    std::optional<std::chrono::steady_clock::time_point> disconnected_since_;
    std::chrono::steady_clock::time_point last_warning_{};
    uint64_t failures_since_connected_ = 0;
    // On the strand: the watch being read (null between watches), the last nudge, and whether the watch being
    // read was cancelled by one (then its end is no failure).
    WatchStream* watching_ = nullptr;
    std::optional<std::chrono::steady_clock::time_point> last_nudge_;
    std::chrono::milliseconds nudge_interval_{0};  // current spacing (min..max_nudge_interval)
    uint64_t events_at_last_nudge_ = 0;
    bool nudged_ = false;

    std::atomic<bool> stopped_{false};
    std::atomic<bool> synced_{false};
    std::atomic<uint64_t> lists_{0}, relists_{0}, watches_{0}, events_{0}, errors_{0}, nudges_{0};
};

template <class T>
struct InformerHandlers {
    std::function<void(const T&)> added;
    std::function<void(const T& before, const T& now)> updated;
    std::function<void(const T&)> deleted;
    std::function<void()> changed;  // after a list, or an event that changed the store: republish derived views
};

// A typed store keyed by "namespace/name". `decode` returns nullopt for objects not worth keeping
// (a filter): such an object is treated as absent, so one that stops matching is deleted.
template <class T>
class Informer final : public InformerBase {
public:
    using Decode = std::function<std::optional<T>(const nlohmann::json&)>;

    Informer(std::shared_ptr<KubeApi> api, Resource resource, InformerOptions options, Decode decode,
             InformerHandlers<T> handlers)
        : InformerBase(std::move(api), std::move(resource), options),
          decode_(std::move(decode)),
          handlers_(std::move(handlers)) {}

    // On the strand only.
    const std::map<std::string, T>& items() const { return items_; }

protected:
    void begin_list() override { staging_.clear(); }
    void list_item(const nlohmann::json& object) override {
        if (auto decoded = decode_(object))
            staging_.insert_or_assign(object_key(object), std::move(*decoded));
    }
    void abort_list() override { staging_.clear(); }
    void end_list() override {
        for (auto it = items_.begin(); it != items_.end();) {
            if (staging_.count(it->first)) {
                ++it;
                continue;
            }
            T gone = std::move(it->second);
            it = items_.erase(it);
            notify_deleted(gone);
        }
        for (auto& [key, now] : staging_)
            upsert(key, std::move(now));
        staging_.clear();
        if (handlers_.changed)
            handlers_.changed();
    }
    void apply(WatchEvent::Type type, const nlohmann::json& object) override {
        const std::string key = object_key(object);
        std::optional<T> now = type == WatchEvent::Type::deleted ? std::nullopt : decode_(object);
        if (now) {
            upsert(key, std::move(*now));
        } else {
            auto it = items_.find(key);
            if (it == items_.end())
                return;
            T gone = std::move(it->second);
            items_.erase(it);
            notify_deleted(gone);
        }
        if (handlers_.changed)
            handlers_.changed();
    }

private:
    void upsert(const std::string& key, T now) {
        auto it = items_.find(key);
        if (it == items_.end()) {
            const T& added = items_.emplace(key, std::move(now)).first->second;
            if (handlers_.added)
                handlers_.added(added);
            return;
        }
        // A relist returns every object again; unchanged ones (same resourceVersion) are not news.
        const bool same =
            !now.meta.resource_version.empty() && now.meta.resource_version == it->second.meta.resource_version;
        T before = std::exchange(it->second, std::move(now));
        if (!same && handlers_.updated)
            handlers_.updated(before, it->second);
    }
    void notify_deleted(const T& gone) {
        if (handlers_.deleted)
            handlers_.deleted(gone);
    }

    Decode decode_;
    InformerHandlers<T> handlers_;
    std::map<std::string, T> items_;
    std::map<std::string, T> staging_;
};

}  // namespace podid::kube
