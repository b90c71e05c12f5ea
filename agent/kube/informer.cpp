#include "kube/informer.h"

#include <cerrno>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.h"
#include "kube/client.h"

namespace podid::kube {

namespace asio = boost::asio;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

int status_code(const json& status) {
    auto it = status.find("code");
    return it != status.end() && it->is_number_integer() ? it->get<int>() : 0;
}

std::string string_field(const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string resource_version_of(const json& object) {
    auto meta = object.find("metadata");
    if (meta == object.end() || !meta->is_object())
        return {};
    auto rv = meta->find("resourceVersion");
    return rv != meta->end() && rv->is_string() ? rv->get<std::string>() : std::string();
}

}  // namespace

InformerBase::InformerBase(std::shared_ptr<KubeApi> api, Resource resource, InformerOptions options)
    : api_(std::move(api)),
      resource_(std::move(resource)),
      options_(options),
      backoff_(options.backoff_initial),
      rng_(std::random_device{}()) {}

void InformerBase::start(asio::strand<asio::any_io_executor> strand) {
    strand_.emplace(strand);
    timer_.emplace(strand);
    asio::co_spawn(
        strand, [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->run(); }, asio::detached);
}

void InformerBase::stop() {
    stopped_ = true;
    if (strand_)
        asio::post(*strand_, [self = shared_from_this()] { self->timer_->cancel(); });
}

void InformerBase::nudge(std::string why) {
    if (stopped_ || !strand_)
        return;
    asio::post(*strand_, [self = shared_from_this(), why = std::move(why)] { self->nudge_on_strand(why); });
}

void InformerBase::nudge_on_strand(const std::string& why) {
    const auto now = std::chrono::steady_clock::now();
    if (stopped_)
        return;
    if (last_nudge_) {
        // Fruitless nudges (no event since the last one) are spaced out; one that brought events resets it.
        const bool fruitless = events_.load() == events_at_last_nudge_;
        const auto required = fruitless ? std::min(std::max(nudge_interval_ * 2, options_.min_nudge_interval),
                                                   options_.max_nudge_interval)
                                        : options_.min_nudge_interval;
        if (now - *last_nudge_ < required)
            return;
        nudge_interval_ = required;
    } else {
        nudge_interval_ = options_.min_nudge_interval;
    }
    last_nudge_ = now;
    events_at_last_nudge_ = events_.load();
    ++nudges_;
    if (watching_) {
        log_info("kube: " + resource_.name + " informer reconnecting its watch", kv("why", why));
        nudged_ = true;
        watching_->cancel();
    } else {
        // Between watches: in a backoff sleep (or a list or watch call in flight, which the cancel leaves alone).
        log_info("kube: " + resource_.name + " informer retrying now", kv("why", why));
        timer_->cancel();
    }
}

InformerStats InformerBase::stats() const {
    return InformerStats{lists_.load(),  relists_.load(), watches_.load(), events_.load(),
                         errors_.load(), synced_.load(),  nudges_.load()};
}

std::string InformerBase::list_target(const std::string& continue_token) const {
    std::string target = resource_.path + "?limit=" + std::to_string(options_.page_size);
    if (!resource_.field_selector.empty())
        target += "&fieldSelector=" + percent_encode(resource_.field_selector);
    if (!continue_token.empty())
        target += "&continue=" + percent_encode(continue_token);
    return target;
}

std::string InformerBase::watch_target(const std::string& resource_version) {
    const auto base = options_.watch_timeout.count();
    const auto timeout = base + static_cast<long>(rng_() % static_cast<uint64_t>(base > 0 ? base : 1));
    std::string target = resource_.path +
                         "?watch=1&allowWatchBookmarks=true&resourceVersion=" + percent_encode(resource_version) +
                         "&timeoutSeconds=" + std::to_string(timeout);
    if (!resource_.field_selector.empty())
        target += "&fieldSelector=" + percent_encode(resource_.field_selector);
    return target;
}

milliseconds InformerBase::next_backoff() {
    // Half fixed, half random: informers of many nodes that lost the API server together do not return
    // in lockstep.
    const milliseconds current = std::min(backoff_, options_.backoff_max);
    const auto half = current.count() / 2;
    const milliseconds delay(half + static_cast<long>(rng_() % static_cast<uint64_t>(half + 1)));
    backoff_ = std::min(current * 2, options_.backoff_max);
    return delay;
}

asio::awaitable<void> InformerBase::sleep(milliseconds delay) {
    if (stopped_)
        co_return;
    timer_->expires_after(delay);
    boost::system::error_code ignored;  // cancelled by stop()
    co_await timer_->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

namespace {

std::string seconds_text(std::chrono::steady_clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
}

}  // namespace

void InformerBase::note_error(const ApiError& error) {
    ++errors_;
    ++failures_since_connected_;
    const auto now = std::chrono::steady_clock::now();
    if (!disconnected_since_)
        disconnected_since_ = now;
    // One line per distinct failure, and a reminder while the same failure goes on, not one per retry: a long
    // outage must not flood the log, but whoever looks at the last minutes of it must see it is still going on.
    if (error.error.message == last_logged_error_ && now - last_warning_ < options_.repeat_warning)
        return;
    last_logged_error_ = error.error.message;
    last_warning_ = now;
    std::string impact = resource_.name == "pods"
                             ? "pods created or changed on this node since are unknown to podid until it reconnects: "
                               "their token requests fail; known pods keep being served"
                             : "changes since are not seen until it reconnects; what is known stays in use";
    log_warn("kube: " + resource_.name + " informer cannot reach the API server, retrying",
             kv("error", error.error.message) + kv("disconnected_for", seconds_text(now - *disconnected_since_)) +
                 kv("failures", std::to_string(failures_since_connected_)) + kv("impact", impact) +
                 kv("check", "the API server's address and health, this node's route to it, its credentials"));
}

void InformerBase::note_healthy() {
    backoff_ = options_.backoff_initial;
    note_connected();
}

void InformerBase::note_connected() {
    if (!last_logged_error_.empty()) {
        const auto away = disconnected_since_ ? std::chrono::steady_clock::now() - *disconnected_since_
                                              : std::chrono::steady_clock::duration{};
        log_info(
            "kube: " + resource_.name + " informer recovered",
            kv("disconnected_for", seconds_text(away)) + kv("failures", std::to_string(failures_since_connected_)));
        last_logged_error_.clear();
    }
    disconnected_since_.reset();
    failures_since_connected_ = 0;
}

asio::awaitable<ApiResult<std::string>> InformerBase::list_all() {
    begin_list();
    std::string continue_token;
    std::string resource_version;
    do {
        auto page = co_await api_->list(list_target(continue_token));
        if (stopped_ || !page) {
            abort_list();
            if (!page)
                co_return page.error();
            co_return ApiError{0, "", make_error("informer stopped", ECANCELED)};
        }
        for (const json& item : page->items)
            list_item(item);
        continue_token = std::move(page->continue_token);
        resource_version = std::move(page->resource_version);
    } while (!continue_token.empty());
    end_list();
    ++lists_;
    co_return resource_version;
}

asio::awaitable<void> InformerBase::run() {
    std::string resource_version;
    bool need_list = true;
    while (!stopped_) {
        if (need_list) {
            auto listed = co_await list_all();
            if (stopped_)
                break;
            if (!listed && resource_.optional && listed.error().http_status == 404) {
                if (!synced_)
                    log_info("kube: " + resource_.name + " not served by the API server; treated as empty");
                begin_list();
                end_list();
                synced_ = true;
                co_await sleep(options_.backoff_max);
                continue;
            }
            if (!listed) {
                note_error(listed.error());
                co_await sleep(next_backoff());
                continue;
            }
            resource_version = std::move(*listed);
            need_list = false;
            synced_ = true;
            note_healthy();
        }

        ++watches_;
        const auto target = watch_target(resource_version);
        const auto started = std::chrono::steady_clock::now();
        // The server ends the watch at timeoutSeconds; the idle limit only catches a silent dead peer.
        const auto idle = milliseconds(std::chrono::seconds(2 * options_.watch_timeout + std::chrono::seconds(30)));
        auto stream = co_await api_->watch(target, idle);
        if (stopped_)
            break;
        if (!stream) {
            if (stream.error().gone()) {
                ++relists_;
                need_list = true;
            } else {
                note_error(stream.error());
                co_await sleep(next_backoff());
            }
            continue;
        }
        note_connected();

        uint64_t applied = 0;
        bool failed = false;
        bool nudged = false;
        nudged_ = false;
        watching_ = stream->get();
        while (!stopped_) {
            auto event = co_await (*stream)->next();
            if (stopped_)
                break;
            if (!event) {
                if (std::exchange(nudged_, false)) {
                    nudged = true;  // dropped on purpose: watch again from resource_version at once
                    break;
                }
                note_error(event.error());
                failed = true;
                break;
            }
            if (!*event)  // clean end at timeoutSeconds
                break;
            WatchEvent& e = **event;
            if (e.type == WatchEvent::Type::error) {
                if (status_code(e.object) == 410) {
                    ++relists_;
                    need_list = true;
                } else {
                    note_error(ApiError{static_cast<unsigned>(status_code(e.object)), string_field(e.object, "reason"),
                                        make_error("kube: " + resource_.name +
                                                   " watch: error event: " + string_field(e.object, "message"))});
                    failed = true;
                }
                break;
            }
            std::string seen = resource_version_of(e.object);
            if (e.type != WatchEvent::Type::bookmark) {
                apply(e.type, e.object);
                ++events_;
                ++applied;
            }
            if (!seen.empty())
                resource_version = std::move(seen);
        }
        watching_ = nullptr;
        stream->reset();
        if (stopped_)
            break;
        if (nudged)
            continue;
        // A watch that worked for a while starts the backoff over, even when it ended in an error.
        const bool healthy = applied > 0 || std::chrono::steady_clock::now() - started >= options_.min_healthy_watch;
        if (healthy)
            backoff_ = options_.backoff_initial;
        if (failed || !healthy)
            co_await sleep(next_backoff());
    }
}

}  // namespace podid::kube
