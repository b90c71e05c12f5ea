// cgroup v2 paths: where the kubepods cgroup is, and cgroup id <-> path relative to the cgroup2 mount
// (common/cgroupfs.h finds the mount).
//
// Paths returned and accepted here are relative to the cgroup2 mount and start with '/' ("/" is the mount itself,
// "/kubepods.slice/..." a cgroup below it), which is what kubelet_cgroup.h and static bindings match against.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/cgroupfs.h"
#include "common/result.h"

namespace podid {

// The kubelet's kubepods cgroup below `mount` (absolute mount path), as a path relative to the mount:
// "/kubepods.slice" (systemd driver), "/kubepods" (cgroupfs driver), "/some/prefix/kubepods.slice" when the node runs
// nested (kind) or in a test prefix, or "/" when the mount itself is the kubepods cgroup (a cgroup namespace rooted
// there). The shallowest match wins; two candidates at the same depth are an error, since attaching to the wrong
// one would leave pods unprotected: the operator must then name the cgroup explicitly.
Result<std::string> detect_kubepods_root(const std::string& mount);

// Maps cgroup ids (what bpf_get_current_cgroup_id() recorded) to paths and back.
//
// A cgroup id is the inode number of the cgroup's directory on the cgroup2 mount. path_of() first asks a bounded LRU
// cache. An entry is re-validated with one stat() when it was last checked more than `revalidate_after` ago (a
// removed cgroup must not keep its old path for long, and ids are never reused while the kernel runs, but a cached
// path can be reused by a new cgroup with another id). Within that window a cached path is served as is: the id
// comes from a connect() made by a process inside that cgroup, so the path was that cgroup's when the connection
// was made; only a rename (root on the node) could make it stale, and the window bounds that. This keeps a stat()
// of a deep cgroupfs path off every new connection (~7% of the agent's CPU with one connection per request). On a miss
// it opens the id as a kernfs file handle (open_by_handle_at, needs CAP_DAC_READ_SEARCH) and reads the path back
// from /proc/self/fd; if handles are not permitted, it falls back to an index built by scanning the tree, rebuilt
// when an id is missing from it. Thread-safe.
class CgroupPathResolver {
public:
    // `mount` is the absolute path of the cgroup2 mount (find_cgroup2_mount()).
    // `revalidate_after` 0 re-validates on every use.
    static Result<std::unique_ptr<CgroupPathResolver>> open(
        const std::string& mount, std::size_t cache_capacity = 4096,
        std::chrono::milliseconds revalidate_after = std::chrono::milliseconds(1000));

    ~CgroupPathResolver();
    CgroupPathResolver(const CgroupPathResolver&) = delete;
    CgroupPathResolver& operator=(const CgroupPathResolver&) = delete;

    // "/kubepods.slice/..." for a live cgroup; an error with code ENOENT when no such cgroup exists (any more).
    Result<std::string> path_of(uint64_t id);

    // The id of the cgroup at `relative_path` ("/" or "" for the mount itself); 0 when it does not exist or the
    // path tries to leave the mount ("..").
    uint64_t id_of(const std::string& relative_path) const;

    const std::string& mount() const { return mount_; }

    // Whether path_of() currently uses file handles (false after the kernel refused them once).
    bool uses_file_handles() const;

    // For tests and diagnostics: force the scan fallback as if open_by_handle_at were not permitted.
    void disable_file_handles();

private:
    CgroupPathResolver(std::string mount, int mount_fd, std::size_t capacity, std::chrono::milliseconds revalidate);

    struct CacheEntry {
        std::string path;
        std::list<uint64_t>::iterator lru_pos;
        std::chrono::steady_clock::time_point checked;  // when the path was last confirmed to hold this id
    };

    bool still_valid(uint64_t id, const std::string& path) const;
    Result<std::string> resolve_by_handle(uint64_t id);
    Result<std::string> resolve_by_scan(uint64_t id);
    void remember(uint64_t id, const std::string& path, std::chrono::steady_clock::time_point checked);
    void forget(uint64_t id);

    std::string mount_;
    int mount_fd_ = -1;
    std::size_t capacity_;
    std::chrono::milliseconds revalidate_after_;

    mutable std::mutex mu_;  // guards cache_, lru_, use_handles_
    std::unordered_map<uint64_t, CacheEntry> cache_;
    std::list<uint64_t> lru_;  // most recently used first
    bool use_handles_ = true;

    std::mutex scan_mu_;  // one scan at a time; guards scan_index_
    std::unordered_map<uint64_t, std::string> scan_index_;
    std::atomic<uint64_t> scans_started_{0};
};

}  // namespace podid
