#include "common/cgroupfs.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace podid {
namespace {

Result<std::string> read_small_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        int err = errno;
        return make_error("cannot read " + path + ": " + std::strerror(err), err);
    }
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// mountinfo escapes space, tab, newline and backslash as \ooo octal (fs/proc_namespace.c, mangle()).
std::string unescape_octal(std::string_view field) {
    std::string out;
    out.reserve(field.size());
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            auto is_oct = [](char c) { return c >= '0' && c <= '7'; };
            if (is_oct(field[i + 1]) && is_oct(field[i + 2]) && is_oct(field[i + 3])) {
                out.push_back(static_cast<char>(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) |
                                                (field[i + 3] - '0')));
                i += 3;
                continue;
            }
        }
        out.push_back(field[i]);
    }
    return out;
}

std::vector<std::string_view> split_fields(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ')
            ++i;
        std::size_t start = i;
        while (i < line.size() && line[i] != ' ')
            ++i;
        if (i > start)
            fields.push_back(line.substr(start, i - start));
    }
    return fields;
}

}  // namespace

Result<std::string> parse_cgroup2_mount(std::string_view text) {
    std::string first;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        // id parent major:minor root mountpoint options [optional fields...] - fstype source superoptions
        auto fields = split_fields(line);
        std::size_t sep = 0;
        while (sep < fields.size() && fields[sep] != "-")
            ++sep;
        if (sep < 5 || sep + 1 >= fields.size())
            continue;
        if (fields[sep + 1] != "cgroup2")
            continue;
        std::string mount_point = unescape_octal(fields[4]);
        if (fields[3] == "/")
            return mount_point;
        if (first.empty())
            first = mount_point;
    }
    if (!first.empty())
        return first;
    return make_error("no cgroup2 mount found in mountinfo: this node needs cgroup v2 (unified or hybrid layout)",
                      ENOENT);
}

Result<std::string> find_cgroup2_mount(const std::string& mountinfo) {
    auto text = read_small_file(mountinfo);
    if (!text)
        return text.error();
    return parse_cgroup2_mount(*text);
}

std::string parse_own_cgroup(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.rfind("0::", 0) == 0)
            return std::string(line.substr(3));
    }
    return {};
}

std::string own_cgroup_path(const std::string& proc_cgroup) {
    auto text = read_small_file(proc_cgroup);
    if (!text)
        return {};
    return parse_own_cgroup(*text);
}

}  // namespace podid
