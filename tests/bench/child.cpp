#include "child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace podid::bench {

LineChild::LineChild(const std::string& netns, const std::vector<std::string>& argv) {
    std::vector<std::string> full = {"nsenter", "--net=/run/netns/" + netns, "--"};
    full.insert(full.end(), argv.begin(), argv.end());
    // Everything the child needs is built before fork: the parent has other threads.
    std::vector<char*> cargv;
    for (auto& a : full)
        cargv.push_back(a.data());
    cargv.push_back(nullptr);
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0)
        throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)
            ::_exit(127);
        ::dup2(to_child[0], 0);
        ::dup2(from_child[1], 1);
        ::execvp(cargv[0], cargv.data());
        ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    in_ = to_child[1];
    out_ = from_child[0];
}

LineChild::~LineChild() {
    if (in_ >= 0)
        ::close(in_);
    if (out_ >= 0)
        ::close(out_);
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

bool LineChild::write_line(const std::string& line) {
    std::string data = line + "\n";
    return ::write(in_, data.data(), data.size()) == static_cast<ssize_t>(data.size());
}

std::optional<std::string> LineChild::read_line(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto nl = buffer_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return std::nullopt;
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            continue;
        char buf[4096];
        ssize_t n = ::read(out_, buf, sizeof(buf));
        if (n <= 0)
            return std::nullopt;  // the child is gone
        buffer_.append(buf, static_cast<size_t>(n));
    }
}

}  // namespace podid::bench
