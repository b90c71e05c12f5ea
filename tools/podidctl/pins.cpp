#include "pins.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "admin/introspect.h"
#include "caller/cgroup_paths.h"
#include "datapath/datapath.h"

namespace podid::ctl {

using nlohmann::json;

namespace {

struct OwnedFd {
    int fd = -1;
    explicit OwnedFd(int f) : fd(f) {}
    ~OwnedFd() {
        if (fd >= 0)
            ::close(fd);
    }
    OwnedFd(const OwnedFd&) = delete;
    OwnedFd& operator=(const OwnedFd&) = delete;
};

const char* attach_type_name(uint32_t t) {
    switch (t) {
    case BPF_CGROUP_INET4_CONNECT: return "cgroup/connect4";
    case BPF_CGROUP_INET6_CONNECT: return "cgroup/connect6";
    case BPF_CGROUP_INET4_GETPEERNAME: return "cgroup/getpeername4";
    case BPF_CGROUP_INET6_GETPEERNAME: return "cgroup/getpeername6";
    case BPF_CGROUP_SOCK_OPS: return "sockops";
    case BPF_CGROUP_INET_EGRESS: return "cgroup_skb/egress";
    default: return "other";
    }
}

const char* map_type_name(uint32_t t) {
    switch (t) {
    case BPF_MAP_TYPE_SK_STORAGE: return "sk_storage";
    case BPF_MAP_TYPE_LRU_HASH: return "lru_hash";
    case BPF_MAP_TYPE_LRU_PERCPU_HASH: return "lru_percpu_hash";
    case BPF_MAP_TYPE_PERCPU_HASH: return "percpu_hash";
    case BPF_MAP_TYPE_HASH: return "hash";
    default: return "other";
    }
}

json program_json(uint32_t prog_id) {
    json j{{"id", prog_id}};
    OwnedFd fd(bpf_prog_get_fd_by_id(prog_id));
    if (fd.fd < 0)
        return j;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.fd, &info, &len) != 0)
        return j;
    j["name"] = info.name;
    j["tag"] = [&] {
        char hex[2 * BPF_TAG_SIZE + 1];
        for (int i = 0; i < BPF_TAG_SIZE; ++i)
            std::snprintf(hex + 2 * i, 3, "%02x", info.tag[i]);
        return std::string(hex);
    }();
    // Only counted while kernel.bpf_stats_enabled=1; zero otherwise.
    if (info.run_cnt != 0) {
        j["run_count"] = info.run_cnt;
        j["run_time_ns"] = info.run_time_ns;
    }
    return j;
}

std::optional<size_t> count_entries(int map_fd, uint32_t key_size) {
    std::vector<unsigned char> key(key_size), next(key_size);
    size_t n = 0;
    void* prev = nullptr;
    while (bpf_map_get_next_key(map_fd, prev, next.data()) == 0) {
        ++n;
        key.swap(next);
        prev = key.data();
        if (n > 10'000'000)
            break;
    }
    if (errno != ENOENT)
        return std::nullopt;  // sk_storage maps cannot be walked this way
    return n;
}

}  // namespace

json read_pins(const std::string& bpffs) {
    json pins = json::array();
    size_t present = 0;
    auto mount = find_cgroup2_mount();
    std::unique_ptr<CgroupPathResolver> paths;
    if (mount)
        if (auto r = CgroupPathResolver::open(*mount))
            paths = std::move(*r);
    for (const std::string& name : datapath_pin_names()) {
        const std::string path = bpffs + "/" + name;
        const bool is_link = name.rfind("link_", 0) == 0;
        json p{{"name", name}, {"kind", is_link ? "link" : "map"}};
        OwnedFd fd(bpf_obj_get(path.c_str()));
        if (fd.fd < 0) {
            p["present"] = false;
            p["error"] = std::strerror(errno);
            pins.push_back(p);
            continue;
        }
        p["present"] = true;
        ++present;
        if (is_link) {
            bpf_link_info info{};
            uint32_t len = sizeof(info);
            if (bpf_obj_get_info_by_fd(fd.fd, &info, &len) == 0) {
                p["id"] = info.id;
                p["attach_type"] = attach_type_name(info.cgroup.attach_type);
                p["cgroup_id"] = info.cgroup.cgroup_id;
                if (paths)
                    if (auto cg = paths->path_of(info.cgroup.cgroup_id))
                        p["cgroup"] = *cg;
                // A link whose cgroup was removed keeps its pin but is detached (cgroup_id 0).
                p["attached"] = info.cgroup.cgroup_id != 0;
                p["program"] = program_json(info.prog_id);
            }
        } else {
            bpf_map_info info{};
            uint32_t len = sizeof(info);
            if (bpf_obj_get_info_by_fd(fd.fd, &info, &len) == 0) {
                p["id"] = info.id;
                p["map_type"] = map_type_name(info.type);
                p["max_entries"] = info.max_entries;
                if (auto n = count_entries(fd.fd, info.key_size))
                    p["entries"] = *n;
            }
        }
        pins.push_back(p);
    }
    json out{{"bpffs", bpffs}, {"present", present}, {"expected", pins.size()}, {"pins", pins}};
    if (auto counters = Datapath::read_pinned_counters(bpffs)) {
        out["counters"] = counters_summary(sum_counters(*counters));
        out["counters"]["cgroups"] = counters->size();
    }
    return out;
}

}  // namespace podid::ctl
