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

// Asks the kernel instead: connect to 169.254.169.254:80 from this process before it is exempt. If the agent sits
// under the cgroup root the connect is redirected to node-ip:port, where the agent's own serving listener already
// listens, the handshake completes in its accept queue, and the origin record of the 4-tuple names the agent's
// cgroup exactly as the programs see it. Nothing is accepted here: pods connecting meanwhile wait in the queue and
// are served once the I/O threads run (the server later finds this connection closed). If the connect is not
// redirected the record is absent: the agent is outside the cgroup root and needs no exemption (the connection is
// closed without sending anything), known as soon as the handshake ends, not after a deadline.
Result<uint64_t> own_cgroup_id_from_redirect(const Datapath& dp, const std::string& node_ip, uint16_t port) {
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!client.valid())
        return make_error(std::string("socket: ") + std::strerror(errno), errno);
    sockaddr_in imds{};
    imds.sin_family = AF_INET;
    imds.sin_port = htons(80);
    imds.sin_addr.s_addr = htonl(PODID_METADATA_IP4_HOST);
    if (::connect(client.get(), reinterpret_cast<sockaddr*>(&imds), sizeof(imds)) != 0 && errno != EINPROGRESS)
        return uint64_t{0};  // refused or unreachable at once: not redirected (a redirect lands on our listener)
    // A redirected handshake ends in microseconds (our own listener); one that goes to the real IMDS in
    // milliseconds. Seconds mean a SYN lost in a full accept queue, retried by the kernel.
    pollfd p{client.get(), POLLOUT, 0};
    if (::poll(&p, 1, 5000) <= 0)
        return make_error(
            "the agent's own probe connection to 169.254.169.254:80 did not complete in 5 s: cannot tell "
            "whether it is redirected",
            ETIMEDOUT);
    sockaddr_storage mine{};
    socklen_t len = sizeof(mine);
    if (::getsockname(client.get(), reinterpret_cast<sockaddr*>(&mine), &len) != 0)
        return make_error(std::string("getsockname: ") + std::strerror(errno), errno);
    sockaddr_storage listener{};
    auto* l = reinterpret_cast<sockaddr_in*>(&listener);
    l->sin_family = AF_INET;
    l->sin_port = htons(port);
    l->sin_addr.s_addr = *parse_ip4(node_ip);
    // As the listener's side sees the connection: the peer is our end, the local end the serving address.
    std::optional<Origin> origin = dp.origin_of(mine, listener);
    return origin ? origin->cgroup_id : uint64_t{0};
}

}  // namespace podid
