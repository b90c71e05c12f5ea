#include "client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace podid::ctl {

Result<AdminReply> parse_admin_reply(const std::string& raw) {
    // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
    if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12)
        return make_error("the admin socket did not answer HTTP (is it a podid agent?)", EPROTO);
    AdminReply reply;
    reply.status = std::atoi(raw.c_str() + 9);
    auto head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos)
        return make_error("truncated answer from the agent", EPROTO);
    std::string body = raw.substr(head_end + 4);
    reply.body = nlohmann::json::parse(body, nullptr, false);
    if (reply.body.is_discarded())
        return make_error("the agent answered " + std::to_string(reply.status) + " with a body that is not JSON",
                          EPROTO);
    return reply;
}

Result<AdminReply> admin_get(const std::string& socket_path, const std::string& target) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return make_error(std::string("socket: ") + std::strerror(errno), errno);
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof(addr.sun_path))
        return make_error("socket path too long: " + socket_path, ENAMETOOLONG);
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        int err = errno;
        std::string hint = err == ENOENT || err == ECONNREFUSED ? " (is podid-agent running?)"
                           : err == EACCES                      ? " (the admin socket is for root only)"
                                                                : "";
        return make_error("cannot connect to " + socket_path + ": " + std::strerror(err) + hint, err);
    }
    std::string req =
        "GET " + target + " HTTP/1.1\r\nHost: podid\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
    for (size_t off = 0; off < req.size();) {
        ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n <= 0)
            return make_error(std::string("sending to the agent: ") + std::strerror(errno), errno);
        off += static_cast<size_t>(n);
    }
    std::string raw;
    char buf[65536];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return make_error(std::string("reading the agent's answer: ") +
                                  (errno == EAGAIN ? "timed out after 10 s" : std::strerror(errno)),
                              errno);
        }
        raw.append(buf, static_cast<size_t>(n));
    }
    return parse_admin_reply(raw);
}

}  // namespace podid::ctl
