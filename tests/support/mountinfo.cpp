#include "mountinfo.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "test_node.h"

namespace podid::test {
namespace {

// mountinfo escapes space, tab, newline and backslash as three octal digits.
std::string unescape(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        bool octal = s[i] == '\\' && i + 3 < s.size();
        for (size_t k = 1; octal && k <= 3; ++k)
            octal = s[i + k] >= '0' && s[i + k] <= '7';
        if (octal) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

std::vector<MountEntry> read_mountinfo() {
    std::vector<MountEntry> out;
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
        std::istringstream fields(line);
        std::string id, parent, dev, root, mount_point, word;
        if (!(fields >> id >> parent >> dev >> root >> mount_point))
            continue;
        std::string fs_type;
        while (fields >> word) {
            if (word == "-") {
                fields >> fs_type;
                break;
            }
        }
        out.push_back(MountEntry{unescape(root), unescape(mount_point), fs_type});
    }
    return out;
}

std::vector<std::string> mounts_under(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& m : read_mountinfo()) {
        const auto& p = m.mount_point;
        if (p == dir || (p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/'))
            out.push_back(p);
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.size() != b.size() ? a.size() > b.size() : a < b; });
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::string find_cgroup2_mount() {
    for (const auto& m : read_mountinfo())
        if (m.fs_type == "cgroup2" && m.root == "/")
            return m.mount_point;
    return "";
}

}  // namespace podid::test
