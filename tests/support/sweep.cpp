#include "sweep.h"

#include <net/if.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>

#include "cgroup_tree.h"
#include "mountinfo.h"
#include "netns.h"
#include "test_node.h"

namespace podid::test {
namespace fs = std::filesystem;
namespace {

const std::string kNamePrefix = "podid-t";

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

bool is_vp_link(const std::string& name) {
    if (name.size() < 3 || !starts_with(name, "vp"))
        return false;
    return name.find_first_not_of("0123456789", 2) == std::string::npos;
}

// A zombie still counts as alive: its parent has not reaped it, so its objects may be in use.
bool pid_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

std::vector<std::string> root_netns_links() {
    std::vector<std::string> out;
    if (struct if_nameindex* list = ::if_nameindex()) {
        for (struct if_nameindex* i = list; i->if_index != 0 && i->if_name; ++i)
            out.emplace_back(i->if_name);
        ::if_freenameindex(list);
    }
    return out;
}

std::string workdir_of(const std::string& prefix) { return "/tmp/" + prefix; }

}  // namespace

std::optional<pid_t> owner_pid(const std::string& name) {
    if (!starts_with(name, kNamePrefix))
        return std::nullopt;
    size_t digits_end = name.find_first_not_of("0123456789", kNamePrefix.size());
    if (digits_end == kNamePrefix.size())
        return std::nullopt;  // no digits
    if (digits_end != std::string::npos && name[digits_end] != '-')
        return std::nullopt;
    std::string digits = name.substr(kNamePrefix.size(), digits_end - kNamePrefix.size());
    if (digits.size() > 9)
        return std::nullopt;
    pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid <= 0)
        return std::nullopt;
    return pid;
}

std::vector<std::string> list_leftovers(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& ns : list_netns())
        if (starts_with(ns, prefix))
            out.push_back("netns " + ns);
    for (const auto& link : root_netns_links())
        if (starts_with(link, prefix) || is_vp_link(link))
            out.push_back("link in the root netns " + link);
    std::string mount = find_cgroup2_mount();
    if (!mount.empty() && ::access((mount + "/" + prefix).c_str(), F_OK) == 0)
        out.push_back("cgroup " + mount + "/" + prefix);
    for (const auto& m : mounts_under(workdir_of(prefix)))
        out.push_back("mount " + m);
    if (::access(workdir_of(prefix).c_str(), F_OK) == 0)
        out.push_back("directory " + workdir_of(prefix));
    return out;
}

bool remove_node_objects(const std::string& prefix, const std::string& cgroup2_mount) {
    bool clean = true;
    // The cgroup first: cgroup.kill reaches every process of the node's pods, wherever they forked to.
    if (!cgroup2_mount.empty())
        clean &= remove_cgroup_tree(cgroup2_mount + "/" + prefix);
    for (const auto& ns : list_netns())
        if (starts_with(ns, prefix + "-"))
            clean &= delete_netns(ns);
    std::string workdir = workdir_of(prefix);
    for (const auto& m : mounts_under(workdir)) {
        // MNT_DETACH: a bpffs still referenced (an open pin fd) must not block teardown.
        if (::umount2(m.c_str(), MNT_DETACH) != 0) {
            std::cerr << "podid test node: umount " << m << ": " << std::strerror(errno) << "\n";
            clean = false;
        }
    }
    if (!mounts_under(workdir).empty()) {
        // Never recurse into a still-mounted filesystem.
        std::cerr << "podid test node: " << workdir << " still has mounts; not removing it\n";
        return false;
    }
    std::error_code ec;
    fs::remove_all(workdir, ec);
    if (ec) {
        std::cerr << "podid test node: remove " << workdir << ": " << ec.message() << "\n";
        clean = false;
    }
    return clean;
}

void sweep_dead_nodes(const std::string& cgroup2_mount, std::optional<pid_t> self) {
    std::set<pid_t> owners;
    for (const auto& ns : list_netns())
        if (auto pid = owner_pid(ns))
            owners.insert(*pid);
    std::error_code ec;
    if (!cgroup2_mount.empty())
        for (fs::directory_iterator it(cgroup2_mount, ec), end; !ec && it != end; it.increment(ec))
            if (auto pid = owner_pid(it->path().filename().string()))
                owners.insert(*pid);
    for (fs::directory_iterator it("/tmp", ec), end; !ec && it != end; it.increment(ec))
        if (auto pid = owner_pid(it->path().filename().string()))
            owners.insert(*pid);
    for (const auto& m : read_mountinfo()) {
        if (!starts_with(m.mount_point, "/tmp/" + kNamePrefix))
            continue;
        std::string first = m.mount_point.substr(5, m.mount_point.find('/', 5) - 5);
        if (auto pid = owner_pid(first))
            owners.insert(*pid);
    }

    for (pid_t pid : owners) {
        if (pid != self && pid_alive(pid))
            continue;
        std::string prefix = kNamePrefix + std::to_string(pid);
        if (pid != self)
            std::cerr << "podid test node: removing leftovers of dead test process " << pid << "\n";
        remove_node_objects(prefix, cgroup2_mount);
    }
}

}  // namespace podid::test
