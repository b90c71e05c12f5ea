// Process: a spawned child with its stdout/stderr pipes. It owns the child until reaped: the destructor
// kills and reaps it, so a failed assertion never leaves a daemon behind.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <utility>

#include "spawn.h"
#include "test_node.h"

namespace podid::test {
namespace {

int exit_code_of(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

// Appends whatever is readable now; closes the fd at EOF.
void read_available(int& fd, std::string& into) {
    if (fd < 0)
        return;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            into.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            ::close(fd);
            fd = -1;
        }
        return;  // EAGAIN or error: nothing more for now
    }
}

}  // namespace

Process::Process(pid_t pid, int out_fd, int err_fd) : pid_(pid), out_fd_(out_fd), err_fd_(err_fd) {}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      out_fd_(std::exchange(other.out_fd_, -1)),
      err_fd_(std::exchange(other.err_fd_, -1)),
      out_(std::move(other.out_)),
      err_(std::move(other.err_)),
      status_(std::exchange(other.status_, std::nullopt)) {}

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        Process old(std::move(other));  // takes other's child; our previous one dies with `old`
        std::swap(pid_, old.pid_);
        std::swap(out_fd_, old.out_fd_);
        std::swap(err_fd_, old.err_fd_);
        std::swap(out_, old.out_);
        std::swap(err_, old.err_);
        std::swap(status_, old.status_);
    }
    return *this;
}

Process::~Process() {
    if (pid_ > 0 && !status_ && is_unreaped_child(pid_)) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (out_fd_ >= 0)
        ::close(out_fd_);
    if (err_fd_ >= 0)
        ::close(err_fd_);
}

bool Process::running() {
    if (pid_ <= 0 || status_)
        return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        status_ = status;
        return false;
    }
    if (r < 0 && errno == ECHILD) {  // reaped elsewhere (node teardown): it was killed
        status_ = SIGKILL;
        return false;
    }
    return true;
}

void Process::signal(int sig) {
    if (running() && is_unreaped_child(pid_))
        ::kill(pid_, sig);
}

void Process::drain() {
    read_available(out_fd_, out_);
    read_available(err_fd_, err_);
}

std::string Process::read_out() {
    drain();
    return out_;
}

std::string Process::read_err() {
    drain();
    return err_;
}

bool Process::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        drain();
        if (out_.find(needle) != std::string::npos || err_.find(needle) != std::string::npos)
            return true;
        if (!running()) {
            drain();  // output written just before exit
            return out_.find(needle) != std::string::npos || err_.find(needle) != std::string::npos;
        }
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
        ::poll(fds, 2, 20);
        if ((out_fd_ < 0 && err_fd_ < 0))
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

RunResult Process::wait(std::chrono::milliseconds timeout) {
    RunResult result;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    // Keep reading while waiting: a child blocked on a full pipe would never exit.
    while (running()) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            result.timed_out = true;
            if (is_unreaped_child(pid_))
                ::kill(pid_, SIGKILL);
            int status = 0;
            pid_t r;
            while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
            }
            status_ = r == pid_ ? status : SIGKILL;
            break;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
        int wait_ms = static_cast<int>(std::min<long long>(left, 20));
        if (out_fd_ < 0 && err_fd_ < 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
        else
            ::poll(fds, 2, wait_ms);
        drain();
    }
    // Whatever the child wrote before exiting is in the pipes; a grandchild that kept the write end
    // open must not make us block, so this is a non-blocking read.
    drain();
    result.exit_code = result.timed_out || !status_ ? -1 : exit_code_of(*status_);
    result.out = out_;
    result.err = err_;
    return result;
}

}  // namespace podid::test
