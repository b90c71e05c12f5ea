#include "caller/cgroup_paths.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace podid {
namespace {

// The kernel's handle type for kernfs (cgroup2) files: the 8-byte handle is the cgroup id (include/linux/exportfs.h).
constexpr int kFileidKernfs = 0xfe;

std::string errno_text(int err) { return std::strerror(err); }

bool is_dir(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> list_subdirs(const std::string& dir) {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr)
        return names;
    while (struct dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..")
            continue;
        if (e->d_type == DT_DIR || (e->d_type == DT_UNKNOWN && is_dir(dir + "/" + name)))
            names.push_back(name);
    }
    ::closedir(d);
    return names;
}

bool has_dotdot_segment(std::string_view path) {
    std::size_t i = 0;
    while (i <= path.size()) {
        std::size_t end = path.find('/', i);
        if (end == std::string_view::npos)
            end = path.size();
        if (path.substr(i, end - i) == "..")
            return true;
        i = end + 1;
    }
    return false;
}

std::string join(const std::string& mount, std::string_view relative) {
    if (relative.empty() || relative == "/")
        return mount;
    if (relative.front() != '/')
        return mount + "/" + std::string(relative);
    return mount + std::string(relative);
}

// The directory itself is the kubepods cgroup when it holds kubelet's QoS or pod children.
bool looks_like_kubepods_content(const std::vector<std::string>& children) {
    for (const auto& c : children) {
        if (c == "kubepods-burstable.slice" || c == "kubepods-besteffort.slice" || c.rfind("kubepods-pod", 0) == 0)
            return true;
    }
    bool burstable = false, besteffort = false;
    for (const auto& c : children) {
        burstable = burstable || c == "burstable";
        besteffort = besteffort || c == "besteffort";
    }
    return burstable && besteffort;
}

}  // namespace

Result<std::string> detect_kubepods_root(const std::string& mount_in) {
    std::string mount = mount_in;
    while (mount.size() > 1 && mount.back() == '/')
        mount.pop_back();
    if (!is_dir(mount))
        return make_error("cgroup2 mount " + mount + " is not a directory", ENOTDIR);

    // Breadth first, three levels deep: enough for "/kubepods.slice", a test prefix, or a kind node's
    // "/system.slice/docker-<id>.scope/kubepods.slice", without walking every pod's cgroups.
    constexpr int kMaxDepth = 3;
    std::vector<std::string> level{""};
    if (looks_like_kubepods_content(list_subdirs(mount)))
        return std::string("/");
    for (int depth = 1; depth <= kMaxDepth && !level.empty(); ++depth) {
        std::vector<std::string> found;
        std::vector<std::string> next;
        for (const auto& rel : level) {
            for (const auto& name : list_subdirs(join(mount, rel))) {
                std::string child = rel + "/" + name;
                if (name == "kubepods.slice" || name == "kubepods") {
                    found.push_back(child);
                } else if (depth < kMaxDepth) {
                    next.push_back(child);
                }
            }
        }
        if (found.size() == 1)
            return found.front();
        if (found.size() > 1) {
            std::string list;
            for (const auto& f : found)
                list += (list.empty() ? "" : ", ") + f;
            return make_error(
                "several kubepods cgroups under " + mount + " (" + list + "): name the one kubelet uses explicitly",
                EEXIST);
        }
        level = std::move(next);
    }
    return make_error("no kubepods cgroup (kubepods.slice or kubepods) under " + mount +
                          ": is kubelet running on this node with cgroup v2?",
                      ENOENT);
}

// ---- CgroupPathResolver ----

Result<std::unique_ptr<CgroupPathResolver>> CgroupPathResolver::open(const std::string& mount_in,
                                                                     std::size_t cache_capacity,
                                                                     std::chrono::milliseconds revalidate_after) {
    std::string mount = mount_in;
    while (mount.size() > 1 && mount.back() == '/')
        mount.pop_back();
    int fd = ::open(mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return make_error("cannot open cgroup2 mount " + mount + ": " + errno_text(err), err);
    }
    return std::unique_ptr<CgroupPathResolver>(
        new CgroupPathResolver(std::move(mount), fd, cache_capacity == 0 ? 1 : cache_capacity, revalidate_after));
}

CgroupPathResolver::CgroupPathResolver(std::string mount, int mount_fd, std::size_t capacity,
                                       std::chrono::milliseconds revalidate)
    : mount_(std::move(mount)), mount_fd_(mount_fd), capacity_(capacity), revalidate_after_(revalidate) {}

CgroupPathResolver::~CgroupPathResolver() {
    if (mount_fd_ >= 0)
        ::close(mount_fd_);
}

bool CgroupPathResolver::uses_file_handles() const {
    std::lock_guard lock(mu_);
    return use_handles_;
}

void CgroupPathResolver::disable_file_handles() {
    std::lock_guard lock(mu_);
    use_handles_ = false;
}

uint64_t CgroupPathResolver::id_of(const std::string& relative_path) const {
    if (has_dotdot_segment(relative_path))
        return 0;
    struct stat st {};
    std::string full = join(mount_, relative_path);
    if (::stat(full.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    return static_cast<uint64_t>(st.st_ino);
}

bool CgroupPathResolver::still_valid(uint64_t id, const std::string& path) const { return id_of(path) == id; }

Result<std::string> CgroupPathResolver::path_of(uint64_t id) {
    if (id == 0)
        return make_error("cgroup id 0 names no cgroup", ENOENT);
    std::string cached;
    bool handles = true;
    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(mu_);
        handles = use_handles_;
        auto it = cache_.find(id);
        if (it != cache_.end()) {
            lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
            if (now - it->second.checked < revalidate_after_)
                return it->second.path;
            cached = it->second.path;
        }
    }
    if (!cached.empty()) {
        if (still_valid(id, cached)) {
            remember(id, cached, now);
            return cached;
        }
        forget(id);
    }
    Result<std::string> found = make_error("unresolved", ENOENT);
    if (handles) {
        found = resolve_by_handle(id);
        if (!found.ok() && (found.error().code == EPERM || found.error().code == EOPNOTSUPP ||
                            found.error().code == ENOSYS || found.error().code == EACCES)) {
            // Not permitted here (no CAP_DAC_READ_SEARCH, or a seccomp profile): scan from now on.
            disable_file_handles();
            found = resolve_by_scan(id);
        }
    } else {
        found = resolve_by_scan(id);
    }
    if (found.ok())
        remember(id, *found, now);
    return found;
}

Result<std::string> CgroupPathResolver::resolve_by_handle(uint64_t id) {
    struct {
        struct file_handle handle;
        unsigned char id_bytes[sizeof(uint64_t)];
    } fh{};
    fh.handle.handle_bytes = sizeof(uint64_t);
    fh.handle.handle_type = kFileidKernfs;
    std::memcpy(fh.handle.f_handle, &id, sizeof(id));

    int fd = ::open_by_handle_at(mount_fd_, &fh.handle, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        // ESTALE: the cgroup is gone (or never existed); report it like a missing file.
        if (err == ESTALE || err == ENOENT)
            return make_error("no cgroup with id " + std::to_string(id), ENOENT);
        return make_error("open_by_handle_at(cgroup id " + std::to_string(id) + "): " + errno_text(err), err);
    }
    char buf[4096];
    std::string link = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
    int err = errno;
    ::close(fd);
    if (n < 0)
        return make_error("readlink " + link + ": " + errno_text(err), err);
    if (static_cast<std::size_t>(n) >= sizeof(buf))
        return make_error("cgroup path too long", ENAMETOOLONG);
    std::string abs(buf, static_cast<std::size_t>(n));

    constexpr std::string_view kDeleted = " (deleted)";
    if (abs.size() >= kDeleted.size() && abs.compare(abs.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0)
        return make_error("no cgroup with id " + std::to_string(id) + " (removed)", ENOENT);

    std::string rel;
    if (mount_ == "/") {
        rel = abs;
    } else if (abs == mount_) {
        rel = "/";
    } else if (abs.size() > mount_.size() && abs.compare(0, mount_.size(), mount_) == 0 && abs[mount_.size()] == '/') {
        rel = abs.substr(mount_.size());
    } else {
        // Outside our mount's view (another cgroup namespace root): not a cgroup we can name.
        return make_error("cgroup id " + std::to_string(id) + " resolves outside " + mount_ + ": " + abs, ENOENT);
    }
    return rel;
}

Result<std::string> CgroupPathResolver::resolve_by_scan(uint64_t id) {
    static_assert(sizeof(ino_t) >= sizeof(uint64_t), "cgroup ids are 64-bit inode numbers");
    // Counted at scan start and read before waiting for the lock: a scan that started after this call began saw
    // the tree as it is now, so its index answers for us and a second scan would find nothing more.
    const uint64_t scans_seen = scans_started_.load();
    std::lock_guard lock(scan_mu_);
    auto lookup = [&]() -> std::string {
        auto it = scan_index_.find(id);
        if (it != scan_index_.end() && still_valid(id, it->second))
            return it->second;
        return {};
    };
    std::string hit = lookup();
    if (!hit.empty())
        return hit;
    if (scans_started_.load() != scans_seen) {
        hit = lookup();
        if (!hit.empty())
            return hit;
        return make_error("no cgroup with id " + std::to_string(id), ENOENT);
    }

    ++scans_started_;
    std::unordered_map<uint64_t, std::string> index;
    std::vector<std::string> pending{"/"};
    while (!pending.empty()) {
        std::string rel = std::move(pending.back());
        pending.pop_back();
        const char* at = rel == "/" ? "." : rel.c_str() + 1;
        int dfd = ::openat(mount_fd_, at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            continue;  // removed while we walked
        struct stat st {};
        if (::fstat(dfd, &st) == 0)
            index[static_cast<uint64_t>(st.st_ino)] = rel;
        DIR* d = ::fdopendir(dfd);
        if (d == nullptr) {
            ::close(dfd);
            continue;
        }
        while (struct dirent* e = ::readdir(d)) {
            if (e->d_type != DT_DIR)
                continue;  // kernfs always fills d_type
            std::string_view name = e->d_name;
            if (name == "." || name == "..")
                continue;
            pending.push_back(rel == "/" ? "/" + std::string(name) : rel + "/" + std::string(name));
        }
        ::closedir(d);
    }
    scan_index_ = std::move(index);
    hit = lookup();
    if (!hit.empty())
        return hit;
    return make_error("no cgroup with id " + std::to_string(id), ENOENT);
}

void CgroupPathResolver::remember(uint64_t id, const std::string& path, std::chrono::steady_clock::time_point checked) {
    std::lock_guard lock(mu_);
    auto it = cache_.find(id);
    if (it != cache_.end()) {
        it->second.path = path;
        it->second.checked = checked;
        lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
        return;
    }
    while (cache_.size() >= capacity_ && !lru_.empty()) {
        cache_.erase(lru_.back());
        lru_.pop_back();
    }
    lru_.push_front(id);
    cache_.emplace(id, CacheEntry{path, lru_.begin(), checked});
}

void CgroupPathResolver::forget(uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = cache_.find(id);
    if (it == cache_.end())
        return;
    lru_.erase(it->second.lru_pos);
    cache_.erase(it);
}

}  // namespace podid
