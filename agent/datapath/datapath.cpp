#include "datapath/datapath.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string_view>

#include "common/fd.h"
#include "datapath/bpffs.h"
#include "datapath/probe.h"
#include "podid.skel.h"

namespace podid {

namespace {

struct ProgramSlot {
    const char* pin;  // link pin name under the pin directory
    bpf_program* (*get)(podid_bpf*, bool origin_from_task);
};

// Order matters on a fresh attach: the egress filter and the sockops recorder go in before the
// redirect, so no redirected connection ever exists without its origin being copied. The same order makes an
// upgrade from socket-storage recording to task recording safe: the new sockops still copies the records the old
// connect hooks keep, until the new connect hooks are in.
const ProgramSlot kPrograms[] = {
    {"link_egress", [](podid_bpf* s, bool) { return s->progs.podid_egress; }},
    {"link_sockops",
     [](podid_bpf* s, bool from_task) { return from_task ? s->progs.podid_sockops_task : s->progs.podid_sockops; }},
    {"link_getpeername4", [](podid_bpf* s, bool) { return s->progs.podid_getpeername4; }},
    {"link_getpeername6", [](podid_bpf* s, bool) { return s->progs.podid_getpeername6; }},
    {"link_connect4", [](podid_bpf* s, bool) { return s->progs.podid_connect4; }},
    {"link_connect6", [](podid_bpf* s, bool) { return s->progs.podid_connect6; }},
};

struct MapSlot {
    const char* pin;
    bpf_map* (*get)(podid_bpf*);
};

const MapSlot kMaps[] = {
    {"sk_origin", [](podid_bpf* s) { return s->maps.sk_origin; }},
    {"conn_origin", [](podid_bpf* s) { return s->maps.conn_origin; }},
    {"cgroup_stats", [](podid_bpf* s) { return s->maps.cgroup_stats; }},
    {"exempt_cgroups", [](podid_bpf* s) { return s->maps.exempt_cgroups; }},
};

Error errno_error(const std::string& what, int err) { return make_error(what + ": " + std::strerror(err), err); }

// libbpf reports failures as negative errno (or NULL + errno); turn them into positive errno here.
int libbpf_errno(int ret) { return ret < 0 ? -ret : (errno ? errno : EINVAL); }

// Keeps libbpf's own messages (verifier logs) for warnings and errors only.
int libbpf_log(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG)
        return 0;
    return std::vfprintf(stderr, format, args);
}

// A pinned map whose layout differs from the new object's cannot be reused (an upgrade changed it):
// drop the pin so libbpf creates a fresh map. Origin records of in-flight connections are lost then.
void drop_incompatible_pin(bpf_map* map, const std::string& path) {
    Fd fd(bpf_obj_get(path.c_str()));
    if (!fd.valid())
        return;
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
        return;
    if (info.type != static_cast<uint32_t>(bpf_map__type(map)) || info.key_size != bpf_map__key_size(map) ||
        info.value_size != bpf_map__value_size(map) || info.max_entries != bpf_map__max_entries(map) ||
        info.map_flags != bpf_map__map_flags(map)) {
        std::fprintf(stderr, "podid: pinned map %s has another layout; recreating it\n", path.c_str());
        ::unlink(path.c_str());
    }
}

struct LinkDeleter {
    void operator()(bpf_link* link) const {
        if (link)
            bpf_link__destroy(link);  // closes our fd; the pin keeps the attachment
    }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

// Attaches `prog` at the cgroup, or swaps it into the pinned link if one exists for that cgroup.
Result<std::string> attach_or_update(bpf_program* prog, int cgroup_fd, uint64_t cgroup_id, const std::string& pin) {
    std::string how = "attached";
    LinkPtr old(::access(pin.c_str(), F_OK) == 0 ? bpf_link__open(pin.c_str()) : nullptr);
    if (old) {
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        bool same_cgroup = bpf_obj_get_info_by_fd(bpf_link__fd(old.get()), &info, &len) == 0 &&
                           info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id;
        if (same_cgroup) {
            int ret = bpf_link__update_program(old.get(), prog);
            if (ret == 0)
                return std::string("updated pinned link");
            // ENOLINK: the cgroup the link was attached to is gone (a stale pin).
            how = "re-attached (" +
                  std::string(libbpf_errno(ret) == ENOLINK ? "stale pin" : std::strerror(libbpf_errno(ret))) + ")";
        } else {
            how = info.cgroup.cgroup_id == 0 ? "re-attached (stale pin)" : "re-attached (cgroup changed)";
        }
    }
    // Attach the new link before the old pin goes, so there is no moment without a program.
    LinkPtr link(bpf_program__attach_cgroup(prog, cgroup_fd));
    if (!link) {
        int err = errno;
        return errno_error(std::string("cannot attach ") + bpf_program__name(prog) + " to the cgroup", err);
    }
    if (old || ::access(pin.c_str(), F_OK) == 0)
        ::unlink(pin.c_str());
    int ret = bpf_link__pin(link.get(), pin.c_str());
    if (ret != 0)
        return errno_error("cannot pin link " + pin, libbpf_errno(ret));
    return how;
}

// The kernel keeps the first BPF_OBJ_NAME_LEN - 1 characters of a program's name.
std::string kernel_name(const bpf_program* prog) {
    return std::string(bpf_program__name(prog)).substr(0, BPF_OBJ_NAME_LEN - 1);
}

// The name of the program a pinned link runs now, or "" (no pin, or unreadable).
std::string pinned_program_name(const std::string& pin) {
    Fd link(bpf_obj_get(pin.c_str()));
    if (!link.valid())
        return "";
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(link.get(), &info, &len) != 0)
        return "";
    Fd prog(bpf_prog_get_fd_by_id(info.prog_id));
    if (!prog.valid())
        return "";
    bpf_prog_info pinfo{};
    len = sizeof(pinfo);
    if (bpf_obj_get_info_by_fd(prog.get(), &pinfo, &len) != 0)
        return "";
    return pinfo.name;
}

uint64_t inode_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

const char* counter_name(int slot) {
    switch (slot) {
    case PODID_CTR_REDIRECT4: return "redirect4";
    case PODID_CTR_REDIRECT6: return "redirect6_v4mapped";
    case PODID_CTR_AGENT_DIRECT: return "agent_direct";
    case PODID_CTR_DENY_PORT: return "deny_metadata_port";
    case PODID_CTR_DROP_TCP: return "drop_tcp";
    case PODID_CTR_DROP_UDP: return "drop_udp";
    case PODID_CTR_DROP_ICMP: return "drop_icmp";
    case PODID_CTR_DROP_OTHER: return "drop_other";
    case PODID_CTR_DROP_RAW_AGENT: return "drop_raw_to_agent";
    case PODID_CTR_DROP_V6: return "drop_ipv6";
    case PODID_CTR_NO_STORAGE: return "deny_no_storage";
    default: return nullptr;
    }
}

const char* origin_recording_name(OriginRecording how) {
    switch (how) {
    case OriginRecording::task: return "task";
    case OriginRecording::socket_storage: return "socket storage";
    case OriginRecording::automatic: return "automatic";
    }
    return "?";
}

std::vector<std::string> datapath_pin_names() {
    std::vector<std::string> names;
    for (const auto& m : kMaps)
        names.emplace_back(m.pin);
    for (const auto& p : kPrograms)
        names.emplace_back(p.pin);
    return names;
}

Datapath::~Datapath() = default;
Datapath::Datapath(Datapath&&) noexcept = default;
Datapath& Datapath::operator=(Datapath&&) noexcept = default;

Result<Datapath> Datapath::install(const DatapathConfig& config) {
    libbpf_set_print(libbpf_log);
    if (config.agent_ip4 == 0)
        return make_error("the node IP is not set; pass --node-ip or set $NODE_IP", EINVAL);

    Datapath dp;
    dp.config_ = config;
    dp.cgroup_root_id_ = inode_of(config.cgroup_root);
    if (dp.cgroup_root_id_ == 0)
        return errno_error("cannot open the cgroup root " + config.cgroup_root, errno ? errno : ENOENT);
    Fd cgroup_fd(::open(config.cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup_fd.valid())
        return errno_error("cannot open the cgroup root " + config.cgroup_root, errno);

    if (auto r = ensure_pin_dir(config.pin_dir); !r)
        return r.error();

    dp.skel_ = {podid_bpf__open(), podid_bpf__destroy};
    if (!dp.skel_)
        return errno_error("cannot open the BPF object", errno);
    auto* skel = dp.skel_.get();
    skel->rodata->cfg_agent_ip4 = config.agent_ip4;
    skel->rodata->cfg_agent_port = config.agent_port;

    const bool task_ok = sockops_reads_current_task();
    if (config.origin == OriginRecording::task && !task_ok)
        return make_error(
            "origin recording from the task needs bpf_get_current_* in sockops programs (6.18 has it, 6.12 does not)",
            ENOTSUP);
    const bool from_task =
        config.origin == OriginRecording::task || (config.origin == OriginRecording::automatic && task_ok);
    dp.origin_ = from_task ? OriginRecording::task : OriginRecording::socket_storage;
    skel->rodata->cfg_origin_from_task = from_task ? 1 : 0;
    // Only the sockops variant in use is loaded: the other would not pass the verifier on every kernel.
    bpf_program__set_autoload(skel->progs.podid_sockops, !from_task);
    bpf_program__set_autoload(skel->progs.podid_sockops_task, from_task);

    for (const auto& m : kMaps) {
        std::string path = config.pin_dir + "/" + m.pin;
        drop_incompatible_pin(m.get(skel), path);
        if (int ret = bpf_map__set_pin_path(m.get(skel), path.c_str()); ret != 0)
            return errno_error("cannot set the pin path of map " + std::string(m.pin), libbpf_errno(ret));
    }

    if (int ret = podid_bpf__load(skel); ret != 0) {
        int err = libbpf_errno(ret);
        return errno_error(std::string("cannot load the BPF programs") +
                               (err == EPERM ? " (needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, or root)"
                                             : " (see the verifier log above)"),
                           err);
    }

    if (auto r = dp.set_exempt(config.exempt_cgroups); !r)
        return r.error();

    // Going from task recording back to socket storage (a downgrade) needs the other order: the connect hooks
    // must keep records before the sockops program that only copies them goes in (the task variant copies
    // records too, so it bridges the gap).
    std::vector<const ProgramSlot*> order;
    for (const auto& p : kPrograms)
        order.push_back(&p);
    if (!from_task &&
        pinned_program_name(config.pin_dir + "/link_sockops") == kernel_name(skel->progs.podid_sockops_task))
        std::stable_partition(order.begin(), order.end(),
                              [](const ProgramSlot* p) { return std::string_view(p->pin) != "link_sockops"; });
    for (const ProgramSlot* p : order) {
        bpf_program* prog = p->get(skel, from_task);
        auto how = attach_or_update(prog, cgroup_fd.get(), dp.cgroup_root_id_, config.pin_dir + "/" + p->pin);
        if (!how)
            return how.error();
        dp.report_.push_back({bpf_program__name(prog), *how});
        if (config.after_each_link)
            config.after_each_link(bpf_program__name(prog));
    }
    dp.ncpus_ = libbpf_num_possible_cpus();
    if (dp.ncpus_ <= 0)
        dp.ncpus_ = 1;
    return dp;
}

Result<void> Datapath::uninstall(const std::string& pin_dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(pin_dir, ec))
        return {};
    std::set<std::string> known;
    for (const auto& n : datapath_pin_names())
        known.insert(n);
    // Links first: removing the last reference to a link detaches its program.
    for (const auto& p : kPrograms) {
        std::string path = pin_dir + "/" + p.pin;
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return errno_error("cannot remove " + path, errno);
    }
    for (const auto& m : kMaps) {
        std::string path = pin_dir + "/" + m.pin;
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return errno_error("cannot remove " + path, errno);
    }
    // The interface guard's counters (datapath/guard.cpp): removed here too, so that uninstall leaves nothing.
    ::unlink((pin_dir + "/guard_stats").c_str());
    for (const auto& entry : fs::directory_iterator(pin_dir, ec)) {
        if (!known.count(entry.path().filename().string()))
            return make_error("pin directory " + pin_dir + " holds " + entry.path().filename().string() +
                                  ", which podid did not create; left it in place",
                              ENOTEMPTY);
    }
    if (::rmdir(pin_dir.c_str()) != 0 && errno != ENOENT)
        return errno_error("cannot remove " + pin_dir, errno);
    return {};
}

std::vector<ProgramRunStats> Datapath::run_stats() const {
    std::vector<ProgramRunStats> rows;
    for (const auto& p : kPrograms) {
        bpf_program* prog = p.get(skel_.get(), origin_ == OriginRecording::task);
        bpf_prog_info info{};
        uint32_t len = sizeof(info);
        ProgramRunStats row{bpf_program__name(prog)};
        if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
            row.run_count = info.run_cnt;
            row.run_time_ns = info.run_time_ns;
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

int Datapath::conn_origin_fd() const { return bpf_map__fd(skel_->maps.conn_origin); }

std::optional<Origin> Datapath::origin_of(int accepted_fd) const {
    sockaddr_storage peer{}, local{};
    socklen_t plen = sizeof(peer), llen = sizeof(local);
    if (::getpeername(accepted_fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0 ||
        ::getsockname(accepted_fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0)
        return std::nullopt;
    return origin_of(peer, local);
}

namespace {

// Whether the kernel takes BPF_MAP_LOOKUP_AND_DELETE_ELEM on hash maps (5.14+); the same for the whole process.
std::atomic<bool> g_lookup_and_delete{true};
constexpr int kKernelEnotsupp = 524;  // what 5.10-5.13 answer for hash maps (the kernel's internal ENOTSUPP)

// One read per connection: the entry is not needed again, and a reused 4-tuple gets a fresh one. One syscall
// where the kernel allows it, else a lookup and a delete.
bool take_origin(int fd, const podid_tuple& key, podid_origin& value) {
    if (g_lookup_and_delete.load(std::memory_order_relaxed)) {
        if (bpf_map_lookup_and_delete_elem(fd, &key, &value) == 0)
            return true;
        if (errno == ENOENT)
            return false;
        if (errno != EINVAL && errno != EOPNOTSUPP && errno != kKernelEnotsupp)
            return false;
        g_lookup_and_delete.store(false, std::memory_order_relaxed);  // older kernel: two calls from now on
    }
    if (bpf_map_lookup_elem(fd, &key, &value) != 0)
        return false;
    bpf_map_delete_elem(fd, &key);
    return true;
}

}  // namespace

std::optional<Origin> Datapath::origin_of(const sockaddr_storage& peer, const sockaddr_storage& local) const {
    podid_tuple key{};
    if (peer.ss_family == AF_INET && local.ss_family == AF_INET) {
        const auto& p = reinterpret_cast<const sockaddr_in&>(peer);
        const auto& l = reinterpret_cast<const sockaddr_in&>(local);
        key.peer_ip4 = p.sin_addr.s_addr;
        key.peer_port = p.sin_port;
        key.local_ip4 = l.sin_addr.s_addr;
        key.local_port = l.sin_port;
    } else if (peer.ss_family == AF_INET6 && local.ss_family == AF_INET6) {
        const auto& p = reinterpret_cast<const sockaddr_in6&>(peer);
        const auto& l = reinterpret_cast<const sockaddr_in6&>(local);
        if (!IN6_IS_ADDR_V4MAPPED(&p.sin6_addr) || !IN6_IS_ADDR_V4MAPPED(&l.sin6_addr))
            return std::nullopt;
        std::memcpy(&key.peer_ip4, &p.sin6_addr.s6_addr[12], 4);
        std::memcpy(&key.local_ip4, &l.sin6_addr.s6_addr[12], 4);
        key.peer_port = p.sin6_port;
        key.local_port = l.sin6_port;
    } else {
        return std::nullopt;
    }

    podid_origin value{};
    if (!take_origin(conn_origin_fd(), key, value))
        return std::nullopt;

    Origin o;
    o.cgroup_id = value.cgroup_id;
    o.pid = value.tgid;
    o.comm.assign(reinterpret_cast<const char*>(value.comm),
                  strnlen(reinterpret_cast<const char*>(value.comm), PODID_COMM_LEN));
    o.orig_dst = format_ip4(value.orig_dst_ip4) + ":" + std::to_string(ntohs(value.orig_dst_port));
    o.redirected = (value.flags & PODID_ORIGIN_REDIRECTED) != 0;
    o.connect_ns = value.connect_ns;
    return o;
}

namespace {
std::map<uint64_t, CgroupCounters> read_counters(int fd, int ncpus) {
    std::map<uint64_t, CgroupCounters> out;
    std::vector<podid_counters> percpu(static_cast<size_t>(ncpus));
    uint64_t key = 0, next = 0;
    uint64_t* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, percpu.data()) == 0) {
            CgroupCounters sum{};
            for (const auto& c : percpu)
                for (size_t i = 0; i < sum.size(); ++i)
                    sum[i] += c.count[i];
            out[next] = sum;
        }
        key = next;
        prev = &key;
    }
    return out;
}
}  // namespace

std::map<uint64_t, CgroupCounters> Datapath::counters() const {
    return read_counters(bpf_map__fd(skel_->maps.cgroup_stats), ncpus_);
}

Result<std::map<uint64_t, CgroupCounters>> Datapath::read_pinned_counters(const std::string& pin_dir) {
    std::string path = pin_dir + "/cgroup_stats";
    Fd fd(bpf_obj_get(path.c_str()));
    if (!fd.valid())
        return errno_error("cannot open the pinned counters " + path + " (is podid installed?)", errno);
    int ncpus = libbpf_num_possible_cpus();
    return read_counters(fd.get(), ncpus > 0 ? ncpus : 1);
}

std::optional<CgroupCounters> Datapath::counters_of(uint64_t cgroup_id) const {
    int fd = bpf_map__fd(skel_->maps.cgroup_stats);
    std::vector<podid_counters> percpu(static_cast<size_t>(ncpus_));
    if (bpf_map_lookup_elem(fd, &cgroup_id, percpu.data()) != 0)
        return std::nullopt;
    CgroupCounters sum{};
    for (const auto& c : percpu)
        for (size_t i = 0; i < sum.size(); ++i)
            sum[i] += c.count[i];
    return sum;
}

void Datapath::forget_cgroup(uint64_t cgroup_id) const {
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.cgroup_stats), &cgroup_id);
}

Result<void> Datapath::set_exempt(const std::vector<uint64_t>& cgroup_ids) const {
    int fd = bpf_map__fd(skel_->maps.exempt_cgroups);
    std::set<uint64_t> want(cgroup_ids.begin(), cgroup_ids.end());
    // Add before removing, so a cgroup that stays exempt is never briefly redirected.
    const uint8_t one = 1;
    for (uint64_t id : want) {
        if (bpf_map_update_elem(fd, &id, &one, BPF_ANY) != 0)
            return errno_error("cannot update the exempt cgroup set", errno);
    }
    for (uint64_t id : exempt()) {
        if (!want.count(id))
            bpf_map_delete_elem(fd, &id);
    }
    return {};
}

std::vector<uint64_t> Datapath::exempt() const {
    std::vector<uint64_t> ids;
    int fd = bpf_map__fd(skel_->maps.exempt_cgroups);
    uint64_t key = 0, next = 0;
    uint64_t* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        ids.push_back(next);
        key = next;
        prev = &key;
    }
    return ids;
}

}  // namespace podid
