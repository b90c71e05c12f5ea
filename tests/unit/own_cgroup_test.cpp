// Which cgroups the programs leave alone (caller/own_cgroup.h): the --exempt-cgroup ids and the agent's own cgroup
// from /proc/self/cgroup. CgroupPathResolver::id_of only stat()s below its mount, so plain directories in a temp
// tree stand in for the cgroup2 mount (no privileges). own_cgroup_id_from_redirect needs the BPF datapath: e2e only.
#include "caller/own_cgroup.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/cgroupfs.h"
#include "temp_dir.h"

namespace podid {
namespace {

namespace fs = std::filesystem;

uint64_t inode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return static_cast<uint64_t>(st.st_ino);
}

TEST(ExemptCgroupIds, IdsInOrderOrTheFirstMissingPath) {
    test::TempDir mount("podid-owncg");
    for (const char* d : {"system.slice/podid.service", "system.slice/other.service", "user.slice"})
        fs::create_directories(mount.path / d);
    std::ofstream(mount.path / "system.slice" / "cgroup.procs") << "1\n";  // a file is not a cgroup
    auto paths = CgroupPathResolver::open(mount.path.string());
    ASSERT_TRUE(paths.ok()) << paths.error().message;

    struct Row {
        const char* name;
        std::vector<std::string> cgroups;
        std::vector<std::string> want_dirs;  // relative to the mount, in the order given; empty on error
        std::string want_missing;            // the path the error names; "" when all exist
    };
    const std::vector<Row> rows = {
        {"none", {}, {}, ""},
        {"one", {"/system.slice/podid.service"}, {"system.slice/podid.service"}, ""},
        {"in the order given",
         {"/user.slice", "/system.slice/podid.service"},
         {"user.slice", "system.slice/podid.service"},
         ""},
        {"the mount itself", {"/"}, {"."}, ""},
        {"trailing slash", {"/user.slice/"}, {"user.slice"}, ""},
        {"missing", {"/user.slice", "/kubepods.slice"}, {}, "/kubepods.slice"},
        {"the first missing one is named", {"/nope-1", "/nope-2"}, {}, "/nope-1"},
        {"a file is not a cgroup", {"/system.slice/cgroup.procs"}, {}, "/system.slice/cgroup.procs"},
        {"never above the mount", {"/user.slice/../../etc"}, {}, "/user.slice/../../etc"},
        {"not even back into it", {"/user.slice/../user.slice"}, {}, "/user.slice/../user.slice"},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        auto got = exempt_cgroup_ids(row.cgroups, **paths);
        if (!row.want_missing.empty()) {
            ASSERT_FALSE(got.ok());
            EXPECT_EQ(got.error().code, ENOENT);
            EXPECT_EQ(got.error().message,
                      "--exempt-cgroup: " + row.want_missing + " does not exist under " + mount.path.string());
            continue;
        }
        ASSERT_TRUE(got.ok()) << got.error().message;
        std::vector<uint64_t> want;
        for (const auto& d : row.want_dirs)
            want.push_back(inode_of(mount.path / d));
        EXPECT_EQ(*got, want);
    }
}

// The agent's own cgroup, from the real /proc/self/cgroup, resolved under a mount laid out to contain it. Which branch
// runs depends on where the test runs: at a cgroup namespace root ("0::/", as in most containers) the answer is 0,
// never the mount's own id; elsewhere it is the id of the mirrored directory.
TEST(OwnCgroupIdFromProc, ResolvedUnderTheMount) {
    const std::string own = own_cgroup_path();
    test::TempDir mount("podid-owncg");
    if (!own.empty() && own != "/")
        fs::create_directories(mount.path / own.substr(1));
    auto paths = CgroupPathResolver::open(mount.path.string());
    ASSERT_TRUE(paths.ok()) << paths.error().message;
    ASSERT_NE((*paths)->id_of("/"), 0u);  // the mount has an id: 0 below means "the namespace root", not "missing"

    const uint64_t want = own.empty() || own == "/" ? 0 : inode_of(mount.path / own.substr(1));
    EXPECT_EQ(own_cgroup_id_from_proc(**paths), want) << "own cgroup " << (own.empty() ? "(none)" : own);
}

// A mount that does not hold the agent's cgroup: 0 (not exempt by id) whatever /proc/self/cgroup says.
TEST(OwnCgroupIdFromProc, ZeroWhenTheMountDoesNotHoldIt) {
    test::TempDir mount("podid-owncg");
    fs::create_directories(mount.path / "unrelated.slice");
    auto paths = CgroupPathResolver::open(mount.path.string());
    ASSERT_TRUE(paths.ok()) << paths.error().message;
    const std::string own = own_cgroup_path();
    ASSERT_NE(own, "/unrelated.slice") << "this process runs in a cgroup named like the test's decoy";
    EXPECT_EQ(own_cgroup_id_from_proc(**paths), 0u) << "own cgroup " << own;
}

}  // namespace
}  // namespace podid
