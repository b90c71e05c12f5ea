#include "accept_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "support/netns.h"

namespace podid::bench {

AcceptCloseServer::AcceptCloseServer(const std::string& netns, const std::string& ip,
                                     const std::vector<uint16_t>& ports) {
    for (uint16_t port : ports) {
        int fd = test::listen_in_netns(netns, ip, port, SOCK_STREAM);
        ::listen(fd, 4096);  // a deeper backlog than the helper's default: a burst of SYNs must not drop
        listeners_.push_back(fd);
    }
    for (int fd : listeners_) {
        threads_.emplace_back([this, fd] {
            while (!stopping_) {
                int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (conn < 0) {
                    if (errno == EINTR || errno == ECONNABORTED)
                        continue;
                    return;  // shut down
                }
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
