#include "accept_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "support/netns.h"

namespace podid::bench {

AcceptCloseServer::AcceptCloseServer(const std::string& netns, const std::string& ip,
                                     const std::vector<uint16_t>& ports, std::map<uint16_t, OnAccept> on_accept) {
    std::vector<OnAccept> hooks;
    for (uint16_t port : ports) {
        int fd = test::listen_in_netns(netns, ip, port, SOCK_STREAM);
        ::listen(fd, 4096);  // a deeper backlog than the helper's default: a burst of SYNs must not drop
        listeners_.push_back(fd);
        auto hook = on_accept.find(port);
        hooks.push_back(hook == on_accept.end() ? OnAccept{} : hook->second);
    }
    for (size_t i = 0; i < listeners_.size(); ++i) {
        int fd = listeners_[i];
        sockaddr_storage local{};
        socklen_t llen = sizeof(local);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen);
        threads_.emplace_back([this, fd, local, hook = std::move(hooks[i])] {
            while (!stopping_) {
                sockaddr_storage peer{};
                socklen_t plen = sizeof(peer);
                int conn = ::accept4(fd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
                if (conn < 0) {
                    if (errno == EINTR || errno == ECONNABORTED)
                        continue;
                    return;  // shut down
                }
                if (hook)
                    hook(peer, local);
                // Closing first sends the FIN the client waits for; the client then resets (no TIME_WAIT).
                ::close(conn);
                ++accepted_;
            }
        });
    }
}

AcceptCloseServer::~AcceptCloseServer() {
    stopping_ = true;
    for (int fd : listeners_)
        ::shutdown(fd, SHUT_RDWR);  // wakes the blocked accept with EINVAL
    for (auto& t : threads_)
        t.join();
    for (int fd : listeners_)
        ::close(fd);
}

}  // namespace podid::bench
