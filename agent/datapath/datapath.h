// The kernel side of podid from user space: load, configure, attach (or take over pinned links),
// read origin records and counters, uninstall.
//
// Lifecycle: open -> configure rodata -> load (reusing pinned maps) -> attach or bpf_link_update the
// pinned links. Links and maps are pinned under the pin directory, so the redirect outlives the agent:
// while it is down pods' connections are refused (fail closed), and a new agent swaps in its programs
// atomically (no window without a redirect).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/ip_text.h"
#include "common/result.h"
#include "datapath/origin.h"
#include "datapath/origin_source.h"
#include "podid/abi.h"

struct podid_bpf;

namespace podid {

// Where the origin of a redirected connection is recorded (bpf/podid.bpf.c). `automatic` picks from the task in
// sockops when the kernel allows it (sockops_reads_current_task(): 6.18 yes, 6.12 no), else the connect hook's socket
// storage. The other two force one, for tests and benchmarks; forcing `task` on a kernel without it is an error.
enum class OriginRecording { automatic, task, socket_storage };

struct DatapathConfig {
    std::string cgroup_root;  // absolute path of the cgroup the programs attach to (kubepods)
    std::string pin_dir = "/sys/fs/bpf/podid";
    uint32_t agent_ip4 = 0;  // network order: where pods are redirected (the node IP)
    uint16_t agent_port = PODID_DEFAULT_AGENT_PORT;
    std::vector<uint64_t> exempt_cgroups;  // besides the agent's own cgroup
    OriginRecording origin = OriginRecording::automatic;
    // Called after each program is attached or swapped in, with its name: lets tests check that connections
    // made between two link updates are still redirected and attributed. Unset in the agent.
    std::function<void(const std::string& program)> after_each_link;
};

// How each program ended up attached, for logs and `podidctl status`.
struct AttachReport {
    std::string program;
    std::string how;  // "attached", "updated pinned link", "re-attached (cgroup changed)", "re-attached (stale pin)"
};

using CgroupCounters = std::array<uint64_t, PODID_CTR_MAX>;

// Cumulative run statistics of one loaded program (the kernel counts only while BPF stats are enabled:
// sysctl kernel.bpf_stats_enabled=1, or an fd from bpf_enable_stats(BPF_STATS_RUN_TIME)).
struct ProgramRunStats {
    std::string program;
    uint64_t run_count = 0;
    uint64_t run_time_ns = 0;
};

class Datapath : public OriginSource {
public:
    ~Datapath() override;
    Datapath(Datapath&&) noexcept;
    Datapath& operator=(Datapath&&) noexcept;

    // Loads and attaches, taking over pins from an earlier agent. Requires root (CAP_BPF + CAP_NET_ADMIN +
    // CAP_SYS_ADMIN for cgroup attach and bpffs mount).
    static Result<Datapath> install(const DatapathConfig& config);

    // Detaches everything pinned under pin_dir and removes the pins (no agent needed).
    static Result<void> uninstall(const std::string& pin_dir);

    // The origin record of an accepted connection (looked up by its 4-tuple, then deleted), or nullopt
    // when the kernel recorded none (the connection did not come through the hooks).
    std::optional<Origin> origin_of(int accepted_fd) const;
    // The same for a connection whose addresses the caller already has (getpeername/getsockname).
    std::optional<Origin> origin_of(const sockaddr_storage& peer, const sockaddr_storage& local) const override;

    // Per-cgroup decision counters summed over CPUs.
    std::map<uint64_t, CgroupCounters> counters() const;
    // The same from the pinned map, without loading anything (podidctl, the demo).
    static Result<std::map<uint64_t, CgroupCounters>> read_pinned_counters(const std::string& pin_dir);
    std::optional<CgroupCounters> counters_of(uint64_t cgroup_id) const;
    // Drop a removed cgroup's counters (the LRU would age them out, this keeps the map small).
    void forget_cgroup(uint64_t cgroup_id) const;

    Result<void> set_exempt(const std::vector<uint64_t>& cgroup_ids) const;
    std::vector<uint64_t> exempt() const;

    const std::vector<AttachReport>& report() const { return report_; }
    // One row per attached program, in attach order (benchmarks and profiling).
    std::vector<ProgramRunStats> run_stats() const;
    const DatapathConfig& config() const { return config_; }
    // How origins are recorded after `automatic` was resolved: task or socket_storage.
    OriginRecording origin_recording() const { return origin_; }
    uint64_t cgroup_root_id() const { return cgroup_root_id_; }
    int conn_origin_fd() const;

private:
    Datapath() = default;
    std::unique_ptr<podid_bpf, void (*)(podid_bpf*)> skel_{nullptr, nullptr};
    DatapathConfig config_;
    uint64_t cgroup_root_id_ = 0;
    std::vector<AttachReport> report_;
    int ncpus_ = 1;
    OriginRecording origin_ = OriginRecording::socket_storage;
};

// "task" (sockops reads the connecting task) or "socket storage" (the connect hook's record), for logs and status.
const char* origin_recording_name(OriginRecording how);

// Stable names of the counter slots (enum podid_counter), used as metric label values and in docs;
// nullptr for a reserved or unused slot.
const char* counter_name(int slot);

// Names of the pins under the pin directory (maps and links), shared with `podidctl` and the tests.
std::vector<std::string> datapath_pin_names();

}  // namespace podid
