#include "netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "spawn.h"

namespace podid::test {
namespace {

std::string netns_path(const std::string& name) { return "/run/netns/" + name; }

}  // namespace

void add_netns(const std::string& name) { run_checked({"ip", "netns", "add", name}); }

std::vector<pid_t> processes_in_netns(const std::string& name) {
    std::vector<pid_t> out;
    struct stat target {};
    if (::stat(netns_path(name).c_str(), &target) != 0)
        return out;
    DIR* proc = ::opendir("/proc");
    if (!proc)
        return out;
    pid_t self = ::getpid();
    while (dirent* e = ::readdir(proc)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end != '\0' || pid == self)
            continue;
        struct stat ns {};
        std::string path = std::string("/proc/") + e->d_name + "/ns/net";
        if (::stat(path.c_str(), &ns) == 0 && ns.st_dev == target.st_dev && ns.st_ino == target.st_ino)
            out.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(proc);
    return out;
}

bool delete_netns(const std::string& name) {
    if (::access(netns_path(name).c_str(), F_OK) != 0)
        return true;
    for (pid_t pid : processes_in_netns(name))
        ::kill(pid, SIGKILL);
    try {
        run_checked({"ip", "netns", "del", name});
    } catch (const std::exception& e) {
        std::cerr << "podid test node: " << e.what() << "\n";
    }
    return ::access(netns_path(name).c_str(), F_OK) != 0;
}

std::vector<std::string> list_netns() {
    std::vector<std::string> out;
    DIR* dir = ::opendir("/run/netns");
    if (!dir)
        return out;
    while (dirent* e = ::readdir(dir)) {
        std::string n = e->d_name;
        if (n != "." && n != "..")
            out.push_back(n);
    }
    ::closedir(dir);
    return out;
}

int socket_in_netns(const std::string& netns, int domain, int type) {
    int ns_fd = ::open(netns_path(netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0)
        throw std::runtime_error("open " + netns_path(netns) + ": " + std::strerror(errno));
    int fd = -1, err = 0;
    const char* step = "";
    std::thread([&] {
        if (::setns(ns_fd, CLONE_NEWNET) != 0) {
            err = errno;
            step = "setns";
            return;
        }
        fd = ::socket(domain, type | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            step = "socket";
        }
    }).join();
    ::close(ns_fd);
    if (fd < 0)
        throw std::runtime_error(std::string(step) + " in network namespace " + netns + ": " + std::strerror(err));
    return fd;
}

int listen_in_netns(const std::string& netns, const std::string& ip, uint16_t port, int type) {
    int fd = socket_in_netns(netns, AF_INET, type);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        (type == SOCK_STREAM && ::listen(fd, 1024) != 0)) {
        int err = errno;
        ::close(fd);
        throw std::runtime_error("cannot listen on " + ip + ":" + std::to_string(port) + " in netns " + netns + ": " +
                                 std::strerror(err));
    }
    return fd;
}

}  // namespace podid::test
