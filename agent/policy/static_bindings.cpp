#include "policy/static_bindings.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

namespace podid {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxFileBytes = 4 << 20;  // a bindings file is a few KB; refuse to slurp a mistaken path

// ---------------------------------------------------------------------------------------------------------------
// Positions: nlohmann does not report where values are, so after it accepted the text a small scanner maps JSON
// pointers ("/bindings/1/identities/0/client_id") to byte offsets, and finds duplicate keys (which nlohmann
// silently collapses, last one wins). Only the first few levels are indexed: that is all the schema has.

struct Locations {
    std::map<std::string, std::size_t> offsets;  // member: offset of its key; array element: of its value
    std::optional<std::pair<std::string, std::size_t>> duplicate;  // first duplicate key: pointer, offset
};

std::string pointer_escape(std::string_view key) {
    std::string out;
    for (char c : key) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}

class Locator {
public:
    explicit Locator(std::string_view text) : t_(text) {}

    Locations run() {
        skip_ws();
        value("");
        while (pos_ < t_.size() && !stack_.empty()) {
            skip_ws();
            if (pos_ >= t_.size())
                break;
            char c = t_[pos_];
            if (c == ',') {
                ++pos_;
                continue;
            }
            if (c == '}' || c == ']') {
                stack_.pop_back();
                ++pos_;
                continue;
            }
            Frame& top = stack_.back();
            if (top.object) {
                std::size_t key_pos = pos_;
                std::string key = string_token();
                skip_ws();
                if (pos_ < t_.size() && t_[pos_] == ':')
                    ++pos_;
                skip_ws();
                std::string child = top.pointer + "/" + pointer_escape(key);
                if (!top.keys.insert(key).second && !out_.duplicate)
                    out_.duplicate.emplace(child, key_pos);
                out_.offsets.emplace(child, key_pos);
                value(child);
            } else {
                std::string child = top.pointer + "/" + std::to_string(top.index++);
                out_.offsets.emplace(child, pos_);
                value(child);
            }
        }
        return std::move(out_);
    }

private:
    static constexpr std::size_t kMaxDepth = 5;  // {"bindings": [{"identities": [{...}]}]}

    struct Frame {
        bool object;
        std::string pointer;
        std::size_t index = 0;
        std::set<std::string> keys;
    };

    void skip_ws() {
        while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r'))
            ++pos_;
    }

    // At a '"': returns the decoded string and moves past it.
    std::string string_token() {
        std::size_t start = ++pos_;
        bool escaped = false;
        while (pos_ < t_.size() && t_[pos_] != '"') {
            if (t_[pos_] == '\\') {
                escaped = true;
                ++pos_;
            }
            ++pos_;
        }
        std::string_view raw = t_.substr(start, std::min(pos_, t_.size()) - start);
        ++pos_;
        if (!escaped)
            return std::string(raw);
        try {
            return json::parse("\"" + std::string(raw) + "\"").get<std::string>();
        } catch (const json::exception&) {
            return std::string(raw);
        }
    }

    // A whole nested value, counting brackets (strings may hold brackets).
    void skip_container() {
        int depth = 0;
        while (pos_ < t_.size()) {
            char c = t_[pos_];
            if (c == '"') {
                string_token();
                continue;
            }
            ++pos_;
            if (c == '{' || c == '[')
                ++depth;
            if ((c == '}' || c == ']') && --depth == 0)
                return;
        }
    }

    void value(const std::string& pointer) {
        if (pos_ >= t_.size())
            return;
        char c = t_[pos_];
        if (c == '{' || c == '[') {
            if (stack_.size() >= kMaxDepth) {
                skip_container();
                return;
            }
            stack_.push_back(Frame{c == '{', pointer, 0, {}});
            ++pos_;
        } else if (c == '"') {
            string_token();
        } else {
            while (pos_ < t_.size() && std::strchr(",]} \t\r\n", t_[pos_]) == nullptr)
                ++pos_;
        }
    }

    std::string_view t_;
    std::size_t pos_ = 0;
    std::vector<Frame> stack_;
    Locations out_;
};

struct LineCol {
    int line = 1;
    int column = 1;
};

LineCol line_col(std::string_view text, std::size_t offset) {
    LineCol lc;
    offset = std::min(offset, text.size());
    for (std::size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++lc.line;
            lc.column = 1;
        } else {
            ++lc.column;
        }
    }
    return lc;
}

// ---------------------------------------------------------------------------------------------------------------
// Patterns.

// Validates one pattern segment; "" when fine, else the reason.
std::string check_segment(std::string_view seg) {
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

Result<std::vector<std::string>> compile_pattern(std::string_view glob) {
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
        if (auto why = check_segment(seg); !why.empty())
            return make_error(why);
        segments.emplace_back(seg);
        pos = end + 1;
    }
    return segments;
}

// At a validated '[' in `pat`: whether `c` is in the class; `next` receives the index after the closing ']'.
bool class_contains(std::string_view pat, std::size_t open, char c, std::size_t& next) {
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
bool segment_matches(std::string_view pat, std::string_view text) {
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
                if (class_contains(pat, p, text[t], next)) {
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

bool matches_prefix(const std::vector<std::string>& pat, const std::vector<std::string_view>& path) {
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
            } else if (j < N && segment_matches(pat[i], path[j])) {
                reach[i + 1][j + 1] = 1;
            }
        }
    }
    for (std::size_t j = 0; j <= N; ++j)
        if (reach[P][j])
            return true;
    return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Document -> table.

bool is_guid(std::string_view s) {
    if (s.size() != 36)
        return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

std::string ascii_lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// "/subscriptions/<sub>/resourcegroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>"
bool is_user_assigned_identity_id(std::string_view s) {
    std::string l = ascii_lower(std::string(s));
    if (l.rfind("/subscriptions/", 0) != 0)
        return false;
    for (char c : l)
        if (c <= ' ' || c == '?' || c == '&' || c == '#' || c == '%')
            return false;
    constexpr std::string_view kProvider = "/providers/microsoft.managedidentity/userassignedidentities/";
    auto at = l.find(kProvider);
    return at != std::string::npos && at + kProvider.size() < l.size() &&
           l.find('/', at + kProvider.size()) == std::string::npos;
}

class DocumentReader {
public:
    DocumentReader(std::string_view text, std::string_view source) : text_(text), source_(source) {}

    Result<std::shared_ptr<const BindingTable>> read() {
        json doc;
        try {
            doc = json::parse(text_);
        } catch (const json::parse_error& e) {
            return syntax_error(e);
        } catch (const json::exception& e) {
            return error_at(0, std::string("invalid JSON: ") + e.what());
        }
        locations_ = Locator(text_).run();
        if (locations_.duplicate) {
            const auto& [pointer, offset] = *locations_.duplicate;
            return error_at(offset, "duplicate key \"" + pointer.substr(pointer.rfind('/') + 1) + "\" (at " + pointer +
                                        "): only one value may be given");
        }
        if (!doc.is_object())
            return error_at(0, "the document must be an object {\"bindings\": [...]}");
        for (const auto& [key, value] : doc.items()) {
            if (key != "bindings")
                return error_at(offset_of("/" + pointer_escape(key)), "unknown key \"" + key + "\"");
        }
        if (!doc.contains("bindings"))
            return error_at(0, "missing \"bindings\" (a list of entries)");
        const json& list = doc["bindings"];
        if (!list.is_array())
            return error_at(offset_of("/bindings"), "\"bindings\" must be a list");

        std::vector<BindingTable::Entry> entries;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto entry = read_entry(list[i], i);
            if (!entry)
                return entry.error();
            entries.push_back(std::move(*entry));
        }
        return std::shared_ptr<const BindingTable>(
            std::make_shared<BindingTable>(std::string(source_), std::move(entries)));
    }

private:
    Result<BindingTable::Entry> read_entry(const json& e, std::size_t i) {
        const std::string at = "/bindings/" + std::to_string(i);
        const std::string what = "bindings entry " + std::to_string(i + 1) + ": ";
        const std::size_t entry_offset = offset_of(at);
        if (!e.is_object())
            return error_at(entry_offset, what + "must be an object {\"cgroup\": ..., \"identities\": [...]}");
        for (const auto& [key, value] : e.items()) {
            if (key != "cgroup" && key != "identities")
                return error_at(offset_of(at + "/" + pointer_escape(key)), what + "unknown key \"" + key + "\"");
        }
        BindingTable::Entry entry;
        entry.line = line_col(text_, entry_offset).line;
        if (!e.contains("cgroup"))
            return error_at(entry_offset, what + "missing \"cgroup\" (a cgroup path pattern)");
        if (!e["cgroup"].is_string())
            return error_at(offset_of(at + "/cgroup"), what + "\"cgroup\" must be a string");
        entry.glob = e["cgroup"].get<std::string>();
        auto segments = compile_pattern(entry.glob);
        if (!segments)
            return error_at(offset_of(at + "/cgroup"),
                            what + "bad cgroup pattern \"" + entry.glob + "\": " + segments.error().message);
        entry.segments = std::move(*segments);

        if (!e.contains("identities"))
            return error_at(entry_offset, what + "missing \"identities\"");
        const json& ids = e["identities"];
        if (!ids.is_array() || ids.empty())
            return error_at(offset_of(at + "/identities"), what + "\"identities\" must be a non-empty list");
        for (std::size_t j = 0; j < ids.size(); ++j) {
            auto identity = read_identity(ids[j], at + "/identities/" + std::to_string(j),
                                          what + "identity " + std::to_string(j + 1) + ": ");
            if (!identity)
                return identity.error();
            if (identity->name.empty())
                identity->name = "bindings entry " + std::to_string(i + 1);
            entry.identities.push_back(std::move(*identity));
        }
        return entry;
    }

    Result<Identity> read_identity(const json& v, const std::string& at, const std::string& what) {
        const std::size_t offset = offset_of(at);
        if (!v.is_object())
            return error_at(offset, what + "must be an object such as {\"client_id\": \"<guid>\"}");
        Identity id;
        for (const auto& [key, value] : v.items()) {
            const std::size_t key_offset = offset_of(at + "/" + pointer_escape(key));
            if (key != "client_id" && key != "object_id" && key != "resource_id" && key != "msi_res_id" &&
                key != "name")
                return error_at(key_offset, what + "unknown key \"" + key +
                                                "\" (expected client_id, object_id, resource_id, name)");
            if (!value.is_string())
                return error_at(key_offset, what + "\"" + key + "\" must be a string");
            std::string s = value.get<std::string>();
            if (key == "client_id" || key == "object_id") {
                if (!is_guid(s))
                    return error_at(key_offset, what + key + " \"" + s + "\" is not a GUID");
                (key == "client_id" ? id.client_id : id.object_id) = ascii_lower(s);
            } else if (key == "resource_id" || key == "msi_res_id") {
                if (!id.resource_id.empty())
                    return error_at(key_offset, what + "give resource_id or msi_res_id, not both");
                if (!is_user_assigned_identity_id(s))
                    return error_at(key_offset, what + key + " \"" + s +
                                                    "\" is not a user-assigned identity id (/subscriptions/.../"
                                                    "providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
                                                    "<name>)");
                id.resource_id = s;
            } else {
                id.name = s;
            }
        }
        if (id.client_id.empty() && id.object_id.empty() && id.resource_id.empty())
            return error_at(offset, what + "needs at least one of client_id, object_id, resource_id");
        return id;
    }

    std::size_t offset_of(const std::string& pointer) const {
        auto it = locations_.offsets.find(pointer);
        return it == locations_.offsets.end() ? 0 : it->second;
    }

    Error error_at(std::size_t offset, const std::string& reason) const {
        LineCol lc = line_col(text_, offset);
        return make_error(
            std::string(source_) + ":" + std::to_string(lc.line) + ":" + std::to_string(lc.column) + ": " + reason,
            EINVAL);
    }

    Error syntax_error(const json::parse_error& e) const {
        // e.byte is 1-based and points at the last character read, which is often the whitespace after a bad
        // token: step back to the token so the column points at it.
        std::size_t offset = e.byte > 0 ? e.byte - 1 : 0;
        offset = std::min(offset, text_.size());
        while (offset > 0 && (offset >= text_.size() || std::isspace(static_cast<unsigned char>(text_[offset]))))
            --offset;
        std::string reason = e.what();
        if (auto c = reason.find("column "); c != std::string::npos) {
            if (auto colon = reason.find(": ", c); colon != std::string::npos)
                reason = reason.substr(colon + 2);
        }
        if (auto last = reason.find("; last read"); last != std::string::npos)
            reason.resize(last);
        return error_at(offset, "invalid JSON: " + reason);
    }

    std::string_view text_;
    std::string_view source_;
    Locations locations_;
};

// The file's identity, to tell a changed file from a spurious event.
struct FileStamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
};

std::optional<FileStamp> stamp_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return std::nullopt;
    return FileStamp{st.st_dev, st.st_ino, st.st_size,
                     static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

bool glob_matches_path_or_ancestor(const std::vector<std::string>& pattern_segments, std::string_view path) {
    auto segs = split_cgroup_path(path);
    return segs && matches_prefix(pattern_segments, *segs);
}

int BindingTable::first_match(std::string_view cgroup_path) const {
    auto segs = split_cgroup_path(cgroup_path);
    if (!segs)
        return kNoEntry;
    for (std::size_t i = 0; i < entries_.size(); ++i)
        if (matches_prefix(entries_[i].segments, *segs))
            return static_cast<int>(i);
    return kNoEntry;
}

Binding BindingTable::match(std::string_view cgroup_path) const {
    // Bounded: paths of removed pods would otherwise accumulate; starting over costs one glob match per pod.
    constexpr std::size_t kMemoLimit = 16384;
    int index = kNoEntry;
    {
        std::lock_guard lock(memo_mu_);
        auto it = memo_.find(cgroup_path);
        if (it != memo_.end()) {
            index = it->second;
        } else {
            index = first_match(cgroup_path);
            if (memo_.size() >= kMemoLimit)
                memo_.clear();
            memo_.emplace(std::string(cgroup_path), index);
        }
    }
    Binding binding;
    if (index == kNoEntry)
        return binding;
    const Entry& entry = entries_[static_cast<std::size_t>(index)];
    binding.kind = BindingKind::static_file;
    binding.identities = entry.identities;
    binding.explanation = "bindings entry " + std::to_string(index + 1) + " (" + entry.glob + ")";
    return binding;
}

struct StaticBindings::State {
    std::string path;
    ErrorLog on_error;

    mutable std::mutex mu;  // guards table
    std::shared_ptr<const BindingTable> table;

    std::mutex load_mu;              // one load at a time (SIGHUP and the watcher may race); guards stamp
    std::optional<FileStamp> stamp;  // of the last file read, good or bad

    Result<void> load_file() {
        std::lock_guard load_lock(load_mu);
        stamp = stamp_of(path);
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            int err = errno;
            return make_error("cannot read bindings file " + path + ": " + std::strerror(err), err);
        }
        std::string text(kMaxFileBytes + 1, '\0');
        in.read(text.data(), static_cast<std::streamsize>(text.size()));
        text.resize(static_cast<std::size_t>(in.gcount()));
        if (in.bad())
            return make_error("cannot read bindings file " + path, EIO);
        if (text.size() > kMaxFileBytes)
            return make_error("bindings file " + path + " is larger than " + std::to_string(kMaxFileBytes) + " bytes",
                              EFBIG);
        auto parsed = StaticBindings::parse(text, path);
        if (!parsed)
            return parsed.error();
        std::lock_guard lock(mu);
        table = std::move(*parsed);
        return {};
    }

    Result<void> reload() {
        auto r = load_file();
        if (!r && on_error)
            on_error(r.error().message);
        return r;
    }

    // For the watcher: reload only when the file is not the one read last.
    void reload_if_changed() {
        std::optional<FileStamp> now = stamp_of(path);
        {
            std::lock_guard load_lock(load_mu);
            if (now == stamp)
                return;
        }
        reload();
    }
};

namespace {

// The watcher's own objects, owned by its pending handlers; it holds the bindings state weakly so that either side
// may go first.
struct Watcher : std::enable_shared_from_this<Watcher> {
    Watcher(boost::asio::io_context& io, std::weak_ptr<StaticBindings::State> state, std::chrono::milliseconds poll)
        : state(std::move(state)), inotify(io), timer(io), poll(poll) {}

    std::weak_ptr<StaticBindings::State> state;
    boost::asio::posix::stream_descriptor inotify;
    boost::asio::steady_timer timer;
    std::chrono::milliseconds poll;
    std::array<char, 4096> buf{};

    void start(const std::string& path) {
        int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd >= 0) {
            std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
            // Watch the directory, not the file: replacing the file by rename (editors, kubelet's ConfigMap
            // "..data" symlink swap) leaves a watch on the old inode blind.
            if (::inotify_add_watch(fd, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB) >= 0) {
                inotify.assign(fd);
                read_events();
            } else {
                ::close(fd);
            }
        }
        if (poll.count() > 0)
            arm_timer();
    }

    void read_events() {
        inotify.async_read_some(boost::asio::buffer(buf),
                                [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                                    if (ec)
                                        return;
                                    auto s = self->state.lock();
                                    if (!s)
                                        return;
                                    // Which names changed does not matter: the stamp says whether our file did.
                                    s->reload_if_changed();
                                    self->read_events();
                                });
    }

    void arm_timer() {
        timer.expires_after(poll);
        timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (ec)
                return;
            auto s = self->state.lock();
            if (!s) {
                boost::system::error_code ignored;
                self->inotify.close(ignored);  // the bindings are gone: stop the reader too
                return;
            }
            s->reload_if_changed();
            self->arm_timer();
        });
    }
};

}  // namespace

StaticBindings::StaticBindings(std::string path, ErrorLog on_reload_error) : state_(std::make_shared<State>()) {
    state_->path = std::move(path);
    state_->on_error = std::move(on_reload_error);
}

StaticBindings::~StaticBindings() = default;

Result<std::shared_ptr<const BindingTable>> StaticBindings::parse(std::string_view json_text,
                                                                  std::string_view source_name) {
    try {
        return DocumentReader(json_text, source_name).read();
    } catch (const std::exception& e) {  // allocation failure and the like: still an error value
        return make_error(std::string(source_name) + ": cannot parse bindings: " + e.what(), EINVAL);
    }
}

Result<void> StaticBindings::load() { return state_->load_file(); }

Result<void> StaticBindings::reload() { return state_->reload(); }

void StaticBindings::watch(boost::asio::io_context& io, std::chrono::milliseconds poll_interval) {
    auto watcher = std::make_shared<Watcher>(io, state_, poll_interval);
    watcher->start(state_->path);
}

std::shared_ptr<const BindingTable> StaticBindings::table() const {
    std::lock_guard lock(state_->mu);
    return state_->table;
}

const std::string& StaticBindings::path() const { return state_->path; }

bool StaticBindings::ready() const { return table() != nullptr; }

BindingTrace StaticBindings::trace(const Caller& caller) const {
    BindingTrace t;
    if (caller.cgroup_path.empty()) {
        t.steps.push_back("bindings file " + path() + ": not consulted (no cgroup of this pod on the node)");
        return t;
    }
    t.binding = bindings_for(caller);
    if (t.binding.kind != BindingKind::none) {
        t.steps.push_back("bindings file " + path() + ": " + t.binding.explanation + " matches " + caller.cgroup_path);
        t.decided_by = "bindings_file";
    } else {
        t.steps.push_back("bindings file " + path() + ": no entry matches " + caller.cgroup_path);
    }
    return t;
}

Binding StaticBindings::bindings_for(const Caller& caller) const {
    auto t = table();
    if (!t || caller.cgroup_path.empty())
        return Binding{};
    return t->match(caller.cgroup_path);
}

}  // namespace podid
