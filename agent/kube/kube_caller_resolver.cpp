#include "kube/kube_caller_resolver.h"

#include <algorithm>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "caller/local_caller_resolver.h"

namespace podid {

namespace asio = boost::asio;

asio::awaitable<Caller> KubeCallerResolver::resolve(std::optional<Origin> origin, bool may_wait) {
    Caller caller = resolve_local(paths_, kubepods_root_, std::move(origin));
    if (!caller.pod_ref)
        co_return caller;
    auto deadline = std::chrono::steady_clock::now() + pod_wait_;
    // Right after start the pod list may be in while the CRD lists are not: a binding decided on a
    // half-synced view would wrongly say "Identity not found". Only until the first lists complete.
    if (may_wait && !state_.synced()) {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        while (!state_.synced() && std::chrono::steady_clock::now() < deadline) {
            timer.expires_after(std::chrono::milliseconds(20));
            co_await timer.async_wait(asio::use_awaitable);
        }
    }
    caller.pod = state_.pod_by_uid(caller.pod_ref->uid);
    // Rounded up: truncating to milliseconds would end the wait up to 1 ms before --pod-wait.
    if (!caller.pod && may_wait)
        caller.pod = co_await state_.wait_for_pod(
            caller.pod_ref->uid,
            std::chrono::ceil<std::chrono::milliseconds>(
                std::max(deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero())));
    co_return caller;
}

asio::awaitable<Caller> KubeCallerResolver::refresh(Caller cached, bool may_wait) {
    if (!cached.pod_ref)
        co_return cached;
    cached.pod = state_.pod_by_uid(cached.pod_ref->uid);
    if (!cached.pod && may_wait)
        cached.pod = co_await state_.wait_for_pod(cached.pod_ref->uid, pod_wait_);
    co_return cached;
}

}  // namespace podid
