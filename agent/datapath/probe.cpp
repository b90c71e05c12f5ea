#include "datapath/probe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "common/cgroupfs.h"
#include "common/fd.h"
#include "datapath/privileges.h"

namespace podid {
namespace {

// Minimum versions are the upstream release that first had the feature for that program type. They are only used
// in messages: the probes ask the kernel, because distribution kernels backport.
const std::vector<FeatureRequirement> kRequirements = {
    {ProbeKind::cgroup2, "a mounted cgroup v2 (unified) hierarchy", "4.5"},
    {ProbeKind::prog_type, "BPF_PROG_TYPE_CGROUP_SKB", "4.10", BPF_PROG_TYPE_CGROUP_SKB},
    {ProbeKind::prog_type, "BPF_PROG_TYPE_SOCK_OPS", "4.13", BPF_PROG_TYPE_SOCK_OPS},
    {ProbeKind::prog_type, "BPF_PROG_TYPE_CGROUP_SOCK_ADDR", "4.17", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 0,
     BPF_CGROUP_INET4_CONNECT},
    {ProbeKind::map_type, "BPF_MAP_TYPE_HASH", "3.19", BPF_MAP_TYPE_HASH},
    {ProbeKind::map_type, "BPF_MAP_TYPE_LRU_HASH", "4.10", BPF_MAP_TYPE_LRU_HASH},
    {ProbeKind::map_type, "BPF_MAP_TYPE_LRU_PERCPU_HASH", "4.10", BPF_MAP_TYPE_LRU_PERCPU_HASH},
    {ProbeKind::map_type, "BPF_MAP_TYPE_SK_STORAGE", "5.2", BPF_MAP_TYPE_SK_STORAGE},
    {ProbeKind::helper, "the bpf_get_current_cgroup_id helper in cgroup/connect programs", "5.7",
     BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_cgroup_id},
    {ProbeKind::helper, "the bpf_get_current_pid_tgid helper in cgroup/connect programs", "5.7",
     BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_pid_tgid},
    {ProbeKind::helper, "the bpf_get_current_comm helper in cgroup/connect programs", "5.7",
     BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_comm},
    {ProbeKind::helper, "the bpf_ktime_get_ns helper in cgroup/connect programs", "4.17",
     BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_ktime_get_ns},
    {ProbeKind::helper, "the bpf_sk_storage_get helper in cgroup/connect programs", "5.8",
     BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_sk_storage_get},
    {ProbeKind::ctx_field, "the sk field of bpf_sock_addr (socket storage from cgroup/connect)", "5.8",
     BPF_PROG_TYPE_CGROUP_SOCK_ADDR, static_cast<int>(offsetof(bpf_sock_addr, sk)), BPF_CGROUP_INET4_CONNECT},
    {ProbeKind::helper, "the bpf_sk_storage_get helper in sockops programs", "5.3", BPF_PROG_TYPE_SOCK_OPS,
     BPF_FUNC_sk_storage_get},
    {ProbeKind::ctx_field, "the sk field of bpf_sock_ops (socket storage from sockops)", "5.10", BPF_PROG_TYPE_SOCK_OPS,
     static_cast<int>(offsetof(bpf_sock_ops, sk))},
    {ProbeKind::helper, "the bpf_skb_load_bytes helper in cgroup_skb programs", "4.10", BPF_PROG_TYPE_CGROUP_SKB,
     BPF_FUNC_skb_load_bytes},
    {ProbeKind::helper, "the bpf_skb_cgroup_id helper in cgroup_skb programs", "4.18", BPF_PROG_TYPE_CGROUP_SKB,
     BPF_FUNC_skb_cgroup_id},
    {ProbeKind::helper, "the bpf_sk_fullsock helper in cgroup_skb programs", "5.1", BPF_PROG_TYPE_CGROUP_SKB,
     BPF_FUNC_sk_fullsock},
    {ProbeKind::ctx_field, "the sk field of __sk_buff in cgroup_skb programs", "5.1", BPF_PROG_TYPE_CGROUP_SKB,
     static_cast<int>(offsetof(__sk_buff, sk)), BPF_CGROUP_INET_EGRESS},
    {ProbeKind::cgroup_link, "bpf_link attachment to cgroups (BPF_LINK_CREATE)", "5.7", BPF_CGROUP_INET_EGRESS},
    {ProbeKind::attach_type, "the cgroup/connect4 attach type", "4.17", BPF_CGROUP_INET4_CONNECT},
    {ProbeKind::attach_type, "the cgroup/connect6 attach type", "4.17", BPF_CGROUP_INET6_CONNECT},
    {ProbeKind::attach_type, "the cgroup/getpeername4 attach type", "5.8", BPF_CGROUP_INET4_GETPEERNAME},
    {ProbeKind::attach_type, "the cgroup/getpeername6 attach type", "5.8", BPF_CGROUP_INET6_GETPEERNAME},
};

// The row a report holds alone when a capability is missing (datapath/privileges.h names which).
const FeatureRequirement kPrivileges{ProbeKind::privileges, "the capabilities podid-agent needs", "5.8"};

// The BPF instructions the probes need; linux/bpf.h has the encodings but no constructors.
bpf_insn mov64_imm(uint8_t dst, int32_t imm) {
    return bpf_insn{static_cast<uint8_t>(BPF_ALU64 | BPF_MOV | BPF_K), dst, 0, 0, imm};
}
bpf_insn ldx_dw(uint8_t dst, uint8_t src, int16_t off) {
    return bpf_insn{static_cast<uint8_t>(BPF_LDX | BPF_MEM | BPF_DW), dst, src, off, 0};
}
bpf_insn exit_insn() { return bpf_insn{static_cast<uint8_t>(BPF_JMP | BPF_EXIT), 0, 0, 0, 0}; }

std::string errno_text(int err) { return std::string(std::strerror(err)); }

// The program type a cgroup attach type needs.
bpf_prog_type prog_type_for(bpf_attach_type attach) {
    switch (attach) {
    case BPF_CGROUP_INET_INGRESS:
    case BPF_CGROUP_INET_EGRESS: return BPF_PROG_TYPE_CGROUP_SKB;
    case BPF_CGROUP_SOCK_OPS: return BPF_PROG_TYPE_SOCK_OPS;
    default: return BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
    }
}

// Loads "r0 = 1; exit" (optionally reading one 8-byte ctx field first). Returns the fd or -errno.
int load_trivial(bpf_prog_type type, bpf_attach_type expected, int ctx_offset = -1) {
    std::vector<bpf_insn> insns;
    if (ctx_offset >= 0)
        insns.push_back(ldx_dw(BPF_REG_2, BPF_REG_1, static_cast<int16_t>(ctx_offset)));
    insns.push_back(mov64_imm(BPF_REG_0, 1));
    insns.push_back(exit_insn());
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = expected);
    int fd = bpf_prog_load(type, "podid_probe", "GPL", insns.data(), insns.size(), &opts);
    return fd < 0 ? -errno : fd;
}

// Where the throwaway cgroup goes when the caller names no parent: the kubepods cgroup where kubelet makes it on a
// node, else the mount. The agent writes below kubepods anyway (its self-check cgroup); the cgroup2 root is mode
// 0555, so creating a cgroup there needs CAP_DAC_OVERRIDE, which the DaemonSet does not grant.
std::string default_probe_parent(const std::string& mount) {
    for (const char* name : {"/kubepods.slice", "/kubepods"}) {
        struct stat st {};
        if (stat((mount + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
            return mount + name;
    }
    return mount;
}

// A cgroup made for the attach probes and removed afterwards, so no real workload ever runs a probe program.
class ThrowawayCgroup {
public:
    static Result<ThrowawayCgroup> create(const std::string& parent_in) {
        std::string parent = parent_in;
        if (parent.empty()) {
            auto mount = find_cgroup2_mount();
            if (!mount)
                return mount.error();
            parent = default_probe_parent(*mount);
        }
        ThrowawayCgroup cg;
        cg.path_ = parent + "/podid-probe-" + std::to_string(getpid());
        if (mkdir(cg.path_.c_str(), 0755) != 0 && errno != EEXIST) {
            int err = errno;
            cg.path_.clear();
            return make_error("cannot create the probe cgroup " + parent + "/podid-probe-" + std::to_string(getpid()) +
                                  ": " + errno_text(err) +
                                  (err == EACCES || err == EROFS
                                       ? " (the agent needs that cgroup directory writable, as the DaemonSet "
                                         "mounts /sys/fs/cgroup)"
                                       : ""),
                              err);
        }
        cg.fd_ = Fd(open(cg.path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!cg.fd_.valid())
            return make_error("cannot open the probe cgroup " + cg.path_ + ": " + errno_text(errno), errno);
        return cg;
    }
    ThrowawayCgroup(ThrowawayCgroup&& other) noexcept
        : path_(std::exchange(other.path_, {})), fd_(std::move(other.fd_)) {}
    ThrowawayCgroup& operator=(ThrowawayCgroup&&) = delete;
    ~ThrowawayCgroup() {
        fd_.reset();
        if (!path_.empty())
            rmdir(path_.c_str());
    }
    int fd() const { return fd_.get(); }

private:
    ThrowawayCgroup() = default;
    std::string path_;
    Fd fd_;
};

// 1 supported, 0 missing, <0 could not tell (-errno).
int probe_attach(const ThrowawayCgroup& cg, bpf_attach_type attach) {
    int prog = load_trivial(prog_type_for(attach), attach);
    if (prog < 0)
        return prog == -EINVAL ? 0 : prog;  // EINVAL: the kernel does not know the expected attach type
    Fd prog_fd(prog);
    Fd link(bpf_link_create(prog_fd.get(), cg.fd(), attach, nullptr));
    if (link.valid())
        return 1;
    int err = errno;
    // 524 is the kernel's internal ENOTSUPP, which leaks to user space from some attach paths.
    return (err == EINVAL || err == 524 || err == EOPNOTSUPP) ? 0 : -err;
}

int run_probe(const FeatureRequirement& r, const Result<ThrowawayCgroup>* cg) {
    switch (r.kind) {
    case ProbeKind::cgroup2: return find_cgroup2_mount().ok() ? 1 : 0;
    case ProbeKind::privileges: return check_privileges().ok() ? 1 : -EPERM;
    case ProbeKind::prog_type:
        if (r.attach != 0) {
            // libbpf 1.1 loads sock_addr probes without an expected attach type, which the kernel refuses.
            int fd = load_trivial(static_cast<bpf_prog_type>(r.type), static_cast<bpf_attach_type>(r.attach));
            if (fd >= 0)
                close(fd);
            return fd >= 0 ? 1 : (fd == -EINVAL ? 0 : fd);
        }
        return libbpf_probe_bpf_prog_type(static_cast<bpf_prog_type>(r.type), nullptr);
    case ProbeKind::map_type: return libbpf_probe_bpf_map_type(static_cast<bpf_map_type>(r.type), nullptr);
    case ProbeKind::helper:
        return libbpf_probe_bpf_helper(static_cast<bpf_prog_type>(r.type), static_cast<bpf_func_id>(r.helper), nullptr);
    case ProbeKind::ctx_field: {
        int fd = load_trivial(static_cast<bpf_prog_type>(r.type), static_cast<bpf_attach_type>(r.attach), r.helper);
        if (fd >= 0)
            close(fd);
        // EACCES: the verifier refused the context access (the field is newer than this kernel).
        return fd >= 0 ? 1 : ((fd == -EACCES || fd == -EINVAL) ? 0 : fd);
    }
    case ProbeKind::cgroup_link:
    case ProbeKind::attach_type:
        if (!cg->ok())
            return -(cg->error().code ? cg->error().code : EINVAL);
        return probe_attach(cg->value(), static_cast<bpf_attach_type>(r.type));
    }
    return -EINVAL;
}

}  // namespace

const std::vector<FeatureRequirement>& kernel_requirements() { return kRequirements; }

std::string missing_feature_message(const FeatureRequirement& r) {
    if (r.kind == ProbeKind::cgroup2)
        return std::string("the node has no cgroup v2 hierarchy mounted (podid needs the unified hierarchy, Linux ") +
               r.min_kernel + "+, and a node booted with cgroup v2)";
    return std::string("the kernel lacks ") + r.what + " (Linux " + r.min_kernel + "+)";
}

std::vector<FeatureResult> probe_kernel_features_report(const std::string& probe_cgroup_parent) {
    // Without a capability every probe below fails with EPERM: say which one instead.
    if (auto privileges = check_privileges(); !privileges)
        return {FeatureResult{&kPrivileges, false, privileges.error().message}};
    // A missing cgroup v2 shows up as its own requirement.
    auto cg = ThrowawayCgroup::create(probe_cgroup_parent);
    std::vector<FeatureResult> results;
    bool cgroup_reported = false;
    for (const auto& r : kRequirements) {
        FeatureResult result{&r, false, ""};
        const bool needs_cgroup = r.kind == ProbeKind::cgroup_link || r.kind == ProbeKind::attach_type;
        if (needs_cgroup && !cg.ok()) {
            // One sentence for all the attach probes, which share the cgroup they could not get.
            if (cgroup_reported)
                continue;
            cgroup_reported = true;
            result.detail = "cannot probe the cgroup attach types: " + cg.error().message;
            results.push_back(std::move(result));
            continue;
        }
        int rc = run_probe(r, &cg);
        if (rc > 0) {
            result.ok = true;
            result.detail = "ok";
        } else if (rc == 0) {
            result.detail = missing_feature_message(r);
        } else {
            result.detail = "cannot probe " + std::string(r.what) + ": " + errno_text(-rc);
        }
        results.push_back(std::move(result));
    }
    return results;
}

bool sockops_reads_current_task() {
    // A program shaped like podid_sockops_task's use of the helpers, comm into a stack buffer included: libbpf's
    // helper probe calls each helper with zero arguments and reads most refusals as "supported", and 6.12 allows
    // the cgroup id and pid in sockops but refuses comm ("program of this type cannot use helper").
    const auto call = [](int32_t helper) {
        return bpf_insn{static_cast<uint8_t>(BPF_JMP | BPF_CALL), 0, 0, 0, helper};
    };
    const bpf_insn insns[] = {
        call(BPF_FUNC_get_current_cgroup_id),
        call(BPF_FUNC_get_current_pid_tgid),
        bpf_insn{static_cast<uint8_t>(BPF_ALU64 | BPF_MOV | BPF_X), BPF_REG_1, BPF_REG_10, 0, 0},  // r1 = fp
        bpf_insn{static_cast<uint8_t>(BPF_ALU64 | BPF_ADD | BPF_K), BPF_REG_1, 0, 0, -16},         // r1 -= 16
        mov64_imm(BPF_REG_2, 16),
        call(BPF_FUNC_get_current_comm),
        mov64_imm(BPF_REG_0, 1),
        exit_insn(),
    };
    Fd fd(
        bpf_prog_load(BPF_PROG_TYPE_SOCK_OPS, "podid_probe", "GPL", insns, sizeof(insns) / sizeof(insns[0]), nullptr));
    return fd.valid();
}

Result<void> probe_kernel_features(const std::string& probe_cgroup_parent) {
    std::string missing;
    for (const auto& r : probe_kernel_features_report(probe_cgroup_parent)) {
        if (r.ok)
            continue;
        if (!missing.empty())
            missing += "; ";
        missing += r.detail;
    }
    if (missing.empty())
        return {};
    return make_error(missing);
}

}  // namespace podid
