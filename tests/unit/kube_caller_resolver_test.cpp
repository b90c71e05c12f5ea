// Kubernetes mode's caller stage (kube/kube_caller_resolver.h): origin -> cgroup path -> kubelet shape -> pod from
// the node's pod directory, waiting for a pod the watch has not delivered yet only when the request may wait; and
// refresh(), which re-reads only the pod. The cgroup2 mount is a temp directory tree (the resolver scans it, no
// privileges); the pod directory a KubeState fed by a scripted API server (fake_kube_api.h).
#include "kube/kube_caller_resolver.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "fake_kube_api.h"
#include "temp_dir.h"

namespace podid {
namespace {

using namespace podid::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kUidWeb = "11111111-2222-3333-4444-555555555555";
const std::string kUidLate = "22222222-2222-3333-4444-555555555555";
const std::string kUidNever = "33333333-2222-3333-4444-555555555555";
const std::string kCtrWeb(64, 'a');
const std::string kCtrLate(64, 'b');

std::string pod_cgroup(const std::string& uid) {
    std::string u = uid;
    std::replace(u.begin(), u.end(), '-', '_');
    return "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u + ".slice";
}
std::string container_cgroup(const std::string& uid, const std::string& ctr) {
    return pod_cgroup(uid) + "/cri-containerd-" + ctr + ".scope";
}

constexpr auto kPodWait = 500ms;  // generous: the rows that must not wait out --pod-wait run on busy CI machines

// A cgroup tree, the pod directory of node n1 (shop/web known from the start) and the resolver over both.
struct World {
    TempDir mount{"podid-kubecaller"};
    std::unique_ptr<CgroupPathResolver> paths;
    KubeStateFixture kube;
    std::unique_ptr<KubeCallerResolver> resolver;

    World() {
        for (const std::string& dir : {container_cgroup(kUidWeb, kCtrWeb), container_cgroup(kUidLate, kCtrLate),
                                       pod_cgroup(kUidNever), std::string("/system.slice/sshd.service"),
                                       "/elsewhere" + pod_cgroup(kUidWeb)})  // a look-alike outside the kubepods root
            fs::create_directories(mount.path / dir.substr(1));
        auto opened = CgroupPathResolver::open(mount.path.string(), 64, 0ms);
        if (!opened)
            throw std::runtime_error(opened.error().message);
        paths = std::move(*opened);
        paths->disable_file_handles();  // a temp directory is not kernfs: scan it
        kube.api->lists[kPodsPath] = {pod_object("shop", "web", kUidWeb, {{"app", "web"}})};
        resolver = std::make_unique<KubeCallerResolver>(*paths, "/kubepods.slice", kube.state, kPodWait);
    }

    std::optional<Origin> origin_of(const std::string& cgroup) {
        struct stat st {};
        if (::stat((mount.path.string() + cgroup).c_str(), &st) != 0)
            throw std::runtime_error("no test cgroup " + cgroup);
        return Origin{static_cast<uint64_t>(st.st_ino), 42, "app", "169.254.169.254:80", true};
    }
    // Adds a pod to node n1 through the open pod watch after `delay`.
    void arrive_later(std::string name, std::string uid, std::chrono::milliseconds delay) {
        auto timer = std::make_shared<boost::asio::steady_timer>(kube.io, delay);
        timer->async_wait([this, timer, name, uid](boost::system::error_code) {
            kube.api->push(kPodsPath, kube::WatchEvent::Type::added, pod_object("shop", name, uid));
        });
    }
};

TEST(KubeCallerResolver, Resolve) {
    World w;
    ASSERT_TRUE(w.kube.start_synced());
    enum class Conn { none, cgroup, removed };
    struct Row {
        const char* name;
        Conn conn;
        std::string cgroup;  // Conn::cgroup: the connecting process's cgroup
        bool may_wait;
        const char* arrives;  // a pod (kUidLate) the watch delivers 50 ms into the request, or nullptr
        // Expected:
        std::string path;
        std::string pod_uid;       // pod_ref's, "" for none
        std::string container_id;  // pod_ref's
        std::string pod;           // "ns/name", "" for none
        bool waited_out;           // took at least --pod-wait
    };
    const std::vector<Row> rows = {
        {"no origin record", Conn::none, "", true, nullptr, "", "", "", "", false},
        {"removed cgroup", Conn::removed, "", true, nullptr, "", "", "", "", false},
        {"node process", Conn::cgroup, "/system.slice/sshd.service", true, nullptr, "/system.slice/sshd.service", "",
         "", "", false},
        {"pod look-alike outside the kubepods root", Conn::cgroup, "/elsewhere" + pod_cgroup(kUidWeb), true, nullptr,
         "/elsewhere" + pod_cgroup(kUidWeb), "", "", "", false},
        {"known pod's container", Conn::cgroup, container_cgroup(kUidWeb, kCtrWeb), false, nullptr,
         container_cgroup(kUidWeb, kCtrWeb), kUidWeb, kCtrWeb, "shop/web", false},
        {"known pod's own cgroup", Conn::cgroup, pod_cgroup(kUidWeb), true, nullptr, pod_cgroup(kUidWeb), kUidWeb, "",
         "shop/web", false},
        {"unknown pod, no wait (a probe)", Conn::cgroup, pod_cgroup(kUidNever), false, nullptr, pod_cgroup(kUidNever),
         kUidNever, "", "", false},
        {"unknown pod, waits out --pod-wait", Conn::cgroup, pod_cgroup(kUidNever), true, nullptr, pod_cgroup(kUidNever),
         kUidNever, "", "", true},
        {"pod delivered while waiting", Conn::cgroup, container_cgroup(kUidLate, kCtrLate), true, "late",
         container_cgroup(kUidLate, kCtrLate), kUidLate, kCtrLate, "shop/late", false},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        std::optional<Origin> origin;
        if (row.conn == Conn::cgroup)
            origin = w.origin_of(row.cgroup);
        if (row.conn == Conn::removed)
            origin = Origin{~uint64_t{0} - 1, 42, "app", "169.254.169.254:80", true};
        if (row.arrives)
            w.arrive_later(row.arrives, kUidLate, 50ms);
        const auto start = std::chrono::steady_clock::now();
        auto got = w.kube.run(w.resolver->resolve(origin, row.may_wait));
        const auto took = std::chrono::steady_clock::now() - start;
        ASSERT_TRUE(got.has_value()) << "resolve did not finish";
        EXPECT_EQ(got->origin.has_value(), row.conn != Conn::none);
        if (origin && got->origin) {
            EXPECT_EQ(got->origin->cgroup_id, origin->cgroup_id);
        }
        EXPECT_EQ(got->cgroup_path, row.path);
        EXPECT_EQ(got->pod_ref ? got->pod_ref->uid : "", row.pod_uid);
        EXPECT_EQ(got->pod_ref ? got->pod_ref->container_id : "", row.container_id);
        EXPECT_EQ(got->pod ? got->pod->ns + "/" + got->pod->name : "", row.pod);
        if (row.waited_out) {
            EXPECT_GE(took, kPodWait);
        } else {
            EXPECT_LT(took, kPodWait);
        }
    }
}

// Right after start the pod list may be in while the binding lists are not: a request that may wait holds on until
// every list is in, one that may not answers from what is there.
TEST(KubeCallerResolver, WaitsForTheFirstSync) {
    struct Row {
        const char* name;
        bool may_wait;
        std::string want_pod;
    };
    const std::vector<Row> rows = {
        {"may wait: sees the pod once synced", true, "shop/web"},
        {"may not wait: nothing listed yet", false, ""},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        World w;
        w.kube.api->down = true;  // the API server is unreachable when the agent starts
        w.kube.start();
        ASSERT_FALSE(w.kube.state.synced());
        auto up = std::make_shared<boost::asio::steady_timer>(w.kube.io, 100ms);
        up->async_wait([&w, up](boost::system::error_code) { w.kube.api->down = false; });
        auto got = w.kube.run(w.resolver->resolve(w.origin_of(container_cgroup(kUidWeb, kCtrWeb)), row.may_wait));
        ASSERT_TRUE(got.has_value()) << "resolve did not finish";
        ASSERT_TRUE(got->pod_ref);
        EXPECT_EQ(got->pod ? got->pod->ns + "/" + got->pod->name : "", row.want_pod);
    }
}

// Later requests on a connection: the cgroup and its kubelet shape are kept as they are (never looked up again),
// only the pod is read again.
TEST(KubeCallerResolver, RefreshRereadsOnlyThePod) {
    World w;
    ASSERT_TRUE(w.kube.start_synced());
    const Origin origin{987654321, 42, "app", "169.254.169.254:80", true};  // no cgroup has this id
    auto cached = [&](std::optional<std::string> uid, std::optional<PodInfo> pod) {
        Caller c;
        c.origin = origin;
        c.cgroup_path = "/kept/as/is";  // not on the mount: re-resolving would lose it
        if (uid)
            c.pod_ref = PodRef{*uid, kCtrWeb, "containerd", "besteffort"};
        c.pod = std::move(pod);
        return c;
    };
    const PodInfo stale{"shop", "web", kUidWeb, "old-sa", "n1", false, {{"app", "old"}}};
    const PodInfo gone{"shop", "deleted", kUidNever, "default", "n1", false, {}};
    struct Row {
        const char* name;
        Caller cached;
        bool may_wait;
        std::string want_pod;
        std::string want_app_label;
        bool waited_out;
    };
    const std::vector<Row> rows = {
        {"not a pod: returned as is", cached(std::nullopt, std::nullopt), true, "", "", false},
        {"pod unknown at first, known now", cached(kUidWeb, std::nullopt), false, "shop/web", "web", false},
        {"stale pod replaced by the current one", cached(kUidWeb, stale), false, "shop/web", "web", false},
        {"pod gone: dropped, not kept stale", cached(kUidNever, gone), false, "", "", false},
        {"unknown pod, may wait: waits out --pod-wait", cached(kUidNever, std::nullopt), true, "", "", true},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        const auto start = std::chrono::steady_clock::now();
        auto got = w.kube.run(w.resolver->refresh(row.cached, row.may_wait));
        const auto took = std::chrono::steady_clock::now() - start;
        ASSERT_TRUE(got.has_value()) << "refresh did not finish";
        ASSERT_TRUE(got->origin);
        EXPECT_EQ(got->origin->cgroup_id, origin.cgroup_id);
        EXPECT_EQ(got->cgroup_path, "/kept/as/is");
        EXPECT_EQ(got->pod_ref.has_value(), row.cached.pod_ref.has_value());
        if (got->pod_ref) {
            EXPECT_EQ(got->pod_ref->uid, row.cached.pod_ref->uid);
            EXPECT_EQ(got->pod_ref->container_id, kCtrWeb);
        }
        EXPECT_EQ(got->pod ? got->pod->ns + "/" + got->pod->name : "", row.want_pod);
        if (got->pod) {
            EXPECT_EQ(got->pod->labels.at("app"), row.want_app_label);
        }
        if (row.waited_out) {
            EXPECT_GE(took, kPodWait);
        } else {
            EXPECT_LT(took, kPodWait);
        }
    }
}

}  // namespace
}  // namespace podid
