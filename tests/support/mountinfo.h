// /proc/self/mountinfo, parsed: where cgroup2 is mounted and what this test node mounted under its workdir.
#pragma once

#include <string>
#include <vector>

namespace podid::test {

struct MountEntry {
    std::string root;         // path inside the filesystem that is mounted ("/" for a whole cgroup2)
    std::string mount_point;  // unescaped (mountinfo writes a space as \040)
    std::string fs_type;
};

std::vector<MountEntry> read_mountinfo();

// Mount points equal to `dir` or below it, deepest first (the order to unmount them in).
std::vector<std::string> mounts_under(const std::string& dir);

}  // namespace podid::test
