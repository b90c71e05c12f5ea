#include "kube_apiserver_store.h"

#include <chrono>
#include <ctime>
#include <random>

#include "kube_apiserver_base64url.h"

namespace podid::test::kube {

using nlohmann::json;

std::string new_uid() {
    static std::mutex mu;
    static std::mt19937_64 rng{std::random_device{}()};
    std::lock_guard lock(mu);
    uint64_t hi = rng(), lo = rng();
    hi = (hi & ~0xF000ull) | 0x4000ull;              // version 4
    lo = (lo & ~(0xC0ull << 56)) | (0x80ull << 56);  // RFC 4122 variant
    char text[37];
    std::snprintf(text, sizeof text, "%08llx-%04llx-%04llx-%04llx-%012llx", (unsigned long long)(hi >> 32),
                  (unsigned long long)((hi >> 16) & 0xFFFF), (unsigned long long)(hi & 0xFFFF),
                  (unsigned long long)(lo >> 48), (unsigned long long)(lo & 0xFFFFFFFFFFFFull));
    return text;
}

namespace {

std::string random_suffix() {
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";  // the real generator's, no vowels
    std::string uid = new_uid();
    std::string out;
    for (size_t i = 0; i < 5; ++i)
        out += alphabet[static_cast<unsigned char>(uid[i * 3]) % (sizeof alphabet - 1)];
    return out;
}

std::string now_rfc3339() {
    std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::string meta_string(const json& object, const char* field) {
    if (!object.contains("metadata") || !object["metadata"].is_object())
        return "";
    const json& meta = object["metadata"];
    return meta.contains(field) && meta[field].is_string() ? meta[field].get<std::string>() : "";
}

std::string key_of(const std::string& ns, const std::string& name) { return ns + "/" + name; }

std::optional<uint64_t> parse_rv(const std::string& text) {
    if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    return std::stoull(text);
}

bool in_namespace(const json& object, const std::string& ns) {
    return ns.empty() || meta_string(object, "namespace") == ns;
}

ApiStatus too_large(uint64_t wanted, uint64_t current) {
    return {504, "Timeout",
            "Too large resource version: " + std::to_string(wanted) + ", current: " + std::to_string(current), "", ""};
}

}  // namespace

const char* event_type_name(EventType type) {
    switch (type) {
    case EventType::added: return "ADDED";
    case EventType::modified: return "MODIFIED";
    case EventType::deleted: return "DELETED";
    }
    return "ERROR";
}

Outcome<json> ObjectStore::create(const ResourceType& type, json object) {
    if (!object.is_object())
        return bad_request("object must be a JSON object");
    json& meta = object["metadata"];
    if (!meta.is_object())
        meta = json::object();
    if (meta_string(object, "name").empty() && !meta_string(object, "generateName").empty())
        meta["name"] = meta_string(object, "generateName") + random_suffix();
    std::string name = meta_string(object, "name");
    if (name.empty())
        return ApiStatus{422, "Invalid", type.kind + " \"\" is invalid: metadata.name: Required value", "",
                         type.plural};
    if (type.namespaced) {
        if (meta_string(object, "namespace").empty())
            meta["namespace"] = "default";
    } else {
        meta.erase("namespace");
    }
    object["kind"] = type.kind;
    object["apiVersion"] = type.api_version();
    // The real server always assigns the uid. Tests play kubelet too, whose cgroups are named after the
    // pod's uid before the object exists here, so a uid given at create is kept (the one deviation).
    if (meta_string(object, "uid").empty())
        meta["uid"] = new_uid();
    meta["creationTimestamp"] = now_rfc3339();

    std::lock_guard lock(mu_);
    std::string key = key_of(meta_string(object, "namespace"), name);
    Objects& objects = objects_[&type];
    if (objects.count(key))
        return ApiStatus{409, "AlreadyExists", type.plural + " \"" + name + "\" already exists", name, type.plural};
    meta["resourceVersion"] = std::to_string(rv_ + 1);
    objects[key] = object;
    record({rv_ + 1, &type, EventType::added, object, nullptr});
    return object;
}

Outcome<json> ObjectStore::update(const ResourceType& type, json object) {
    if (!object.is_object())
        return bad_request("object must be a JSON object");
    json& meta = object["metadata"];
    if (!meta.is_object())
        meta = json::object();
    if (type.namespaced && meta_string(object, "namespace").empty())
        meta["namespace"] = "default";
    if (!type.namespaced)
        meta.erase("namespace");
    std::string name = meta_string(object, "name");

    std::lock_guard lock(mu_);
    Objects& objects = objects_[&type];
    auto it = objects.find(key_of(meta_string(object, "namespace"), name));
    if (it == objects.end())
        return not_found(type, name);
    const json& stored = it->second;
    std::string wanted_rv = meta_string(object, "resourceVersion");
    if (!wanted_rv.empty() && wanted_rv != meta_string(stored, "resourceVersion"))
        return ApiStatus{409, "Conflict",
                         "Operation cannot be fulfilled on " + type.plural + " \"" + name +
                             "\": the object has been modified; please apply your changes to the latest version and "
                             "try again",
                         name, type.plural};
    object["kind"] = type.kind;
    object["apiVersion"] = type.api_version();
    meta["uid"] = stored["metadata"]["uid"];
    meta["creationTimestamp"] = stored["metadata"]["creationTimestamp"];
    meta["resourceVersion"] = stored["metadata"]["resourceVersion"];
    if (object == stored)
        return stored;  // a no-op update writes nothing to etcd: no new version, no event
    meta["resourceVersion"] = std::to_string(rv_ + 1);
    json previous = std::move(it->second);
    it->second = object;
    record({rv_ + 1, &type, EventType::modified, object, std::move(previous)});
    return object;
}

Outcome<json> ObjectStore::remove(const ResourceType& type, const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    Objects& objects = objects_[&type];
    auto it = objects.find(key_of(type.namespaced ? ns : "", name));
    if (it == objects.end())
        return not_found(type, name);
    json previous = std::move(it->second);
    objects.erase(it);
    json last = previous;
    last["metadata"]["resourceVersion"] = std::to_string(rv_ + 1);
    record({rv_ + 1, &type, EventType::deleted, last, std::move(previous)});
    return last;
}

Outcome<json> ObjectStore::get(const ResourceType& type, const std::string& ns, const std::string& name) const {
    std::lock_guard lock(mu_);
    auto objects = objects_.find(&type);
    if (objects != objects_.end()) {
        auto it = objects->second.find(key_of(type.namespaced ? ns : "", name));
        if (it != objects->second.end())
            return it->second;
    }
    return not_found(type, name);
}

// Called with mu_ held and rv_ not yet advanced: the event's rv is the next version.
void ObjectStore::record(Event event) {
    rv_ = event.rv;
    for (const auto& sub : subscriptions_) {
        offer(*sub, event);
        sub->seen_rv_ = rv_;
    }
    history_.push_back(std::move(event));
    while (history_.size() > history_limit_) {
        compacted_rv_ = history_.front().rv;
        history_.pop_front();
    }
}

// What one watch sees of an event: an object moving into its selection is ADDED, out of it DELETED,
// as the real watch cache reports them.
void ObjectStore::offer(Subscription& sub, const Event& event) const {
    const WatchRequest& req = sub.request_;
    if (event.type != req.type || !in_namespace(event.object, req.ns))
        return;
    bool now = req.selectors.matches(event.object);
    bool before = event.kind == EventType::modified && req.selectors.matches(event.previous);
    EventType kind = event.kind;
    if (event.kind == EventType::modified) {
        if (!now && !before)
            return;
        kind = now && before ? EventType::modified : now ? EventType::added : EventType::deleted;
    } else if (!now) {
        return;
    }
    sub.pending_.push_back({{"type", event_type_name(kind)}, {"object", event.object}});
    if (sub.wake_)
        sub.wake_();
}

Outcome<ObjectStore::Objects> ObjectStore::objects_at(const ResourceType& type, uint64_t rv,
                                                      const std::string& too_old_message) const {
    if (rv < compacted_rv_)
        return expired(too_old_message);
    if (rv > rv_)
        return too_large(rv, rv_);
    Objects objects;
    if (auto it = objects_.find(&type); it != objects_.end())
        objects = it->second;
    // Undo, newest first, every change made after `rv`.
    for (auto it = history_.rbegin(); it != history_.rend() && it->rv > rv; ++it) {
        if (it->type != &type)
            continue;
        std::string key = key_of(meta_string(it->object, "namespace"), meta_string(it->object, "name"));
        if (it->kind == EventType::added)
            objects.erase(key);
        else
            objects[key] = it->previous;
    }
    return objects;
}

Outcome<json> ObjectStore::list(const ListRequest& req) const {
    std::lock_guard lock(mu_);
    uint64_t snapshot_rv = rv_;
    std::string start_after;
    Outcome<Objects> objects = Objects{};
    bool from_snapshot = false;  // served as of an older resourceVersion, rebuilt from history
    if (!req.continue_token.empty()) {
        // Continue tokens are opaque to clients; like the real server's they are base64url JSON naming the
        // snapshot's resourceVersion and the last key returned.
        auto decoded = base64url_decode(req.continue_token);
        json token = decoded ? json::parse(*decoded, nullptr, false) : json();
        if (!token.is_object() || !token.contains("rv") || !token["rv"].is_number_unsigned() ||
            !token.contains("start") || !token["start"].is_string())
            return bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
        snapshot_rv = token["rv"].get<uint64_t>();
        start_after = token["start"].get<std::string>();
        from_snapshot = true;
        objects = objects_at(*req.type, snapshot_rv,
                             "The provided continue parameter is too old to display a consistent list result. You "
                             "can start a new list without the continue parameter.");
    } else if (!req.resource_version.empty() && req.resource_version != "0") {
        auto wanted = parse_rv(req.resource_version);
        if (!wanted)
            return bad_request("resourceVersion: Invalid value: \"" + req.resource_version + "\"");
        if (req.resource_version_match == "Exact") {
            snapshot_rv = *wanted;
            from_snapshot = true;
            objects = objects_at(
                *req.type, snapshot_rv,
                "too old resource version: " + req.resource_version + " (" + std::to_string(compacted_rv_ + 1) + ")");
        } else if (*wanted > rv_) {
            return too_large(*wanted, rv_);
        }
    }
    if (!from_snapshot) {
        if (auto it = objects_.find(req.type); it != objects_.end())
            objects = it->second;
    }
    if (auto* status = std::get_if<ApiStatus>(&objects))
        return *status;

    json items = json::array();
    std::string last_key;
    size_t remaining = 0;
    for (const auto& [key, object] : std::get<Objects>(objects)) {
        if (!start_after.empty() && key <= start_after)
            continue;
        if (!in_namespace(object, req.ns) || !req.selectors.matches(object))
            continue;
        if (req.limit != 0 && items.size() == req.limit) {
            ++remaining;
            continue;
        }
        items.push_back(object);
        last_key = key;
    }
    json meta = {{"resourceVersion", std::to_string(snapshot_rv)}};
    if (remaining > 0) {
        meta["continue"] =
            base64url_encode(json{{"v", "meta.k8s.io/v1"}, {"rv", snapshot_rv}, {"start", last_key}}.dump());
        if (!req.has_selectors)
            meta["remainingItemCount"] = remaining;
    }
    return json{
        {"kind", req.type->list_kind()}, {"apiVersion", req.type->api_version()}, {"metadata", meta}, {"items", items}};
}

uint64_t ObjectStore::resource_version() const {
    std::lock_guard lock(mu_);
    return rv_;
}

void ObjectStore::compact() {
    std::lock_guard lock(mu_);
    history_.clear();
    compacted_rv_ = rv_;
}

void ObjectStore::set_history_limit(size_t events) {
    std::lock_guard lock(mu_);
    history_limit_ = events;
    while (history_.size() > history_limit_) {
        compacted_rv_ = history_.front().rv;
        history_.pop_front();
    }
}

Outcome<std::shared_ptr<Subscription>> ObjectStore::subscribe(WatchRequest request, std::function<void()> wake) {
    auto sub = std::make_shared<Subscription>();
    sub->request_ = std::move(request);
    const WatchRequest& req = sub->request_;
    std::lock_guard lock(mu_);
    if (req.resource_version.empty() || req.resource_version == "0") {
        if (auto it = objects_.find(req.type); it != objects_.end())
            for (const auto& [key, object] : it->second)
                offer(*sub, {rv_, req.type, EventType::added, object, nullptr});
    } else {
        auto from = parse_rv(req.resource_version);
        if (!from)
            return bad_request("resourceVersion: Invalid value: \"" + req.resource_version + "\"");
        if (*from < compacted_rv_)
            return expired("too old resource version: " + req.resource_version + " (" +
                           std::to_string(compacted_rv_ + 1) + ")");
        for (const auto& event : history_)
            if (event.rv > *from)
                offer(*sub, event);
    }
    sub->seen_rv_ = rv_;
    sub->wake_ = std::move(wake);
    subscriptions_.insert(sub);
    return sub;
}

WatchBatch ObjectStore::drain(Subscription& sub) {
    std::lock_guard lock(mu_);
    WatchBatch batch;
    batch.events.assign(std::make_move_iterator(sub.pending_.begin()), std::make_move_iterator(sub.pending_.end()));
    sub.pending_.clear();
    batch.seen_rv = sub.seen_rv_;
    return batch;
}

void ObjectStore::unsubscribe(const std::shared_ptr<Subscription>& sub) {
    std::lock_guard lock(mu_);
    subscriptions_.erase(sub);
}

size_t ObjectStore::watch_count() const {
    std::lock_guard lock(mu_);
    return subscriptions_.size();
}

}  // namespace podid::test::kube
