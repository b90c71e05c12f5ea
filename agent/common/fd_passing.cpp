#include "common/fd_passing.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace podid {

namespace {

Error errno_failure(const char* what, int err) {
    return make_error(std::string(what) + ": " + std::strerror(err), err);
}

}  // namespace

Result<void> send_line_with_fds(int socket, std::string_view line, const std::vector<int>& fds) {
    if (fds.size() > kMaxPassedFds)
        return make_error("too many descriptors for one message: " + std::to_string(fds.size()), EINVAL);
    std::string data(line);
    data.push_back('\n');
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)]{};
    std::size_t sent = 0;
    while (sent < data.size()) {
        iovec iov{data.data() + sent, data.size() - sent};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (sent == 0 && !fds.empty()) {
            msg.msg_control = control;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
            std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        }
        const ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pollfd p{socket, POLLOUT, 0};
                if (::poll(&p, 1, 5000) <= 0)
                    return make_error("sendmsg: the peer does not read", ETIMEDOUT);
                continue;
            }
            return errno_failure("sendmsg", errno);
        }
        sent += static_cast<std::size_t>(n);
    }
    return {};
}

Result<ReceivedLine> receive_line_with_fds(int socket, std::chrono::milliseconds timeout, std::size_t max_bytes) {
    ReceivedLine out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    for (;;) {
        // One byte at a time is not needed: the sender writes nothing after a line until it gets an answer, so
        // whatever arrives belongs to this line.
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return make_error("no answer within " + std::to_string(timeout.count()) + " ms", ETIMEDOUT);
        pollfd p{socket, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            return errno_failure("poll", errno);
        if (ready == 0)
            continue;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)]{};
        iovec iov{buf, sizeof buf};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0)
            return errno_failure("recvmsg", errno);
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd = -1;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                out.fds.emplace_back(fd);
            }
        }
        if (msg.msg_flags & MSG_CTRUNC)
            return make_error("more descriptors than expected were sent (truncated)", EMSGSIZE);
        if (n == 0)
            return make_error("the peer closed the connection before a whole message", ECONNRESET);
        out.line.append(buf, static_cast<std::size_t>(n));
        if (auto nl = out.line.find('\n'); nl != std::string::npos) {
            if (nl + 1 != out.line.size())
                return make_error("unexpected data after the message", EPROTO);
            out.line.resize(nl);
            return out;
        }
        if (out.line.size() > max_bytes)
            return make_error("message longer than " + std::to_string(max_bytes) + " bytes", EMSGSIZE);
    }
}

}  // namespace podid
