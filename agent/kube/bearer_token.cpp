#include "kube/bearer_token.h"

#include <sys/stat.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace podid::kube {

bool BearerToken::Stamp::operator==(const Stamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
}

BearerToken::BearerToken(std::string fixed, std::string file) : fixed_(std::move(fixed)), file_(std::move(file)) {}

std::size_t BearerToken::reads() const {
    std::lock_guard lock(mu_);
    return reads_;
}

Result<std::string> BearerToken::get() {
    if (file_.empty())
        return fixed_;
    std::lock_guard lock(mu_);
    struct stat st {};
    if (::stat(file_.c_str(), &st) != 0) {
        const int err = errno;
        if (!cached_.empty())
            return cached_;
        return make_error("cannot read API token file " + file_ + ": " + std::strerror(err), err);
    }
    // Inode and device catch the kubelet's symlink swap even when size and mtime happen to match.
    const Stamp now{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
    if (now == stamp_ && !cached_.empty())
        return cached_;
    std::ifstream in(file_, std::ios::binary);
    std::ostringstream text;
    if (in)
        text << in.rdbuf();
    std::string token = text.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
        token.pop_back();
    if (!in || token.empty()) {
        if (!cached_.empty())
            return cached_;
        if (!fixed_.empty())
            return fixed_;
        return make_error("API token file " + file_ + " is empty or unreadable", in ? 0 : errno);
    }
    ++reads_;
    stamp_ = now;
    cached_ = std::move(token);
    return cached_;
}

}  // namespace podid::kube
