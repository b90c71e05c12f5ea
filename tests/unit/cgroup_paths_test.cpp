// Kubepods root detection and the id <-> path resolver on the real mount (the mount and own cgroup: cgroupfs_test.cpp).
#include "caller/cgroup_paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.h"

namespace podid {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// ---- kubepods root detection (plain directories stand in for the cgroup tree) ----

TEST(CgroupPaths, DetectKubepodsRoot) {
    struct Row {
        const char* name;
        std::vector<std::string> dirs;
        bool ok;
        std::string root_or_error;
    };
    const std::vector<Row> table = {
        {"systemd", {"system.slice/a.service", "kubepods.slice/kubepods-burstable.slice"}, true, "/kubepods.slice"},
        {"cgroupfs", {"kubepods/burstable", "kubepods/besteffort", "user.slice"}, true, "/kubepods"},
        {"test_prefix", {"podid-t123/kubepods.slice/kubepods-besteffort.slice"}, true, "/podid-t123/kubepods.slice"},
        {"kind_node",
         {"system.slice/docker-abc.scope/kubepods.slice/kubepods-pod1.slice"},
         true,
         "/system.slice/docker-abc.scope/kubepods.slice"},
        {"shallowest_wins", {"kubepods.slice/x/kubepods.slice", "a/kubepods"}, true, "/kubepods.slice"},
        {"namespace_root_systemd", {"kubepods-burstable.slice", "kubepods-besteffort.slice"}, true, "/"},
        {"namespace_root_cgroupfs", {"burstable", "besteffort", "podabc"}, true, "/"},
        {"none", {"system.slice/a.service", "user.slice"}, false, "no kubepods cgroup"},
        {"too_deep", {"a/b/c/kubepods.slice"}, false, "no kubepods cgroup"},
        {"ambiguous", {"kubepods.slice", "kubepods"}, false, "several kubepods cgroups"},
        {"a_file_is_not_a_cgroup", {}, false, "no kubepods cgroup"},
    };
    for (const auto& row : table) {
        SCOPED_TRACE(row.name);
        TempDir dir("podid-cgpaths");
        for (const auto& d : row.dirs)
            fs::create_directories(dir.path / d);
        if (row.dirs.empty())
            std::ofstream(dir.path / "kubepods.slice") << "x";
        auto root = detect_kubepods_root(dir.path.string() + "/");
        ASSERT_EQ(root.ok(), row.ok) << (root.ok() ? *root : root.error().message);
        if (root.ok()) {
            EXPECT_EQ(*root, row.root_or_error);
        } else {
            EXPECT_NE(root.error().message.find(row.root_or_error), std::string::npos) << root.error().message;
        }
    }
    auto missing = detect_kubepods_root("/nonexistent/cgroup2");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("not a directory"), std::string::npos);
}

// ---- the resolver on the real cgroup2 mount (needs root: creating cgroups and open_by_handle_at) ----

// A cgroup subtree made for one test, removed deepest first at scope exit.
class ScratchCgroups {
public:
    explicit ScratchCgroups(std::string mount) : mount_(std::move(mount)) {}
    ~ScratchCgroups() {
        for (auto it = made_.rbegin(); it != made_.rend(); ++it)
            ::rmdir((mount_ + *it).c_str());
    }
    // `rel` like "/podid-x/a"; parents must have been made first.
    bool make(const std::string& rel) {
        if (::mkdir((mount_ + rel).c_str(), 0755) != 0)
            return false;
        made_.push_back(rel);
        return true;
    }
    bool remove(const std::string& rel) {
        if (::rmdir((mount_ + rel).c_str()) != 0)
            return false;
        std::erase(made_, rel);
        return true;
    }

private:
    std::string mount_;
    std::vector<std::string> made_;
};

class ResolverOnRealMount : public ::testing::TestWithParam<bool> {};

TEST_P(ResolverOnRealMount, RoundTripAndRemoval) {
    const bool use_handles = GetParam();
    ASSERT_EQ(::geteuid(), 0u) << "this test creates cgroups on the real cgroup2 mount and needs root "
                                  "(CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH); run it as root";
    auto mount = find_cgroup2_mount();
    ASSERT_TRUE(mount.ok()) << mount.error().message;
    // Tiny cache: exercise eviction too. Re-validated on every use, so a removal shows at once.
    auto opened = CgroupPathResolver::open(*mount, 2, std::chrono::milliseconds(0));
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto& resolver = **opened;
    if (!use_handles)
        resolver.disable_file_handles();

    const std::string base = "/podid-cgpaths-" + std::to_string(::getpid()) + (use_handles ? "-h" : "-s");
    ScratchCgroups cg(*mount);
    ASSERT_TRUE(cg.make(base)) << "mkdir " << *mount << base << ": " << std::strerror(errno);
    ASSERT_TRUE(cg.make(base + "/a b"));  // a space must survive /proc/self/fd readlink
    ASSERT_TRUE(cg.make(base + "/a b/leaf"));
    ASSERT_TRUE(cg.make(base + "/other"));

    EXPECT_EQ(resolver.id_of("/"), 1u);  // the root cgroup's id
    auto root = resolver.path_of(1);
    ASSERT_TRUE(root.ok()) << root.error().message;
    EXPECT_EQ(*root, "/");

    const std::vector<std::string> paths = {base, base + "/a b", base + "/a b/leaf", base + "/other"};
    std::vector<uint64_t> ids;
    for (const auto& p : paths) {
        uint64_t id = resolver.id_of(p);
        ASSERT_NE(id, 0u) << p;
        ids.push_back(id);
    }
    for (int pass = 0; pass < 2; ++pass) {  // second pass: from the cache (or after eviction)
        for (std::size_t i = 0; i < paths.size(); ++i) {
            auto p = resolver.path_of(ids[i]);
            ASSERT_TRUE(p.ok()) << paths[i] << ": " << p.error().message;
            EXPECT_EQ(*p, paths[i]);
        }
    }
    EXPECT_EQ(resolver.uses_file_handles(), use_handles);
    EXPECT_EQ(resolver.id_of(base + "/../" + base), 0u);
    EXPECT_EQ(resolver.id_of(base + "/missing"), 0u);

    // Removed: the cached path must not come back, even when a new cgroup reuses the name.
    const uint64_t leaf_id = ids[2];
    ASSERT_TRUE(resolver.path_of(leaf_id).ok());
    ASSERT_TRUE(cg.remove(base + "/a b/leaf"));
    auto gone = resolver.path_of(leaf_id);
    ASSERT_FALSE(gone.ok()) << "stale path " << *gone;
    EXPECT_EQ(gone.error().code, ENOENT);
    ASSERT_TRUE(cg.make(base + "/a b/leaf"));
    const uint64_t new_leaf = resolver.id_of(base + "/a b/leaf");
    ASSERT_NE(new_leaf, leaf_id);
    EXPECT_FALSE(resolver.path_of(leaf_id).ok());
    auto again = resolver.path_of(new_leaf);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(*again, base + "/a b/leaf");

    EXPECT_FALSE(resolver.path_of(0).ok());
    EXPECT_FALSE(resolver.path_of(~uint64_t{0}).ok());
}

TEST_P(ResolverOnRealMount, ConcurrentLookups) {
    const bool use_handles = GetParam();
    ASSERT_EQ(::geteuid(), 0u) << "this test creates cgroups on the real cgroup2 mount and needs root";
    auto mount = find_cgroup2_mount();
    ASSERT_TRUE(mount.ok()) << mount.error().message;
    auto opened = CgroupPathResolver::open(*mount, 8);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto& resolver = **opened;
    if (!use_handles)
        resolver.disable_file_handles();

    const std::string base = "/podid-cgpaths-mt-" + std::to_string(::getpid()) + (use_handles ? "-h" : "-s");
    ScratchCgroups cg(*mount);
    ASSERT_TRUE(cg.make(base));
    std::vector<std::string> paths;
    std::vector<uint64_t> ids;
    for (int i = 0; i < 32; ++i) {
        paths.push_back(base + "/c" + std::to_string(i));
        ASSERT_TRUE(cg.make(paths.back()));
        ids.push_back(resolver.id_of(paths.back()));
    }
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int n = 0; n < 500; ++n) {
                std::size_t i = static_cast<std::size_t>((n * 7 + t * 13) % 32);
                auto p = resolver.path_of(ids[i]);
                if (!p.ok() || *p != paths[i])
                    ++wrong;
            }
        });
    }
    for (auto& th : threads)
        th.join();
    EXPECT_EQ(wrong.load(), 0);
}

// With a re-validation window, a cached path is served without touching cgroupfs until the window ends; then a
// removed cgroup is noticed.
TEST_P(ResolverOnRealMount, CachedPathIsRevalidatedAfterTheWindow) {
    const bool use_handles = GetParam();
    ASSERT_EQ(::geteuid(), 0u) << "this test creates cgroups on the real cgroup2 mount and needs root";
    auto mount = find_cgroup2_mount();
    ASSERT_TRUE(mount.ok()) << mount.error().message;
    const std::string base = "/podid-cgpaths-win-" + std::to_string(::getpid()) + (use_handles ? "-h" : "-s");
    ScratchCgroups cg(*mount);
    ASSERT_TRUE(cg.make(base));
    ASSERT_TRUE(cg.make(base + "/long"));
    ASSERT_TRUE(cg.make(base + "/short"));
    auto long_window = CgroupPathResolver::open(*mount, 8, std::chrono::hours(1));
    auto short_window = CgroupPathResolver::open(*mount, 8, std::chrono::milliseconds(50));
    ASSERT_TRUE(long_window.ok() && short_window.ok());
    if (!use_handles) {
        (*long_window)->disable_file_handles();
        (*short_window)->disable_file_handles();
    }
    const uint64_t long_id = (*long_window)->id_of(base + "/long");
    const uint64_t short_id = (*short_window)->id_of(base + "/short");
    ASSERT_TRUE((*long_window)->path_of(long_id).ok());
    ASSERT_TRUE((*short_window)->path_of(short_id).ok());
    ASSERT_TRUE(cg.remove(base + "/long"));
    ASSERT_TRUE(cg.remove(base + "/short"));

    auto cached = (*long_window)->path_of(long_id);  // inside its window: from the cache, no stat()
    ASSERT_TRUE(cached.ok()) << cached.error().message;
    EXPECT_EQ(*cached, base + "/long");
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    auto gone = (*short_window)->path_of(short_id);  // past its window: checked again, and gone
    ASSERT_FALSE(gone.ok()) << "stale path " << *gone;
    EXPECT_EQ(gone.error().code, ENOENT);
}

INSTANTIATE_TEST_SUITE_P(Modes, ResolverOnRealMount, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "FileHandles" : "TreeScan"; });

}  // namespace
}  // namespace podid
