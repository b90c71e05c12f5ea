// The cgroup2 mount from mountinfo and the process's own cgroup from /proc/<pid>/cgroup (common/cgroupfs.h).
#include "common/cgroupfs.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace podid {
namespace {

using test::TempDir;

// ---- mountinfo ----

const char* kHybrid =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

struct MountRow {
    const char* name;
    std::string text;
    bool ok;
    std::string mount_or_error;  // expected mount, or a fragment of the error
};

TEST(Cgroupfs, ParseMountinfo) {
    const std::vector<MountRow> table = {
        {"hybrid", kHybrid, true, "/sys/fs/cgroup/unified"},
        {"unified_with_optional_fields",
         "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 master:1 - cgroup2 cgroup2 "
         "rw,nsdelegate,memory_recursiveprot\n",
         true, "/sys/fs/cgroup"},
        {"escaped_space", "50 1 0:40 / /mnt/my\\040cgroup\\134x rw - cgroup2 none rw\n", true, "/mnt/my cgroup\\x"},
        {"prefers_hierarchy_root",
         "60 1 0:40 /kubepods.slice /host/kp rw - cgroup2 cgroup2 rw\n"
         "61 1 0:40 / /host/cgroup rw - cgroup2 cgroup2 rw\n",
         true, "/host/cgroup"},
        {"namespace_root_only", "70 1 0:40 /.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", true, "/sys/fs/cgroup"},
        {"no_trailing_newline", "41 31 0:38 / /cg rw - cgroup2 cgroup2 rw", true, "/cg"},
        {"v1_only", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup2 rw,cpu\n", false, "no cgroup2 mount"},
        {"empty", "", false, "no cgroup2 mount"},
        {"malformed_lines", "garbage\n- cgroup2\n1 2 3 4 - cgroup2\n\n", false, "no cgroup2 mount"},
    };
    for (const auto& row : table) {
        SCOPED_TRACE(row.name);
        auto mount = parse_cgroup2_mount(row.text);
        ASSERT_EQ(mount.ok(), row.ok) << (mount.ok() ? *mount : mount.error().message);
        if (mount.ok()) {
            EXPECT_EQ(*mount, row.mount_or_error);
        } else {
            EXPECT_NE(mount.error().message.find(row.mount_or_error), std::string::npos) << mount.error().message;
        }
    }
}

TEST(Cgroupfs, FindMountFromFile) {
    TempDir dir("podid-cgroupfs");
    auto file = dir.path / "mountinfo";
    std::ofstream(file) << kHybrid;
    auto mount = find_cgroup2_mount(file.string());
    ASSERT_TRUE(mount.ok()) << mount.error().message;
    EXPECT_EQ(*mount, "/sys/fs/cgroup/unified");

    auto missing = find_cgroup2_mount((dir.path / "nope").string());
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ENOENT);
}

TEST(Cgroupfs, OwnCgroup) {
    struct Row {
        const char* name;
        std::string text;
        std::string expected;
    };
    const std::vector<Row> table = {
        {"hybrid", "9:name=systemd:/\n4:memory:/x\n0::/system.slice/podid.service\n", "/system.slice/podid.service"},
        {"unified", "0::/\n", "/"},
        {"v1_only", "4:memory:/x\n1:cpu:/\n", ""},
        {"no_newline", "0::/kubepods.slice/a", "/kubepods.slice/a"},
        {"empty", "", ""},
    };
    for (const auto& row : table) {
        SCOPED_TRACE(row.name);
        EXPECT_EQ(parse_own_cgroup(row.text), row.expected);
    }
    // The real file: this process lives in some cgroup2 group on these machines.
    EXPECT_EQ(own_cgroup_path().substr(0, 1), "/");
    EXPECT_EQ(own_cgroup_path("/nonexistent/cgroup"), "");
}

}  // namespace
}  // namespace podid
