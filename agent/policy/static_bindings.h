// Bindings from a file (--bindings FILE): cgroup path patterns -> managed identities, for hosts without Kubernetes
// pod identity objects (system services, tests, nodes whose pods are bound by cgroup).
//
// File format (JSON, unknown keys anywhere are errors, so a typo cannot silently grant nothing):
//   {"bindings": [
//     {"cgroup": "/system.slice/app.service", "identities": [{"client_id": "<guid>"}]},
//     {"cgroup": "/kubepods.slice/*/kubepods-burstable-pod1234*.slice",
//      "identities": [{"client_id": "<guid>"}, {"resource_id": "/subscriptions/.../userAssignedIdentities/x"}]}
//   ]}
// Identity keys: client_id, object_id (GUIDs), resource_id (ARM id of a user-assigned identity; "msi_res_id" is
// accepted as another spelling), name (a label for logs); at least one of the ids. The first identity of an entry is
// the caller's default.
//
// Pattern semantics ("cgroup"), over the caller's cgroup path relative to the cgroup2 mount:
//   - absolute, matched segment by segment: "*" is any run of characters within one segment (it never crosses
//     '/'), "?" one character, "[a-f]" / "[!0-9]" a character class, "\x" a literal x;
//   - "**" as a whole segment matches zero or more segments ("/kubepods.slice/**/cri-containerd-*.scope");
//     "**" inside a longer segment is rejected rather than guessed at;
//   - a caller matches when its cgroup or any ancestor of it matches: binding "/system.slice/app.service" also
//     covers the service's sub-cgroups, and "/" or "/**" binds everything;
//   - entries are tried in file order and the first match wins, so put narrow entries before broad ones.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "policy/binding.h"

namespace podid {

// One parsed, validated bindings file. Immutable once built; shared between readers.
class BindingTable {
public:
    struct Entry {
        std::string glob;                   // as written in the file
        std::vector<std::string> segments;  // the glob split at '/', validated
        std::vector<Identity> identities;   // at least one; the first is the default
        int line = 0;                       // where the entry starts in the file (1-based; 0 when unknown)
    };

    BindingTable(std::string source, std::vector<Entry> entries)
        : source_(std::move(source)), entries_(std::move(entries)) {}

    // The first entry whose pattern matches `cgroup_path` or one of its ancestors; kind none for no match or an
    // empty/relative path. The answer per path is remembered (the table never changes; a reload makes a new one),
    // so a pod's requests after its first pay a hash lookup, not a glob match.
    Binding match(std::string_view cgroup_path) const;

    const std::string& source() const { return source_; }
    const std::vector<Entry>& entries() const { return entries_; }

private:
    static constexpr int kNoEntry = -1;
    int first_match(std::string_view cgroup_path) const;

    std::string source_;
    std::vector<Entry> entries_;
    mutable std::mutex memo_mu_;
    // Looked up by string_view (no copy of the path per request).
    struct PathHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view path) const { return std::hash<std::string_view>{}(path); }
    };
    // cgroup path -> entry index or kNoEntry; bounded.
    mutable std::unordered_map<std::string, int, PathHash, std::equal_to<>> memo_;
};

// Whether `pattern_segments` (a validated pattern split at '/') matches `path` or one of its ancestors.
// Exposed for tests and for podidctl's "which entry would match" explanations.
bool glob_matches_path_or_ancestor(const std::vector<std::string>& pattern_segments, std::string_view path);

class StaticBindings : public BindingSource {
public:
    // Called with one sentence when reload() rejects a file (the previous table stays in force).
    using ErrorLog = std::function<void(const std::string& message)>;

    explicit StaticBindings(std::string path, ErrorLog on_reload_error = {});
    ~StaticBindings() override;
    StaticBindings(const StaticBindings&) = delete;
    StaticBindings& operator=(const StaticBindings&) = delete;

    // Parses a bindings document. Errors read "<source_name>:<line>:<column>: <reason>", e.g.
    // "bindings.json:7:9: bindings entry 2: unknown key \"clientid\"". Never throws.
    static Result<std::shared_ptr<const BindingTable>> parse(std::string_view json, std::string_view source_name);

    // Reads and parses the file; on success the new table takes effect. On failure nothing changes (ready() stays
    // false if nothing was loaded before) and the error is returned, not logged.
    Result<void> load();

    // Like load(), for a file that changed (SIGHUP, the watcher): a bad file keeps the previous table in force and
    // is reported through the ErrorLog as well as returned.
    Result<void> reload();

    // Reloads when the file changes: inotify on its directory (IN_CLOSE_WRITE / IN_MOVED_TO, so editors' and
    // ConfigMaps' rename-replace are seen) plus a stat() poll every `poll_interval` as a safety net (also the only
    // mechanism when inotify is unavailable). A reload happens only when the file's device, inode, size or mtime
    // changed. Handlers run on `io`; this object may be destroyed before or after `io` (the handlers then stop).
    void watch(boost::asio::io_context& io, std::chrono::milliseconds poll_interval = std::chrono::seconds(5));

    Binding bindings_for(const Caller& caller) const override;
    bool ready() const override;
    // Consulted only for a caller whose cgroup is known (a pod with no cgroup on this node matches no entry).
    BindingTrace trace(const Caller& caller) const override;

    // The table in force (null before the first successful load).
    std::shared_ptr<const BindingTable> table() const;
    const std::string& path() const;

    // Shared with the watcher's handlers, which must not outlive it unknowingly.
    struct State;

private:
    std::shared_ptr<State> state_;
};

}  // namespace podid
