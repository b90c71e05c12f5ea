#include "datapath/privileges.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace podid {
namespace {

// Older UAPI headers lack the two capabilities split off CAP_SYS_ADMIN in Linux 5.8.
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

const std::vector<CapabilityRequirement> kCapabilities = {
    {kCapBpf, "CAP_BPF", "to create maps, load programs and pin links", CAP_SYS_ADMIN},
    // The kernel asks for CAP_NET_ADMIN (or CAP_SYS_ADMIN) to load these program types; the interface guard's
    // netlink requests need CAP_NET_ADMIN itself.
    {CAP_NET_ADMIN, "CAP_NET_ADMIN",
     "to load the cgroup networking programs (cgroup_sock_addr, sock_ops, cgroup_skb) and add the interface guard's "
     "tc filters",
     -1},
    {kCapPerfmon, "CAP_PERFMON",
     "without which the verifier refuses the connect hooks' bpf_get_current_comm() (\"program of this type cannot "
     "use helper\")",
     CAP_SYS_ADMIN},
    {CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH",
     "for open_by_handle_at(2), which turns a caller's cgroup id into its cgroup path", -1},
};

bool has(uint64_t effective, int cap) { return cap >= 0 && ((effective >> cap) & 1U) != 0; }

}  // namespace

const std::vector<CapabilityRequirement>& required_capabilities() { return kCapabilities; }

std::string missing_capabilities_message(uint64_t effective) {
    std::string out;
    for (const auto& c : kCapabilities) {
        if (has(effective, c.cap) || has(effective, c.implied_by))
            continue;
        if (!out.empty())
            out += "; ";
        // "CAP_PERFMON" -> "PERFMON", the name a securityContext's capabilities.add takes.
        out += std::string("podid-agent lacks ") + c.name + ", " + c.why + ": add " + (c.name + 4) +
               " to the container's capabilities (deploy/base/daemonset.yaml)";
    }
    return out;
}

Result<uint64_t> effective_capabilities() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (syscall(SYS_capget, &header, data) != 0)
        return make_error(std::string("capget: ") + std::strerror(errno), errno);
    return (static_cast<uint64_t>(data[1].effective) << 32) | data[0].effective;
}

Result<void> check_privileges() {
    auto effective = effective_capabilities();
    if (!effective)
        return effective.error();
    std::string missing = missing_capabilities_message(*effective);
    if (missing.empty())
        return {};
    return make_error(missing, EPERM);
}

}  // namespace podid
