#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "client/client.h"

namespace podid::bench {

std::string hop_to(const std::string& cgroup_dir) {
    // Writing "0" moves the writer itself; the connect hook reads the task's cgroup at connect() time.
    std::ofstream procs(cgroup_dir + "/cgroup.procs");
    procs << "0" << std::flush;
    if (!procs)
        return "cannot move into " + cgroup_dir + ": " + std::strerror(errno);
    return {};
}

int connect_to(const std::string& ip, uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        int saved = errno;
        ::close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

void close_with_reset(int fd) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::close(fd);
}

std::string token_request(const std::string& path_and_query) {
    return "GET " + path_and_query +
           " HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\nUser-Agent: podid-bench\r\n"
           "Connection: close\r\n\r\n";
}

int parse_status(const std::string& response) {
    // "HTTP/1.1 200 OK"
    if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0)
        return 0;
    auto sp = response.find(' ');
    if (sp == std::string::npos)
        return 0;
    return std::atoi(response.c_str() + sp + 1);
}

int read_status_until_close(int fd) {
    std::string got;
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n > 0) {
            got.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    return parse_status(got);
}

int64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace podid::bench
