#include "netns_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmath>
#include <sstream>

#include "support/netns.h"

namespace podid::bench {
namespace {

int connected_socket(const std::string& netns, const std::string& ip, int port, std::chrono::milliseconds timeout) {
    int fd = -1;
    try {
        fd = test::socket_in_netns(netns, AF_INET, SOCK_STREAM);
    } catch (const std::exception&) {
        return -1;
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

bool tcp_connects(const std::string& netns, const std::string& ip, int port) {
    int fd = connected_socket(netns, ip, port, std::chrono::seconds(1));
    if (fd < 0)
        return false;
    ::close(fd);
    return true;
}

HttpGot http_get(const std::string& netns, const std::string& ip, int port, const std::string& path,
                 std::chrono::milliseconds timeout) {
    HttpGot got;
    int fd = connected_socket(netns, ip, port, timeout);
    if (fd < 0)
        return got;
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + ip + "\r\nConnection: close\r\n\r\n";
    if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
        ::close(fd);
        return got;
    }
    std::string raw;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0)
        raw.append(buf, static_cast<size_t>(n));
    ::close(fd);
    if (raw.compare(0, 5, "HTTP/") != 0)
        return got;
    got.status = std::atoi(raw.c_str() + raw.find(' ') + 1);
    auto body = raw.find("\r\n\r\n");
    if (body != std::string::npos)
        got.body = raw.substr(body + 4);
    // Chunked bodies are not decoded: the callers only look for whole lines in them.
    return got;
}

double prometheus_value(const std::string& exposition, const std::string& name) {
    std::istringstream in(exposition);
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 && line[name.size()] == ' ')
            return std::atof(line.c_str() + name.size() + 1);
    }
    return std::nan("");
}

}  // namespace podid::bench
