#include "cgroup_tree.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "test_node.h"

namespace podid::test {
namespace fs = std::filesystem;
namespace {

bool write_file(const std::string& path, const std::string& value) {
    std::ofstream out(path);
    out << value;
    out.flush();
    return static_cast<bool>(out);
}

// cgroup.events "populated" covers the whole subtree, so one read answers "is anything left below".
bool populated(const std::string& dir) {
    std::ifstream in(dir + "/cgroup.events");
    std::string key;
    int value = 0;
    while (in >> key >> value)
        if (key == "populated")
            return value != 0;
    return false;  // gone
}

// Post-order: children before parents, the order rmdir needs.
std::vector<std::string> subtree_dirs(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code type_ec;
        if (it->is_directory(type_ec) && !it->is_symlink(type_ec)) {
            auto below = subtree_dirs(it->path().string());
            out.insert(out.end(), below.begin(), below.end());
        }
    }
    out.push_back(dir);
    return out;
}

void kill_listed_pids(const std::string& dir) {
    for (const auto& d : subtree_dirs(dir)) {
        std::ifstream in(d + "/cgroup.procs");
        pid_t pid = 0;
        while (in >> pid)
            if (pid > 0)
                ::kill(pid, SIGKILL);
    }
}

}  // namespace

uint64_t cgroup_id_of(const std::string& cgroup_dir) {
    struct stat st {};
    if (::stat(cgroup_dir.c_str(), &st) != 0)
        throw std::runtime_error("stat " + cgroup_dir + ": " + std::strerror(errno));
    return static_cast<uint64_t>(st.st_ino);
}

void make_cgroup_dirs(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        throw std::runtime_error("cannot create cgroup " + dir + ": " + ec.message());
}

bool kill_cgroup_tree(const std::string& dir, std::chrono::milliseconds timeout) {
    if (::access(dir.c_str(), F_OK) != 0)
        return true;
    bool has_kill = ::access((dir + "/cgroup.kill").c_str(), W_OK) == 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        // Repeated because without cgroup.kill a forking process can add pids between the read and the kill.
        if (has_kill)
            write_file(dir + "/cgroup.kill", "1");
        else
            kill_listed_pids(dir);
        if (!populated(dir))
            return true;
        if (std::chrono::steady_clock::now() >= deadline) {
            std::cerr << "podid test node: processes still in " << dir << " after SIGKILL\n";
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

bool remove_cgroup_tree(const std::string& dir) {
    if (::access(dir.c_str(), F_OK) != 0)
        return true;
    kill_cgroup_tree(dir);
    for (const auto& d : subtree_dirs(dir)) {
        // A task that just died may still be leaving the cgroup: EBUSY is retried briefly.
        for (int attempt = 0; attempt < 100; ++attempt) {
            if (::rmdir(d.c_str()) == 0 || errno == ENOENT)
                break;
            if (errno != EBUSY) {
                std::cerr << "podid test node: rmdir " << d << ": " << std::strerror(errno) << "\n";
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    bool gone = ::access(dir.c_str(), F_OK) != 0;
    if (!gone)
        std::cerr << "podid test node: could not remove cgroup " << dir << "\n";
    return gone;
}

}  // namespace podid::test
