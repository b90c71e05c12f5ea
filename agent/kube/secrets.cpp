#include "kube/secrets.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "kube/base64.h"

namespace podid::kube {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

// Namespaces are DNS labels and Secret names DNS subdomains; anything else would change the path.
bool secret_path_name_ok(const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
}

// What the API server answered, as the decoded data or an error that says what to fix. Messages name keys,
// never values.
Result<SecretData> secret_from_answer(const std::string& ns, const std::string& name, ApiResult<json> answer) {
    const std::string what = "cannot read secret " + ns + "/" + name + ": ";
    if (!answer) {
        const ApiError& e = answer.error();
        if (e.http_status == 403)
            return make_error(
                what + "the agent's ClusterRole needs `get` on this secret (core group, `secrets`): " + e.error.message,
                EACCES);
        if (e.http_status == 404)
            return make_error(what + "secret not found: " + e.error.message, ENOENT);
        return make_error(what + e.error.message, e.error.code);
    }
    SecretData out;
    auto data = answer->find("data");
    if (data == answer->end() || data->is_null())
        return out;  // a Secret without data is empty, not broken
    if (!data->is_object())
        return make_error(what + "its data is not an object", EPROTO);
    for (const auto& [key, value] : data->items()) {
        std::optional<std::string> decoded;
        if (value.is_string())
            decoded = base64_decode(value.get_ref<const std::string&>());
        if (!decoded)
            return make_error(what + "the value of key \"" + key + "\" is not base64", EPROTO);
        out.emplace(key, std::move(*decoded));
    }
    return out;
}

}  // namespace

struct SecretReader::State {
    using Strand = asio::strand<asio::any_io_executor>;

    // One GET and the callers waiting for it. Both members are touched on the strand only.
    struct Flight {
        explicit Flight(const Strand& strand) : done(strand, asio::steady_timer::time_point::max()) {}
        asio::steady_timer done;  // cancelled once `result` is set: wakes every waiter
        std::optional<Result<SecretData>> result;
    };

    struct Cached {
        SecretData data;
        int64_t expires_ms = 0;
    };

    State(asio::any_io_executor executor, std::shared_ptr<KubeRequests> api, SecretReaderOptions options)
        : strand(asio::make_strand(executor)), api(std::move(api)), options(std::move(options)) {}

    int64_t now_ms() const {
        if (options.now_ms)
            return options.now_ms();
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }

    // The cached data while within its TTL; an expired entry is dropped (its values go with it). Requires mu.
    std::optional<SecretData> fresh_locked(const std::string& key) {
        auto it = cached.find(key);
        if (it == cached.end())
            return std::nullopt;
        if (now_ms() >= it->second.expires_ms) {
            cached.erase(it);
            return std::nullopt;
        }
        ++hits;
        return it->second.data;
    }

    // On the strand: the cached data, or the result of the GET in flight for the Secret, starting one when
    // there is none. Returns nullopt only when the strand's io_context stopped first.
    static asio::awaitable<std::optional<Result<SecretData>>> join(std::shared_ptr<State> s, std::string ns,
                                                                   std::string name) {
        const std::string key = ns + "/" + name;
        std::shared_ptr<Flight> flight;
        bool start = false;
        {
            std::lock_guard lock(s->mu);
            if (auto data = s->fresh_locked(key))  // fetched while this caller came over to the strand
                co_return Result<SecretData>(std::move(*data));
            auto& slot = s->flights[key];
            if (!slot) {
                slot = std::make_shared<Flight>(s->strand);
                start = true;
            } else {
                ++s->shared;
            }
            flight = slot;
        }
        if (start)
            asio::co_spawn(s->strand, fetch(s, std::move(ns), std::move(name), flight), asio::detached);
        if (!flight->result) {
            boost::system::error_code ignored;  // cancelled by fetch(), or the io_context ends
            co_await flight->done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        }
        co_return flight->result;
    }

    // On the strand: one GET; the data is cached for the TTL from when the GET started.
    static asio::awaitable<void> fetch(std::shared_ptr<State> s, std::string ns, std::string name,
                                       std::shared_ptr<Flight> flight) {
        const std::string key = ns + "/" + name;
        const int64_t started_ms = s->now_ms();
        ++s->requests;
        std::optional<Result<SecretData>> outcome;
        try {
            outcome =
                secret_from_answer(ns, name, co_await s->api->get("/api/v1/namespaces/" + ns + "/secrets/" + name));
        } catch (const std::exception& e) {  // waiters must always be woken
            outcome = make_error("cannot read secret " + key + ": " + e.what());
        }
        {
            std::lock_guard lock(s->mu);
            s->flights.erase(key);
            if (*outcome) {
                const int64_t now = s->now_ms();
                std::erase_if(s->cached, [&](const auto& entry) { return entry.second.expires_ms <= now; });
                s->cached[key] = Cached{**outcome, started_ms + s->options.ttl.count()};
            }
        }
        if (!*outcome)
            ++s->failures;
        flight->result = std::move(outcome);
        flight->done.cancel();
    }

    Strand strand;
    std::shared_ptr<KubeRequests> api;
    const SecretReaderOptions options;

    mutable std::mutex mu;                                   // guards the maps
    std::map<std::string, Cached> cached;                    // by "namespace/name"
    std::map<std::string, std::shared_ptr<Flight>> flights;  // by "namespace/name"

    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> hits{0};
    std::atomic<uint64_t> shared{0};
    std::atomic<uint64_t> failures{0};
};

SecretReader::SecretReader(asio::any_io_executor executor, std::shared_ptr<KubeRequests> api,
                           SecretReaderOptions options)
    : state_(std::make_shared<State>(std::move(executor), std::move(api), std::move(options))) {}

SecretReader::~SecretReader() = default;

asio::awaitable<Result<SecretData>> SecretReader::read(std::string ns, std::string name) {
    std::shared_ptr<State> s = state_;
    if (!secret_path_name_ok(ns) || !secret_path_name_ok(name))
        co_return make_error("cannot read secret \"" + ns + "/" + name + "\": not a namespace and a Secret name",
                             EINVAL);
    {
        std::lock_guard lock(s->mu);
        if (auto data = s->fresh_locked(ns + "/" + name))
            co_return std::move(*data);
    }
    auto outcome = co_await asio::co_spawn(s->strand, State::join(s, ns, name), asio::use_awaitable);
    if (!outcome)
        co_return make_error("cannot read secret " + ns + "/" + name + ": the agent is stopping", ECANCELED);
    co_return std::move(*outcome);
}

SecretReaderStats SecretReader::stats() const {
    SecretReaderStats out;
    out.requests = state_->requests.load();
    out.cache_hits = state_->hits.load();
    out.shared = state_->shared.load();
    out.failures = state_->failures.load();
    std::lock_guard lock(state_->mu);
    out.cached = state_->cached.size();
    return out;
}

}  // namespace podid::kube
