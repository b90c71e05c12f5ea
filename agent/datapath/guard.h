// The interface guard: bpf/podid_guard.bpf.c as a tc ingress filter on the host side of every pod interface, so
// frames a pod writes with an AF_PACKET socket (below every cgroup hook) cannot reach 169.254.169.254 either.
//
// Which interfaces: by default every interface of kind "veth" in the agent's network namespace (the host side
// of pod interfaces with Azure CNI, kubenet, Calico, Cilium), or the names matching --guard-interfaces globs.
// New interfaces are guarded as rtnetlink announces them (CNI creates a pod's veth before its containers start).
// The filter has a fixed handle and priority: a restarted agent replaces its own filter in place, uninstall
// removes exactly it, and tc keeps it in force while no agent runs (fail closed).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "datapath/netlink_links.h"
#include "podid/abi.h"

struct podid_guard_bpf;

namespace podid {

using GuardCounters = std::array<uint64_t, PODID_GUARD_CTR_MAX>;

// Which interfaces to guard: {"veth"} selects by kind (the default), anything else are fnmatch globs over
// interface names ("azv*", "cali*"). "none" is handled by the caller (no guard at all).
struct GuardSelector {
    bool all_veth = true;
    std::vector<std::string> globs;
    bool matches(const std::string& name, const std::string& kind) const;
};

// "veth" | "none" | comma-separated globs. Error on empty entries.
Result<GuardSelector> parse_guard_selector(const std::string& text);

class InterfaceGuard {
public:
    ~InterfaceGuard();

    // Loads the program, reusing the counters pinned as <pin_dir>/guard_stats by an earlier agent.
    static Result<std::unique_ptr<InterfaceGuard>> load(const std::string& pin_dir, GuardSelector selector);

    // Attaches to every matching interface that exists now. Errors name the interface; the others stay guarded.
    Result<size_t> attach_existing();
    // Follows RTM_NEWLINK / RTM_DELLINK on `io`, then guards every matching interface that exists (subscribing
    // first, so none created meanwhile is missed) and each new one.
    Result<void> watch(boost::asio::io_context& io);
    void stop();

    std::vector<std::string> guarded() const;  // interface names, sorted
    GuardCounters counters() const;

    // From the pin, without loading anything (podidctl).
    static Result<GuardCounters> read_pinned_counters(const std::string& pin_dir);
    // Removes the guard filter from every interface in this namespace and the counters pin (podid-agent
    // uninstall). Returns how many filters were removed.
    static Result<size_t> uninstall(const std::string& pin_dir);

    // Public for tests: attach to one interface (idempotent: replaces our own filter).
    Result<void> attach(int ifindex, const std::string& name);

private:
    InterfaceGuard() = default;
    void on_event(const LinkEvent& e);

    std::unique_ptr<podid_guard_bpf, void (*)(podid_guard_bpf*)> skel_{nullptr, nullptr};
    GuardSelector selector_;
    mutable std::mutex mu_;
    std::map<int, std::string> guarded_;  // ifindex -> name
    struct Watcher;
    std::shared_ptr<Watcher> watcher_;
    int ncpus_ = 1;
};

const char* guard_counter_name(int slot);  // "drop_ipv4", "drop_ipv6", nullptr for unused slots

}  // namespace podid
