#include "kube/state.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <shared_mutex>
#include <tuple>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "kube/decode.h"

namespace podid::kube {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

// kubectl apply stores the whole object again in this annotation; nothing podid reads is in it.
constexpr const char* kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

std::string lower_copy(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

template <class T>
std::optional<T> without_last_applied(T object) {
    object.meta.annotations.erase(kLastApplied);
    return object;
}

}  // namespace

std::optional<Pod> keep_pod(const json& object, const std::string& node_name) {
    Pod pod = decode_pod(object);
    // The field selector already filters; a pod without a UID could never be matched to a cgroup.
    if (pod.meta.uid.empty() || (!node_name.empty() && pod.node_name != node_name))
        return std::nullopt;
    pod.meta.annotations.clear();
    pod.meta.uid = lower_copy(pod.meta.uid);
    return pod;
}

std::optional<ServiceAccount> keep_service_account(const json& object) {
    ServiceAccount sa = decode_service_account(object);
    sa.meta.labels.clear();
    std::erase_if(sa.meta.annotations,
                  [](const auto& entry) { return entry.first.rfind(kWorkloadIdentityPrefix, 0) != 0; });
    if (sa.meta.annotations.empty())
        return std::nullopt;
    return sa;
}

struct KubeState::Impl {
    using Strand = asio::strand<asio::any_io_executor>;

    std::string node_name;
    std::shared_ptr<KubeApi> api;
    std::optional<Strand> strand;
    std::function<void(const PodInfo&)> pod_deleted_hook;

    std::shared_ptr<Informer<Pod>> pods;
    std::shared_ptr<Informer<AzureIdentity>> identities;
    std::shared_ptr<Informer<AzureIdentityBinding>> bindings;
    std::shared_ptr<Informer<AzurePodIdentityException>> exceptions;
    std::shared_ptr<Informer<ServiceAccount>> service_accounts;
    std::vector<std::shared_ptr<InformerBase>> all;

    mutable std::shared_mutex pods_mu;
    std::unordered_map<std::string, Pod> by_uid;
    std::unordered_map<std::string, std::string> uid_by_name;  // "ns/name" -> uid

    mutable std::mutex snapshot_mu;
    SnapshotPtr published = std::make_shared<const Snapshot>();

    // On the strand only: the timers of wait_for_pod calls, by UID.
    std::unordered_map<std::string, std::vector<asio::steady_timer*>> waiters;
    bool stopped = false;  // on the strand

    std::optional<PodInfo> lookup(const std::string& uid) const {
        std::shared_lock lock(pods_mu);
        auto it = by_uid.find(uid);
        if (it == by_uid.end())
            return std::nullopt;
        return it->second.info();
    }

    void index(const Pod& pod) {
        std::unique_lock lock(pods_mu);
        by_uid.insert_or_assign(pod.meta.uid, pod);
        uid_by_name.insert_or_assign(pod.meta.ns + "/" + pod.meta.name, pod.meta.uid);
    }

    void unindex(const Pod& pod) {
        {
            std::unique_lock lock(pods_mu);
            by_uid.erase(pod.meta.uid);
            auto it = uid_by_name.find(pod.meta.ns + "/" + pod.meta.name);
            if (it != uid_by_name.end() && it->second == pod.meta.uid)
                uid_by_name.erase(it);
        }
        if (pod_deleted_hook)
            pod_deleted_hook(pod.info());
    }

    void wake(const std::string& uid) {
        auto it = waiters.find(uid);
        if (it == waiters.end())
            return;
        for (auto* timer : it->second)
            timer->cancel();  // each waiter removes itself when it resumes
    }

    void pod_added(const Pod& pod) {
        index(pod);
        wake(pod.meta.uid);
    }

    void pod_updated(const Pod& before, const Pod& now) {
        // Same namespace/name, another UID: the pod was deleted and recreated while the watch was away.
        if (before.meta.uid != now.meta.uid)
            unindex(before);
        pod_added(now);
    }

    void rebuild_snapshot() {
        auto next = std::make_shared<Snapshot>();
        if (identities)
            for (const auto& [key, identity] : identities->items())
                next->identities[identity.meta.ns].push_back(identity);
        if (bindings)
            for (const auto& [key, binding] : bindings->items())
                next->bindings[binding.meta.ns].push_back(binding);
        if (exceptions)
            for (const auto& [key, exception] : exceptions->items())
                next->exceptions[exception.meta.ns].push_back(exception);
        if (service_accounts)
            for (const auto& [key, sa] : service_accounts->items())
                next->service_accounts[sa.meta.ns].insert_or_assign(sa.meta.name, sa);
        std::lock_guard lock(snapshot_mu);
        published = std::move(next);
    }

    static asio::awaitable<std::optional<PodInfo>> wait_on_strand(std::shared_ptr<Impl> self, std::string uid,
                                                                  std::chrono::milliseconds max,
                                                                  std::chrono::milliseconds nudge_after) {
        if (auto found = self->lookup(uid))  // it may have arrived on the way to the strand
            co_return found;
        if (self->stopped)
            co_return std::nullopt;
        const auto deadline = std::chrono::steady_clock::now() + max;
        asio::steady_timer timer(*self->strand, std::min(max, nudge_after));
        self->waiters[uid].push_back(&timer);
        boost::system::error_code ignored;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (!self->stopped && !self->lookup(uid) && std::chrono::steady_clock::now() < deadline) {
            self->pods->nudge("pod " + uid + " made a request " + std::to_string(nudge_after.count()) +
                              " ms ago and its watch event has not come");
            timer.expires_at(deadline);
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        }
        auto it = self->waiters.find(uid);
        if (it != self->waiters.end()) {
            std::erase(it->second, &timer);
            if (it->second.empty())
                self->waiters.erase(it);
        }
        co_return self->lookup(uid);
    }
};

KubeState::KubeState(KubeStateOptions options) : options_(std::move(options)), impl_(std::make_shared<Impl>()) {}

KubeState::~KubeState() { stop(); }

void KubeState::on_pod_deleted(std::function<void(const PodInfo&)> hook) { impl_->pod_deleted_hook = std::move(hook); }

Result<void> KubeState::start(asio::io_context& io, const KubeConfig& config, std::string node_name) {
    auto client = Client::create(config, options_.client);
    if (!client)
        return client.error();
    start(io.get_executor(), std::move(*client), std::move(node_name));
    return {};
}

void KubeState::start(asio::any_io_executor executor, std::shared_ptr<KubeApi> api, std::string node_name) {
    Impl& impl = *impl_;
    impl.node_name = std::move(node_name);
    impl.api = std::move(api);
    impl.strand.emplace(asio::make_strand(executor));
    std::weak_ptr<Impl> weak = impl_;
    auto with = [weak](auto method) {
        return [weak, method](const auto&... args) {
            if (auto self = weak.lock())
                ((*self).*method)(args...);
        };
    };

    InformerHandlers<Pod> pod_handlers;
    pod_handlers.added = with(&Impl::pod_added);
    pod_handlers.updated = with(&Impl::pod_updated);
    pod_handlers.deleted = with(&Impl::unindex);
    const std::string node = impl.node_name;
    impl.pods = std::make_shared<Informer<Pod>>(
        impl.api, Resource{"pods", "/api/v1/pods", "spec.nodeName=" + node, false}, options_.informer,
        [node](const json& object) { return keep_pod(object, node); }, std::move(pod_handlers));
    impl.all.push_back(impl.pods);

    auto republish = with(&Impl::rebuild_snapshot);
    if (options_.aad_pod_identity) {
        const std::string group = "/apis/aadpodidentity.k8s.io/v1/";
        impl.identities = std::make_shared<Informer<AzureIdentity>>(
            impl.api, Resource{"azureidentities", group + "azureidentities", "", true}, options_.informer,
            [](const json& o) { return without_last_applied(decode_azure_identity(o)); },
            InformerHandlers<AzureIdentity>{{}, {}, {}, republish});
        impl.bindings = std::make_shared<Informer<AzureIdentityBinding>>(
            impl.api, Resource{"azureidentitybindings", group + "azureidentitybindings", "", true}, options_.informer,
            [](const json& o) { return without_last_applied(decode_azure_identity_binding(o)); },
            InformerHandlers<AzureIdentityBinding>{{}, {}, {}, republish});
        impl.exceptions = std::make_shared<Informer<AzurePodIdentityException>>(
            impl.api, Resource{"azurepodidentityexceptions", group + "azurepodidentityexceptions", "", true},
            options_.informer,
            [](const json& o) { return without_last_applied(decode_azure_pod_identity_exception(o)); },
            InformerHandlers<AzurePodIdentityException>{{}, {}, {}, republish});
        impl.all.insert(impl.all.end(), {impl.identities, impl.bindings, impl.exceptions});
    }
    if (options_.service_accounts) {
        impl.service_accounts = std::make_shared<Informer<ServiceAccount>>(
            impl.api, Resource{"serviceaccounts", "/api/v1/serviceaccounts", "", false}, options_.informer,
            keep_service_account, InformerHandlers<ServiceAccount>{{}, {}, {}, republish});
        impl.all.push_back(impl.service_accounts);
    }
    for (auto& informer : impl.all)
        informer->start(*impl.strand);
}

void KubeState::stop() {
    Impl& impl = *impl_;
    if (!impl.strand)
        return;
    for (auto& informer : impl.all)
        informer->stop();
    if (impl.api)
        impl.api->shutdown();
    asio::post(*impl.strand, [self = impl_] {
        self->stopped = true;
        for (auto& [uid, timers] : self->waiters)
            for (auto* timer : timers)
                timer->cancel();
    });
}

std::optional<PodInfo> KubeState::pod_by_uid(std::string_view uid) const { return impl_->lookup(lower_copy(uid)); }

std::optional<PodInfo> KubeState::pod_by_name(std::string_view ns, std::string_view name) const {
    std::shared_lock lock(impl_->pods_mu);
    auto it = impl_->uid_by_name.find(std::string(ns) + "/" + std::string(name));
    if (it == impl_->uid_by_name.end())
        return std::nullopt;
    auto pod = impl_->by_uid.find(it->second);
    if (pod == impl_->by_uid.end())
        return std::nullopt;
    return pod->second.info();
}

std::optional<Pod> KubeState::pod(std::string_view uid) const {
    std::shared_lock lock(impl_->pods_mu);
    auto it = impl_->by_uid.find(lower_copy(uid));
    if (it == impl_->by_uid.end())
        return std::nullopt;
    return it->second;
}

std::size_t KubeState::pods_count() const {
    std::shared_lock lock(impl_->pods_mu);
    return impl_->by_uid.size();
}

std::vector<PodInfo> KubeState::pods() const {
    std::vector<PodInfo> out;
    {
        std::shared_lock lock(impl_->pods_mu);
        out.reserve(impl_->by_uid.size());
        for (const auto& [uid, pod] : impl_->by_uid)
            out.push_back(pod.info());
    }
    std::sort(out.begin(), out.end(),
              [](const PodInfo& a, const PodInfo& b) { return std::tie(a.ns, a.name) < std::tie(b.ns, b.name); });
    return out;
}

SnapshotPtr KubeState::snapshot() const {
    std::lock_guard lock(impl_->snapshot_mu);
    return impl_->published;
}

bool KubeState::synced() const {
    if (impl_->all.empty())
        return false;
    return std::all_of(impl_->all.begin(), impl_->all.end(), [](const auto& i) { return i->synced(); });
}

asio::awaitable<std::optional<PodInfo>> KubeState::wait_for_pod(std::string uid, std::chrono::milliseconds max) {
    uid = lower_copy(uid);
    if (auto found = impl_->lookup(uid))
        co_return found;
    if (!impl_->strand)
        co_return std::nullopt;
    // The waiter list and its timers live on the informers' strand, so a pod event and a waiter's
    // registration never interleave; the caller resumes on its own executor.
    co_return co_await asio::co_spawn(
        *impl_->strand, Impl::wait_on_strand(impl_, std::move(uid), max, options_.nudge_after), asio::use_awaitable);
}

std::vector<std::pair<std::string, InformerStats>> KubeState::informer_stats() const {
    std::vector<std::pair<std::string, InformerStats>> out;
    for (const auto& informer : impl_->all)
        out.emplace_back(informer->resource().name, informer->stats());
    return out;
}

}  // namespace podid::kube
