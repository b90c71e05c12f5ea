#include "common/unix_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace podid {

namespace {

bool fill_address(const std::string& path, sockaddr_un& addr) {
    if (path.size() >= sizeof(addr.sun_path))
        return false;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return true;
}

}  // namespace

Result<Fd> connect_unix(const std::string& path) {
    sockaddr_un addr{};
    if (!fill_address(path, addr))
        return make_error(
            "unix socket path " + path + " is longer than " + std::to_string(sizeof(addr.sun_path) - 1) + " bytes",
            ENAMETOOLONG);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return make_error(std::string("socket: ") + std::strerror(errno), errno);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
        return make_error("cannot connect to " + path + ": " + std::strerror(errno), errno);
    return fd;
}

bool unix_socket_answers(const std::string& path) { return connect_unix(path).ok(); }

Result<Fd> bind_unix_listener(const std::string& path, const std::string& what) {
    sockaddr_un addr{};
    if (!fill_address(path, addr))
        return make_error(
            what + " path " + path + " is longer than " + std::to_string(sizeof(addr.sun_path) - 1) + " bytes",
            ENAMETOOLONG);
    std::error_code fec;
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty() && !std::filesystem::exists(dir, fec)) {
        std::filesystem::create_directories(dir, fec);
        if (fec)
            return make_error("cannot create " + dir.string() + ": " + fec.message(), fec.value());
        ::chmod(dir.c_str(), 0700);
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return make_error(path + " exists and is not a socket; refusing to replace it", EEXIST);
        if (unix_socket_answers(path))
            return make_error("another process is serving " + path + " (a second agent on this node?)", EADDRINUSE);
        ::unlink(path.c_str());  // left by a process that was killed
    }
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return make_error("cannot create the " + what + ": " + std::strerror(errno), errno);
    // Created 0600 from the start: no window in which another user could connect before a chmod.
    const mode_t old = ::umask(0177);
    const int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    const int bind_errno = errno;
    ::umask(old);
    if (bound != 0)
        return make_error("cannot listen on " + path + ": " + std::strerror(bind_errno), bind_errno);
    if (::listen(fd.get(), 64) != 0)
        return make_error("cannot listen on " + path + ": " + std::strerror(errno), errno);
    return fd;
}

}  // namespace podid
