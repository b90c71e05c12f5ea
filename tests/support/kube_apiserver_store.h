// The API-server double's object store: objects by resource type, one global resourceVersion counter (as
// etcd's revision), the event history watches resume from, consistent snapshots for list chunking, and the
// fan-out of events to open watches. Thread-safe: tests mutate it while the server thread reads it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube_apiserver_resources.h"
#include "kube_apiserver_selectors.h"

namespace podid::test::kube {

template <class T>
using Outcome = std::variant<T, ApiStatus>;  // the value, or the Status the API server would answer

// A fresh RFC 4122 version-4 UUID, as the server assigns to metadata.uid (and to token ids).
std::string new_uid();

enum class EventType { added, modified, deleted };
const char* event_type_name(EventType type);  // "ADDED", ...

struct ListRequest {
    const ResourceType* type = nullptr;
    std::string ns;  // empty: all namespaces
    Selectors selectors;
    bool has_selectors = false;  // remainingItemCount is only reported for unfiltered lists
    size_t limit = 0;            // 0: everything
    std::string continue_token;
    std::string resource_version;        // "", "0" or digits
    std::string resource_version_match;  // "", "NotOlderThan" or "Exact"
};

struct WatchRequest {
    const ResourceType* type = nullptr;
    std::string ns;
    Selectors selectors;
    std::string resource_version;  // "" or "0": current state as ADDED events first; N: history after N
};

// One open watch. The store queues translated events ({"type","object"}) here and calls `wake`
// (under its lock: wake must only post work elsewhere).
class Subscription {
public:
    const ResourceType& type() const { return *request_.type; }

private:
    friend class ObjectStore;
    WatchRequest request_;
    std::function<void()> wake_;
    std::deque<nlohmann::json> pending_;
    uint64_t seen_rv_ = 0;  // every event up to here has been offered (queued or filtered out)
};

struct WatchBatch {
    std::vector<nlohmann::json> events;
    uint64_t seen_rv = 0;  // a bookmark may carry this once `events` are written
};

class ObjectStore {
public:
    ObjectStore() = default;
    ObjectStore(const ObjectStore&) = delete;
    ObjectStore& operator=(const ObjectStore&) = delete;

    // Mutations assign the next resourceVersion; create also uid and creationTimestamp (and a name from
    // metadata.generateName). update checks metadata.resourceVersion when set (409 Conflict) and, like the
    // real server, makes no new version when nothing changed. Each returns the stored object.
    Outcome<nlohmann::json> create(const ResourceType& type, nlohmann::json object);
    Outcome<nlohmann::json> update(const ResourceType& type, nlohmann::json object);
    Outcome<nlohmann::json> remove(const ResourceType& type, const std::string& ns, const std::string& name);
    Outcome<nlohmann::json> get(const ResourceType& type, const std::string& ns, const std::string& name) const;
    Outcome<nlohmann::json> list(const ListRequest& request) const;

    uint64_t resource_version() const;
    // Forgets all history: a watch or continue token from before now gets 410 Expired.
    void compact();
    // Keeps at most `events` events (default 1000); older ones are compacted away as they fall off.
    void set_history_limit(size_t events);

    // Registers a watch with its replay (current state or history) already queued, atomically with
    // respect to mutations, so the stream has neither gaps nor duplicates. 410 when history is gone.
    Outcome<std::shared_ptr<Subscription>> subscribe(WatchRequest request, std::function<void()> wake);
    WatchBatch drain(Subscription& subscription);
    void unsubscribe(const std::shared_ptr<Subscription>& subscription);
    size_t watch_count() const;

private:
    struct Event {
        uint64_t rv;
        const ResourceType* type;
        EventType kind;
        nlohmann::json object;    // as after the change (for deletions: the last state, at the deletion's rv)
        nlohmann::json previous;  // as before (null for additions)
    };
    using Objects = std::map<std::string, nlohmann::json>;  // "namespace/name" -> object, in etcd key order

    void record(Event event);
    void offer(Subscription& sub, const Event& event) const;
    Outcome<Objects> objects_at(const ResourceType& type, uint64_t rv, const std::string& too_old_message) const;

    mutable std::mutex mu_;
    uint64_t rv_ = 0;
    uint64_t compacted_rv_ = 0;  // history holds every event with rv > compacted_rv_
    size_t history_limit_ = 1000;
    std::map<const ResourceType*, Objects> objects_;
    std::deque<Event> history_;
    std::set<std::shared_ptr<Subscription>> subscriptions_;
};

}  // namespace podid::test::kube
