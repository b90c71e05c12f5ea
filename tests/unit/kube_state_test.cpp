// KubeState over a scripted in-memory API: pod indexes, the binding snapshot and its memory rules,
// wait_for_pod woken by the watch (and timing out, and reconnecting a pod watch that does not report a pod
// asking), deletion hooks, and serving known pods while the API server is unreachable.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "kube/state.h"

namespace podid::kube {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using nlohmann::json;

// The events of one open watch; the test pushes, the informer's next() waits.
struct Channel {
    explicit Channel(asio::any_io_executor executor) : signal(executor) {}
    std::deque<WatchEvent> events;
    asio::steady_timer signal;
    bool broken = false;
    void push(WatchEvent event) {
        events.push_back(std::move(event));
        signal.cancel();
    }
    void brk() {
        broken = true;
        signal.cancel();
    }
};

class FakeStream final : public WatchStream {
public:
    explicit FakeStream(std::shared_ptr<Channel> channel) : channel_(std::move(channel)) {}
    asio::awaitable<ApiResult<std::optional<WatchEvent>>> next() override {
        while (channel_->events.empty() && !channel_->broken) {
            channel_->signal.expires_at(asio::steady_timer::time_point::max());
            boost::system::error_code ignored;
            co_await channel_->signal.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        }
        if (channel_->events.empty())
            co_return ApiError{0, "", make_error("connection reset", ECONNRESET)};
        WatchEvent event = std::move(channel_->events.front());
        channel_->events.pop_front();
        co_return std::optional<WatchEvent>(std::move(event));
    }
    void cancel() override { channel_->brk(); }

private:
    std::shared_ptr<Channel> channel_;
};

// Lists are whole (one page) per collection path; watches are channels per path (the latest one).
class FakeApi final : public KubeApi {
public:
    explicit FakeApi(asio::any_io_executor executor) : executor_(std::move(executor)) {}

    std::map<std::string, std::vector<json>> lists;
    bool down = false;
    int list_calls = 0;
    // Events the next watch of a path starts with; a watch already open never sees them (a silent watch).
    std::map<std::string, std::vector<WatchEvent>> replay;

    asio::awaitable<ApiResult<ListPage>> list(std::string target) override {
        ++list_calls;
        const std::string path = target.substr(0, target.find('?'));
        if (stopped_ || down)
            co_return ApiError{0, "", make_error("connection refused", ECONNREFUSED)};
        auto it = lists.find(path);
        if (it == lists.end())
            co_return ApiError{404, "NotFound", make_error("HTTP 404")};
        ListPage page;
        page.resource_version = std::to_string(++version_);
        page.items = it->second;
        co_return page;
    }

    asio::awaitable<ApiResult<std::unique_ptr<WatchStream>>> watch(std::string target,
                                                                   std::chrono::milliseconds) override {
        const std::string path = target.substr(0, target.find('?'));
        if (stopped_ || down)
            co_return ApiError{0, "", make_error("connection refused", ECONNREFUSED)};
        auto channel = std::make_shared<Channel>(executor_);
        channels_[path] = channel;
        // What the server kept for a watch resuming from an older resourceVersion.
        for (auto& event : std::exchange(replay[path], {}))
            channel->push(std::move(event));
        co_return std::unique_ptr<WatchStream>(new FakeStream(channel));
    }

    void shutdown() override {
        stopped_ = true;
        for (auto& [path, channel] : channels_)
            channel->brk();
    }

    bool watching(const std::string& path) const { return channels_.count(path) > 0; }
    void push(const std::string& path, WatchEvent::Type type, json object) {
        channels_.at(path)->push(WatchEvent{type, std::move(object)});
    }
    void break_all() {
        for (auto& [path, channel] : channels_)
            channel->brk();
        channels_.clear();
    }

private:
    asio::any_io_executor executor_;
    std::map<std::string, std::shared_ptr<Channel>> channels_;
    bool stopped_ = false;
    int version_ = 100;
};

const std::string kPods = "/api/v1/pods";
const std::string kIdentities = "/apis/aadpodidentity.k8s.io/v1/azureidentities";
const std::string kBindings = "/apis/aadpodidentity.k8s.io/v1/azureidentitybindings";
const std::string kExceptions = "/apis/aadpodidentity.k8s.io/v1/azurepodidentityexceptions";
const std::string kServiceAccounts = "/api/v1/serviceaccounts";

json pod(const std::string& ns, const std::string& name, const std::string& uid, const std::string& node = "n1",
         const std::string& rv = "1") {
    return json{{"metadata",
                 {{"namespace", ns},
                  {"name", name},
                  {"uid", uid},
                  {"resourceVersion", rv},
                  {"labels", {{"aadpodidbinding", name}}},
                  {"annotations", {{"big", std::string(1000, 'x')}}}}},
                {"spec", {{"nodeName", node}, {"serviceAccountName", "sa-" + name}, {"hostNetwork", name == "host"}}}};
}

json named(const std::string& ns, const std::string& name, json spec = json::object(),
           json annotations = json::object()) {
    return json{
        {"metadata", {{"namespace", ns}, {"name", name}, {"resourceVersion", "1"}, {"annotations", annotations}}},
        {"spec", spec}};
}

template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        io.run_for(2ms);
        if (io.stopped())
            io.restart();
    }
    return true;
}

KubeStateOptions fast() {
    KubeStateOptions options;
    options.informer.backoff_initial = 10ms;
    options.informer.backoff_max = 50ms;
    options.informer.min_healthy_watch = 0ms;
    return options;
}

struct Fixture {
    asio::io_context io;
    std::shared_ptr<FakeApi> api = std::make_shared<FakeApi>(io.get_executor());
    KubeState state;
    std::vector<std::string> deleted;

    explicit Fixture(KubeStateOptions options = fast()) : state(options) {
        api->lists[kPods] = {pod("shop", "web", "UID-WEB"), pod("shop", "host", "uid-host"),
                             pod("other", "elsewhere", "uid-elsewhere", "n2")};
        api->lists[kIdentities] = {named("shop", "web-id", {{"type", 0}, {"clientID", "c1"}, {"resourceID", "/r1"}},
                                         {{"kubectl.kubernetes.io/last-applied-configuration", "{...}"},
                                          {"aadpodidentity.k8s.io/Behavior", "namespaced"}})};
        api->lists[kBindings] = {named("shop", "web-binding", {{"azureIdentity", "web-id"}, {"selector", "web"}})};
        api->lists[kExceptions] = {};
        api->lists[kServiceAccounts] = {
            named("shop", "sa-web", {}, {{"azure.workload.identity/client-id", "wi-1"}, {"unrelated", "x"}}),
            named("shop", "default")};
        state.on_pod_deleted([this](const PodInfo& p) { deleted.push_back(p.ns + "/" + p.name); });
    }
    void start_synced() {
        state.start(io.get_executor(), api, "n1");
        ASSERT_TRUE(run_until(io, [&] { return state.synced() && api->watching(kPods); }));
    }
    ~Fixture() {
        state.stop();
        io.restart();
        io.run_for(5s);  // returns as soon as the informers and waiters have ended
    }

    // Runs wait_for_pod as the HTTP layer would, from a coroutine on the io_context.
    std::shared_ptr<std::optional<std::optional<PodInfo>>> wait(const std::string& uid, std::chrono::milliseconds max) {
        auto out = std::make_shared<std::optional<std::optional<PodInfo>>>();
        asio::co_spawn(io, state.wait_for_pod(uid, max), [out](std::exception_ptr e, std::optional<PodInfo> pod) {
            if (e)
                std::rethrow_exception(e);
            out->emplace(std::move(pod));
        });
        return out;
    }
};

TEST(KubeState, IndexesThisNodesPods) {
    Fixture f;
    EXPECT_FALSE(f.state.synced());
    f.start_synced();
    EXPECT_EQ(f.state.pods_count(), 2u);  // the pod of node n2 is not kept
    auto web = f.state.pod_by_uid("uid-web");
    ASSERT_TRUE(web);
    EXPECT_EQ(web->ns, "shop");
    EXPECT_EQ(web->name, "web");
    EXPECT_EQ(web->uid, "uid-web");
    EXPECT_EQ(web->service_account, "sa-web");
    EXPECT_EQ(web->node_name, "n1");
    EXPECT_FALSE(web->host_network);
    EXPECT_EQ(web->labels.at("aadpodidbinding"), "web");
    EXPECT_TRUE(f.state.pod_by_uid("UID-WEB"));  // case-insensitive
    auto host = f.state.pod_by_name("shop", "host");
    ASSERT_TRUE(host);
    EXPECT_TRUE(host->host_network);
    EXPECT_FALSE(f.state.pod_by_name("other", "elsewhere"));
    EXPECT_FALSE(f.state.pod_by_uid("uid-elsewhere"));
    auto object = f.state.pod("uid-web");
    ASSERT_TRUE(object);
    EXPECT_TRUE(object->meta.annotations.empty());  // not kept: memory
}

TEST(KubeState, SnapshotHoldsBindingObjectsAndIsRepublishedWhole) {
    Fixture f;
    f.start_synced();
    const SnapshotPtr first = f.state.snapshot();
    ASSERT_EQ(first->identities.at("shop").size(), 1u);
    const AzureIdentity& id = first->identities.at("shop")[0];
    EXPECT_EQ(id.client_id, "c1");
    EXPECT_EQ(id.meta.annotations.count("kubectl.kubernetes.io/last-applied-configuration"), 0u);
    EXPECT_EQ(id.meta.annotations.at("aadpodidentity.k8s.io/Behavior"), "namespaced");
    EXPECT_EQ(first->bindings.at("shop")[0].selector, "web");
    EXPECT_TRUE(first->exceptions.empty());
    ASSERT_EQ(first->service_accounts.at("shop").size(), 1u);  // "default" has no workload identity annotation
    const ServiceAccount& sa = first->service_accounts.at("shop").at("sa-web");
    EXPECT_EQ(sa.meta.annotations, (std::map<std::string, std::string>{{"azure.workload.identity/client-id", "wi-1"}}));

    f.api->push(kBindings, WatchEvent::Type::added,
                named("team", "b2", {{"azureIdentity", "team-id"}, {"selector", "team"}}));
    ASSERT_TRUE(run_until(f.io, [&] { return f.state.snapshot() != first; }));
    const SnapshotPtr second = f.state.snapshot();
    EXPECT_EQ(second->bindings.at("team")[0].azure_identity, "team-id");
    EXPECT_EQ(second->bindings.at("shop").size(), 1u);
    EXPECT_EQ(first->bindings.count("team"), 0u);  // a published snapshot never changes

    // A service account losing its annotation leaves the snapshot.
    f.api->push(kServiceAccounts, WatchEvent::Type::modified, named("shop", "sa-web", {}, {{"unrelated", "y"}}));
    ASSERT_TRUE(run_until(f.io, [&] { return f.state.snapshot()->service_accounts.empty(); }));
}

TEST(KubeState, WaitForPodWakesOnAdded) {
    Fixture f;
    f.start_synced();
    const auto start = std::chrono::steady_clock::now();
    auto result = f.wait("uid-new", 10s);
    run_until(
        f.io, [] { return false; }, 50ms);
    EXPECT_FALSE(result->has_value());  // still waiting: the pod is unknown

    f.api->push(kPods, WatchEvent::Type::added, pod("shop", "new", "uid-new"));
    ASSERT_TRUE(run_until(
        f.io, [&] { return result->has_value(); }, 2s));
    ASSERT_TRUE(**result);
    EXPECT_EQ((**result)->name, "new");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(KubeState, WaitForPodTimesOut) {
    Fixture f;
    f.start_synced();
    const auto start = std::chrono::steady_clock::now();
    auto other = f.wait("uid-never", 150ms);
    // An unrelated pod's arrival wakes nobody else.
    f.api->push(kPods, WatchEvent::Type::added, pod("shop", "unrelated", "uid-unrelated"));
    ASSERT_TRUE(run_until(
        f.io, [&] { return other->has_value(); }, 3s));
    EXPECT_FALSE(**other);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
}

TEST(KubeState, WaitForKnownPodReturnsAtOnce) {
    Fixture f;
    f.start_synced();
    auto result = f.wait("UID-WEB", 10s);
    ASSERT_TRUE(run_until(
        f.io, [&] { return result->has_value(); }, 1s));
    ASSERT_TRUE(**result);
    EXPECT_EQ((**result)->name, "web");
}

TEST(KubeState, StopWakesWaiters) {
    Fixture f;
    f.start_synced();
    auto result = f.wait("uid-never", 60s);
    run_until(
        f.io, [] { return false; }, 20ms);
    f.state.stop();
    ASSERT_TRUE(run_until(
        f.io, [&] { return result->has_value(); }, 2s));
    EXPECT_FALSE(**result);
}

TEST(KubeState, DeletedPodsLeaveTheIndexAndCallTheHook) {
    Fixture f;
    f.start_synced();
    f.api->push(kPods, WatchEvent::Type::deleted, pod("shop", "web", "uid-web"));
    ASSERT_TRUE(run_until(f.io, [&] { return f.state.pods_count() == 1; }));
    EXPECT_FALSE(f.state.pod_by_uid("uid-web"));
    EXPECT_FALSE(f.state.pod_by_name("shop", "web"));
    EXPECT_EQ(f.deleted, (std::vector<std::string>{"shop/web"}));
}

TEST(KubeState, RelistSeesAPodRecreatedUnderTheSameName) {
    Fixture f;
    f.start_synced();
    f.api->lists[kPods] = {pod("shop", "web", "uid-web-2", "n1", "9"), pod("shop", "host", "uid-host")};
    f.api->push(kPods, WatchEvent::Type::error, json{{"kind", "Status"}, {"code", 410}, {"reason", "Expired"}});
    ASSERT_TRUE(run_until(f.io, [&] { return f.state.pod_by_uid("uid-web-2").has_value(); }));
    EXPECT_FALSE(f.state.pod_by_uid("uid-web"));
    EXPECT_EQ(f.state.pod_by_name("shop", "web")->uid, "uid-web-2");
    EXPECT_EQ(f.deleted, (std::vector<std::string>{"shop/web"}));
    EXPECT_EQ(f.state.pods_count(), 2u);
}

TEST(KubeState, KeepsServingKnownPodsWhileTheApiIsDown) {
    Fixture f;
    f.start_synced();
    f.api->down = true;
    f.api->break_all();
    auto errors = [&] {
        uint64_t total = 0;
        for (auto& [name, stats] : f.state.informer_stats())
            total += stats.errors;
        return total;
    };
    ASSERT_TRUE(run_until(f.io, [&] { return errors() >= 10; }));
    EXPECT_TRUE(f.state.pod_by_uid("uid-web"));
    EXPECT_EQ(f.state.pods_count(), 2u);
    EXPECT_EQ(f.state.snapshot()->bindings.at("shop").size(), 1u);
    EXPECT_TRUE(f.deleted.empty());

    f.api->down = false;  // back: watches resume
    ASSERT_TRUE(run_until(f.io, [&] { return f.api->watching(kPods); }));
    f.api->push(kPods, WatchEvent::Type::added, pod("shop", "later", "uid-later"));
    ASSERT_TRUE(run_until(f.io, [&] { return f.state.pod_by_uid("uid-later").has_value(); }));
}

InformerStats pod_informer(const KubeState& state) {
    for (auto& [name, stats] : state.informer_stats())
        if (name == "pods")
            return stats;
    return {};
}

// A pod the watch never reports, while the server has it: the watch went silent, or the informer is in a
// long backoff that outlasted the outage. A request from that pod makes the pod watch reconnect.
struct NudgeCase {
    const char* name;
    bool outage;  // the watch broke and the informer is sleeping a long backoff (else: the watch is silent)
};

class KubeStateNudge : public testing::TestWithParam<NudgeCase> {};

TEST_P(KubeStateNudge, AnUnknownPodsRequestReconnectsThePodWatch) {
    KubeStateOptions options = fast();
    options.nudge_after = 50ms;
    if (GetParam().outage) {
        options.informer.backoff_initial = 30s;
        options.informer.backoff_max = 30s;
    }
    Fixture f(options);
    f.start_synced();
    const InformerStats before = pod_informer(f.state);
    if (GetParam().outage) {
        f.api->down = true;
        f.api->break_all();
        ASSERT_TRUE(run_until(f.io, [&] { return pod_informer(f.state).errors > before.errors; }));
        f.api->down = false;  // back, but the informer sleeps 15-30 s before it looks
    }
    f.api->replay[kPods].push_back(WatchEvent{WatchEvent::Type::added, pod("shop", "late", "uid-late")});

    const auto start = std::chrono::steady_clock::now();
    auto result = f.wait("uid-late", 5s);
    ASSERT_TRUE(run_until(
        f.io, [&] { return result->has_value(); }, 4s));
    ASSERT_TRUE(**result) << "the waiter timed out";
    EXPECT_EQ((**result)->name, "late");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    const InformerStats after = pod_informer(f.state);
    EXPECT_EQ(after.nudges, before.nudges + 1);
    EXPECT_EQ(after.watches, before.watches + 1);
    // Dropping a silent watch on purpose is no failure.
    EXPECT_EQ(after.errors, before.errors + (GetParam().outage ? 1 : 0));
}

INSTANTIATE_TEST_SUITE_P(Cases, KubeStateNudge,
                         testing::Values(NudgeCase{"SilentWatch", false}, NudgeCase{"LongBackoff", true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(KubeState, NudgesAreRateLimitedAndNeverBeforeNudgeAfter) {
    KubeStateOptions options = fast();
    options.nudge_after = 100ms;
    options.informer.min_nudge_interval = 10s;
    Fixture f(options);
    f.start_synced();
    // Answered by the watch within nudge_after: no reconnection.
    auto quick = f.wait("uid-quick", 5s);
    run_until(
        f.io, [] { return false; }, 20ms);
    f.api->push(kPods, WatchEvent::Type::added, pod("shop", "quick", "uid-quick"));
    ASSERT_TRUE(run_until(f.io, [&] { return quick->has_value(); }));
    ASSERT_TRUE(**quick);
    EXPECT_EQ(pod_informer(f.state).nudges, 0u);

    // Many pods the server never tells about: one reconnection per min_nudge_interval, whatever their number.
    std::vector<std::shared_ptr<std::optional<std::optional<PodInfo>>>> never;
    for (int i = 0; i < 5; ++i)
        never.push_back(f.wait("uid-never-" + std::to_string(i), 300ms));
    ASSERT_TRUE(run_until(
        f.io, [&] { return std::all_of(never.begin(), never.end(), [](const auto& r) { return r->has_value(); }); }));
    for (const auto& r : never)
        EXPECT_FALSE(**r);
    EXPECT_EQ(pod_informer(f.state).nudges, 1u);
}

// A caller whose pod the API server never had (a cgroup with no pod object) keeps asking: each nudge finds nothing,
// so they are spaced out (min, 2 x min, 4 x min, ... up to max_nudge_interval) instead of one re-watch per interval.
TEST(KubeState, FruitlessNudgesBackOffAndAnEventResetsThem) {
    KubeStateOptions options = fast();
    options.nudge_after = 1ms;
    options.informer.min_nudge_interval = 200ms;
    options.informer.max_nudge_interval = 800ms;
    Fixture f(options);
    f.start_synced();
    // One request every 5 ms for 3.2 s from a pod that never appears.
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::chrono::steady_clock::duration> nudged_at;
    uint64_t seen = pod_informer(f.state).nudges;
    while (std::chrono::steady_clock::now() - start < 3200ms) {
        f.wait("uid-ghost", 2ms);
        run_until(
            f.io, [] { return false; }, 5ms);
        if (uint64_t n = pod_informer(f.state).nudges; n != seen) {
            seen = n;
            nudged_at.push_back(std::chrono::steady_clock::now() - start);
        }
    }
    // Intervals 200, 400, 800, 800, ... ms: at most 6 nudges in 3.2 s (one per 200 ms interval would make 16).
    // Slow runs (sanitizers, load) only stretch the intervals, so the bounds hold there too.
    ASSERT_GE(nudged_at.size(), 3u);
    EXPECT_LE(nudged_at.size(), 6u);
    for (size_t i = 2; i < nudged_at.size(); ++i)
        EXPECT_GE(nudged_at[i] - nudged_at[i - 1], 380ms) << "nudge " << i;

    // An event after a nudge shows the watch was worth reconnecting: the spacing starts over (200 ms, then 400 ms
    // for the next fruitless one, where it would have stayed at 800 ms).
    f.api->push(kPods, WatchEvent::Type::added, pod("shop", "other", "uid-other"));
    ASSERT_TRUE(run_until(f.io, [&] { return f.state.pod_by_uid("uid-other").has_value(); }));
    run_until(
        f.io, [] { return false; }, 820ms);  // past the longest spacing since the last nudge
    const uint64_t before = pod_informer(f.state).nudges;
    // A request nudges only if its 1 ms nudge timer fires before the request's own deadline. 2 ms left a loaded
    // machine (CI builds beside the tests) no room, and the lone request below then nudged nothing; 100 ms does.
    constexpr auto kPatient = 100ms;
    f.wait("uid-ghost", kPatient);
    ASSERT_TRUE(run_until(
        f.io, [&] { return pod_informer(f.state).nudges == before + 1; }, 1s));
    const auto reset_at = std::chrono::steady_clock::now();
    while (pod_informer(f.state).nudges == before + 1 && std::chrono::steady_clock::now() - reset_at < 1600ms) {
        f.wait("uid-ghost", kPatient);
        run_until(
            f.io, [] { return false; }, 5ms);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - reset_at, 700ms) << "the next nudge waited for the backed-off spacing";
}

TEST(KubeState, MissingCrdsStillSync) {
    Fixture f;
    f.api->lists.erase(kIdentities);
    f.api->lists.erase(kBindings);
    f.api->lists.erase(kExceptions);
    f.start_synced();
    EXPECT_TRUE(f.state.snapshot()->identities.empty());
    EXPECT_EQ(f.state.informer_stats().size(), 5u);
}

TEST(KubeState, StartFailsOnUnusableTlsMaterial) {
    asio::io_context io;
    KubeState state;
    KubeConfig config;
    config.host = "127.0.0.1";
    config.ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
    auto started = state.start(io, config, "n1");
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().message.find("CA does not load"), std::string::npos) << started.error().message;
}

}  // namespace
}  // namespace podid::kube
