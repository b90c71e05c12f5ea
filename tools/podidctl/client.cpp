#include "client.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/unix_listener.h"

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
    auto connected = connect_unix(socket_path);
    if (!connected) {
        const int err = connected.error().code;
        std::string hint = err == ENOENT || err == ECONNREFUSED ? " (is podid-agent running?)"
                           : err == EACCES                      ? " (the admin socket is for root only)"
                                                                : "";
        return make_error(connected.error().message + hint, err);
    }
    const int fd = connected->get();
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
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
