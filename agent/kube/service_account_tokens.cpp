#include "kube/service_account_tokens.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <ctime>
#include <exception>
#include <map>
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

namespace podid::kube {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

// The share of a token's lifetime after which it is fetched again: Entra accepts it until it expires, and what
// is left (a fifth, two minutes at least) covers the exchange and the clock skew between API server and Entra.
constexpr double kTokenReuseFraction = 0.8;

// status.expirationTimestamp as Go's time.Time marshals it ("2026-12-04T23:02:56Z"); fractional seconds
// (dropped: the token then counts as expiring a little early) and numeric offsets as RFC 3339 allows them.
std::optional<int64_t> rfc3339_epoch_seconds(std::string_view text) {
    auto number = [&](std::size_t pos, std::size_t n, int& out) {
        if (pos + n > text.size())
            return false;
        out = 0;
        for (std::size_t i = pos; i < pos + n; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(text[i])))
                return false;
            out = out * 10 + (text[i] - '0');
        }
        return true;
    };
    int year, month, day, hour, minute, second;
    if (!number(0, 4, year) || text.size() < 20 || text[4] != '-' || !number(5, 2, month) || text[7] != '-' ||
        !number(8, 2, day) || (text[10] != 'T' && text[10] != 't') || !number(11, 2, hour) || text[13] != ':' ||
        !number(14, 2, minute) || text[16] != ':' || !number(17, 2, second))
        return std::nullopt;
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return std::nullopt;
    std::size_t pos = 19;
    if (text[pos] == '.') {
        const std::size_t first = ++pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])))
            ++pos;
        if (pos == first)
            return std::nullopt;
    }
    int64_t offset = 0;
    int offset_hours, offset_minutes;
    if (pos + 1 == text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
        // UTC
    } else if (pos + 6 == text.size() && (text[pos] == '+' || text[pos] == '-') && number(pos + 1, 2, offset_hours) &&
               text[pos + 3] == ':' && number(pos + 4, 2, offset_minutes) && offset_hours < 24 && offset_minutes < 60) {
        offset = (text[pos] == '-' ? -1 : 1) * (offset_hours * 3600 + offset_minutes * 60);
    } else {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    return static_cast<int64_t>(timegm(&tm)) - offset;
}

// Namespaces and service-account names are DNS labels and subdomains; anything else would change the path.
bool token_path_name_ok(const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
}

std::string lower_uid(std::string_view uid) {
    std::string out(uid);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

json token_request_body(const PodInfo& pod, const std::string& audience, std::chrono::seconds lifetime) {
    return {{"apiVersion", "authentication.k8s.io/v1"},
            {"kind", "TokenRequest"},
            {"spec",
             {{"audiences", json::array({audience})},
              {"expirationSeconds", lifetime.count()},
              {"boundObjectRef", {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", pod.name}, {"uid", pod.uid}}}}}};
}

// What the API server answered, as a token or an error that says what to fix. Never the token in a message.
Result<ServiceAccountToken> token_from_answer(const PodInfo& pod, ApiResult<json> answer) {
    const std::string what = "no token for service account " + pod.ns + "/" + pod.service_account + " of pod " +
                             pod.ns + "/" + pod.name + ": ";
    if (!answer) {
        const ApiError& e = answer.error();
        if (e.http_status == 403)
            return make_error(what +
                                  "the agent's ClusterRole needs `create` on `serviceaccounts/token` (core group): " +
                                  e.error.message,
                              EACCES);
        if (e.http_status == 404)
            return make_error(what + "the service account does not exist (or the pod is gone): " + e.error.message,
                              ENOENT);
        return make_error(what + e.error.message, e.error.code);
    }
    auto status = answer->find("status");
    if (status == answer->end() || !status->is_object())
        return make_error(what + "the TokenRequest answer has no status", EPROTO);
    auto token = status->find("token");
    if (token == status->end() || !token->is_string() || token->get_ref<const std::string&>().empty())
        return make_error(what + "the TokenRequest answer has no status.token", EPROTO);
    auto expiry = status->find("expirationTimestamp");
    std::optional<int64_t> expires_on;
    if (expiry != status->end() && expiry->is_string())
        expires_on = rfc3339_epoch_seconds(expiry->get_ref<const std::string&>());
    if (!expires_on)
        return make_error(what + "the TokenRequest answer has no RFC 3339 status.expirationTimestamp", EPROTO);
    return ServiceAccountToken{token->get<std::string>(), *expires_on};
}

}  // namespace

struct ServiceAccountTokens::State {
    using Strand = asio::strand<asio::any_io_executor>;

    // One TokenRequest and the callers waiting for it. Both members are touched on the strand only.
    struct Flight {
        explicit Flight(const Strand& strand) : done(strand, asio::steady_timer::time_point::max()) {}
        asio::steady_timer done;  // cancelled once `result` is set: wakes every waiter
        std::optional<Result<ServiceAccountToken>> result;
    };

    struct Cached {
        ServiceAccountToken token;
        int64_t refresh_at_ms = 0;
    };

    State(asio::any_io_executor executor, std::shared_ptr<KubeRequests> api, ServiceAccountTokensOptions options)
        : strand(asio::make_strand(executor)), api(std::move(api)), options(std::move(options)) {}

    int64_t now_ms() const {
        if (options.now_ms)
            return options.now_ms();
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    // A cached token still within its reuse time. Requires mu.
    std::optional<ServiceAccountToken> fresh_locked(const std::string& key) {
        auto it = cached.find(key);
        if (it == cached.end() || now_ms() >= it->second.refresh_at_ms)
            return std::nullopt;
        ++hits;
        return it->second.token;
    }

    // On the strand: the cached token, or the result of the TokenRequest in flight for the pod, starting one
    // when there is none. Returns nullopt only when the strand's io_context stopped first.
    static asio::awaitable<std::optional<Result<ServiceAccountToken>>> join(std::shared_ptr<State> s, std::string key,
                                                                            PodInfo pod,
                                                                            std::chrono::seconds lifetime) {
        std::shared_ptr<Flight> flight;
        bool start = false;
        {
            std::lock_guard lock(s->mu);
            if (auto token = s->fresh_locked(key))  // fetched while this caller came over to the strand
                co_return Result<ServiceAccountToken>(std::move(*token));
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
            asio::co_spawn(s->strand, fetch(s, key, std::move(pod), lifetime, flight), asio::detached);
        if (!flight->result) {
            boost::system::error_code ignored;  // cancelled by fetch(), or the io_context ends
            co_await flight->done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        }
        co_return flight->result;
    }

    // On the strand: one TokenRequest; its token is cached unless forget_pod() came first.
    static asio::awaitable<void> fetch(std::shared_ptr<State> s, std::string key, PodInfo pod,
                                       std::chrono::seconds lifetime, std::shared_ptr<Flight> flight) {
        const int64_t started_ms = s->now_ms();
        ++s->requests;
        std::optional<Result<ServiceAccountToken>> outcome;
        try {
            const std::string target =
                "/api/v1/namespaces/" + pod.ns + "/serviceaccounts/" + pod.service_account + "/token";
            outcome = token_from_answer(
                pod, co_await s->api->create(target, token_request_body(pod, s->options.audience, lifetime)));
        } catch (const std::exception& e) {  // waiters must always be woken
            outcome = make_error("no token for pod " + pod.ns + "/" + pod.name + ": " + e.what());
        }
        {
            std::lock_guard lock(s->mu);
            auto it = s->flights.find(key);
            const bool current = it != s->flights.end() && it->second == flight;
            if (current)
                s->flights.erase(it);
            if (*outcome && current) {
                const int64_t now = s->now_ms();
                std::erase_if(s->cached,
                              [&](const auto& entry) { return entry.second.token.expires_on * 1000 <= now; });
                const int64_t expires_ms = (*outcome)->expires_on * 1000;
                const int64_t refresh_at =
                    started_ms +
                    static_cast<int64_t>(static_cast<double>(std::max<int64_t>(expires_ms - started_ms, 0)) *
                                         kTokenReuseFraction);
                s->cached[key] = Cached{**outcome, refresh_at};
            }
        }
        if (!*outcome)
            ++s->failures;
        flight->result = std::move(outcome);
        flight->done.cancel();
    }

    Strand strand;
    std::shared_ptr<KubeRequests> api;
    const ServiceAccountTokensOptions options;

    mutable std::mutex mu;                                   // guards the maps
    std::map<std::string, Cached> cached;                    // by pod uid (lower case)
    std::map<std::string, std::shared_ptr<Flight>> flights;  // by pod uid (lower case)

    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> hits{0};
    std::atomic<uint64_t> shared{0};
    std::atomic<uint64_t> failures{0};
};

ServiceAccountTokens::ServiceAccountTokens(asio::any_io_executor executor, std::shared_ptr<KubeRequests> api,
                                           ServiceAccountTokensOptions options)
    : state_(std::make_shared<State>(std::move(executor), std::move(api), std::move(options))) {}

ServiceAccountTokens::~ServiceAccountTokens() = default;

asio::awaitable<Result<ServiceAccountToken>> ServiceAccountTokens::token_for(const PodInfo& pod,
                                                                             std::chrono::seconds lifetime) {
    std::shared_ptr<State> s = state_;
    if (pod.uid.empty() || pod.name.empty() || !token_path_name_ok(pod.ns) || !token_path_name_ok(pod.service_account))
        co_return make_error("no token for pod " + pod.ns + "/" + pod.name +
                                 ": a TokenRequest needs the pod's namespace, name, uid and service account",
                             EINVAL);
    const std::string key = lower_uid(pod.uid);
    {
        std::lock_guard lock(s->mu);
        if (auto token = s->fresh_locked(key))
            co_return std::move(*token);
    }
    auto outcome = co_await asio::co_spawn(s->strand, State::join(s, key, pod, std::max(lifetime, kMinTokenLifetime)),
                                           asio::use_awaitable);
    if (!outcome)
        co_return make_error("no token for pod " + pod.ns + "/" + pod.name + ": the agent is stopping", ECANCELED);
    co_return std::move(*outcome);
}

void ServiceAccountTokens::forget_pod(std::string_view uid) {
    const std::string key = lower_uid(uid);
    std::lock_guard lock(state_->mu);
    state_->cached.erase(key);
    state_->flights.erase(key);
}

ServiceAccountTokenStats ServiceAccountTokens::stats() const {
    ServiceAccountTokenStats out;
    out.requests = state_->requests.load();
    out.cache_hits = state_->hits.load();
    out.shared = state_->shared.load();
    out.failures = state_->failures.load();
    std::lock_guard lock(state_->mu);
    out.cached = state_->cached.size();
    return out;
}

}  // namespace podid::kube
