#include "caller/own_cgroup.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/fd.h"
#include "common/ip_text.h"

namespace podid {

// The cgroups named with --exempt-cgroup.
Result<std::vector<uint64_t>> exempt_cgroup_ids(const std::vector<std::string>& cgroups, CgroupPathResolver& paths) {
    std::vector<uint64_t> ids;
    for (const auto& p : cgroups) {
        uint64_t id = paths.id_of(p);
        if (id == 0)
            return make_error("--exempt-cgroup: " + p + " does not exist under " + paths.mount(), ENOENT);
        ids.push_back(id);
    }
    return ids;
}

// The agent's own cgroup id from /proc/self/cgroup, or 0 when that names the cgroup namespace root
// ("0::/"): containerd and CRI-O give non-privileged containers on cgroup v2 a cgroup namespace of
// their own, so the path says nothing about where the agent sits in the host's hierarchy.
uint64_t own_cgroup_id_from_proc(CgroupPathResolver& paths) {
    std::string own = own_cgroup_path();
    if (own.empty() || own == "/")
        return 0;
    return paths.id_of(own);
}

// Asks the kernel instead: connect to 169.254.169.254:80 from this process before it is exempt. If the
// agent sits under the cgroup root the connect is redirected to node-ip:port, and the origin record
// names the agent's cgroup exactly as the programs see it. If it is not redirected, the agent is
// outside the cgroup root and needs no exemption (the connection is closed without sending anything).
Result<uint64_t> own_cgroup_id_from_redirect(const Datapath& dp, const std::string& node_ip, uint16_t port) {
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(port);
    local.sin_addr.s_addr = *parse_ip4(node_ip);
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
        ::listen(listener.get(), 16) != 0)
        return make_error("cannot listen on " + node_ip + ":" + std::to_string(port) + ": " + std::strerror(errno),
                          errno);
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in imds{};
    imds.sin_family = AF_INET;
    imds.sin_port = htons(80);
    imds.sin_addr.s_addr = htonl(PODID_METADATA_IP4_HOST);
    ::connect(client.get(), reinterpret_cast<sockaddr*>(&imds), sizeof(imds));  // EINPROGRESS
    // A pod may connect at the same moment; keep accepting until our own connection shows up.
    sockaddr_in client_addr{};
    socklen_t len = sizeof(client_addr);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{listener.get(), POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        Fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn.valid())
            continue;
        sockaddr_in peer{};
        socklen_t plen = sizeof(peer);
        ::getpeername(conn.get(), reinterpret_cast<sockaddr*>(&peer), &plen);
        ::getsockname(client.get(), reinterpret_cast<sockaddr*>(&client_addr), &len);
        auto origin = dp.origin_of(conn.get());
        // Matched by port, not pid: in a container the kernel's pid (init namespace) differs from getpid().
        if (peer.sin_port == client_addr.sin_port && origin)
            return origin->cgroup_id;
    }
    return uint64_t{0};
}

}  // namespace podid
