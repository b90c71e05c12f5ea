#include "policy/cgroup_glob.h"

namespace podid {
namespace {

// Validates one pattern segment; "" when fine, else the reason.
std::string check_glob_segment(std::string_view seg) {
    if (seg.empty())
        return "empty path segment (\"//\")";
    if (seg == "." || seg == "..")
        return "\".\" and \"..\" segments are not allowed";
    if (seg != "**" && seg.find("**") != std::string_view::npos)
        return "\"**\" must be a whole path segment (use \"*\" within a segment)";
    for (std::size_t i = 0; i < seg.size(); ++i) {
        if (seg[i] == '\\') {
            if (++i >= seg.size())
                return "pattern ends with a lone backslash";
        } else if (seg[i] == '[') {
            std::size_t j = i + 1;
            if (j < seg.size() && (seg[j] == '!' || seg[j] == '^'))
                ++j;
            if (j < seg.size() && seg[j] == ']')
                ++j;  // a leading ']' is a literal member
            while (j < seg.size() && seg[j] != ']')
                ++j;
            if (j >= seg.size())
                return "unclosed '[' in pattern";
            i = j;
        }
    }
    return {};
}

// At a validated '[' in `pat`: whether `c` is in the class; `next` receives the index after the closing ']'.
bool glob_class_contains(std::string_view pat, std::size_t open, char c, std::size_t& next) {
    std::size_t j = open + 1;
    bool negate = false;
    if (j < pat.size() && (pat[j] == '!' || pat[j] == '^')) {
        negate = true;
        ++j;
    }
    bool found = false;
    bool first = true;
    while (j < pat.size() && (pat[j] != ']' || first)) {
        first = false;
        char lo = pat[j];
        if (j + 2 < pat.size() && pat[j + 1] == '-' && pat[j + 2] != ']') {
            char hi = pat[j + 2];
            found = found || (c >= lo && c <= hi);
            j += 3;
        } else {
            found = found || c == lo;
            ++j;
        }
    }
    next = j + 1;
    return found != negate;
}

// One segment against one path segment. Backtracks only to the last '*' (linear in practice, O(n*m) worst case).
bool glob_segment_matches(std::string_view pat, std::string_view text) {
    std::size_t p = 0, t = 0;
    std::size_t star_p = std::string_view::npos, star_t = 0;
    while (t < text.size()) {
        if (p < pat.size()) {
            char c = pat[p];
            if (c == '*') {
                star_p = ++p;
                star_t = t;
                continue;
            }
            if (c == '?') {
                ++p;
                ++t;
                continue;
            }
            if (c == '[') {
                std::size_t next = 0;
                if (glob_class_contains(pat, p, text[t], next)) {
                    p = next;
                    ++t;
                    continue;
                }
            } else if (c == '\\' && p + 1 < pat.size()) {
                if (pat[p + 1] == text[t]) {
                    p += 2;
                    ++t;
                    continue;
                }
            } else if (c == text[t]) {
                ++p;
                ++t;
                continue;
            }
        }
        if (star_p == std::string_view::npos)
            return false;
        p = star_p;
        t = ++star_t;
    }
    while (p < pat.size() && pat[p] == '*')
        ++p;
    return p == pat.size();
}

}  // namespace

Result<std::vector<std::string>> compile_cgroup_glob(std::string_view glob) {
    if (glob.empty() || glob.front() != '/')
        return make_error("pattern must be an absolute cgroup path (start with '/')");
    std::string_view body = glob.substr(1);
    if (!body.empty() && body.back() == '/')
        body.remove_suffix(1);
    std::vector<std::string> segments;
    if (body.empty())
        return segments;  // "/": the root cgroup
    std::size_t pos = 0;
    while (pos <= body.size()) {
        std::size_t end = body.find('/', pos);
        if (end == std::string_view::npos)
            end = body.size();
        std::string_view seg = body.substr(pos, end - pos);
        if (auto why = check_glob_segment(seg); !why.empty())
            return make_error(why);
        segments.emplace_back(seg);
        pos = end + 1;
    }
    return segments;
}

std::optional<std::vector<std::string_view>> split_cgroup_path(std::string_view path) {
    if (path.empty() || path.front() != '/')
        return std::nullopt;
    std::string_view body = path.substr(1);
    if (!body.empty() && body.back() == '/')
        body.remove_suffix(1);
    std::vector<std::string_view> segs;
    if (body.empty())
        return segs;
    std::size_t pos = 0;
    while (pos <= body.size()) {
        std::size_t end = body.find('/', pos);
        if (end == std::string_view::npos)
            end = body.size();
        if (end == pos)
            return std::nullopt;
        segs.push_back(body.substr(pos, end - pos));
        pos = end + 1;
    }
    return segs;
}

bool glob_matches_segments_or_ancestor(const std::vector<std::string>& pat, const std::vector<std::string_view>& path) {
    // reach[i][j]: the first i pattern segments match the first j path segments. Any j with reach[P][j] means the
    // pattern matches the ancestor made of the first j segments (j == N: the cgroup itself).
    const std::size_t P = pat.size(), N = path.size();
    std::vector<std::vector<char>> reach(P + 1, std::vector<char>(N + 1, 0));
    reach[0][0] = 1;
    for (std::size_t i = 0; i < P; ++i) {
        for (std::size_t j = 0; j <= N; ++j) {
            if (!reach[i][j])
                continue;
            if (pat[i] == "**") {
                reach[i + 1][j] = 1;  // zero segments
                if (j < N)
                    reach[i][j + 1] = 1;  // one more segment, still inside "**"
            } else if (j < N && glob_segment_matches(pat[i], path[j])) {
                reach[i + 1][j + 1] = 1;
            }
        }
    }
    for (std::size_t j = 0; j <= N; ++j)
        if (reach[P][j])
            return true;
    return false;
}

bool glob_matches_path_or_ancestor(const std::vector<std::string>& pattern_segments, std::string_view path) {
    auto segs = split_cgroup_path(path);
    return segs && glob_matches_segments_or_ancestor(pattern_segments, *segs);
}

}  // namespace podid
