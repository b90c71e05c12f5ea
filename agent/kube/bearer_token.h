// The bearer token sent to the API server. Projected service account tokens are rotated by the kubelet
// (about hourly, by swapping a symlink), so a token file is checked on every request and read again
// only when it changed: one stat per request, no timer.
#pragma once

#include <sys/types.h>
#include <ctime>
#include <mutex>
#include <string>

#include "common/result.h"

namespace podid::kube {

class BearerToken {
public:
    // `file` wins over `fixed` when set; `fixed` alone never changes. Both empty: no Authorization header.
    BearerToken(std::string fixed, std::string file);

    // The current token ("" when none is configured). When the file cannot be read but a token was read
    // before, that token is kept: a rotation in progress must not fail requests.
    Result<std::string> get();

    std::size_t reads() const;  // how many times the file was read (tests, metrics)

private:
    struct Stamp {
        dev_t dev = 0;
        ino_t ino = 0;
        off_t size = -1;
        timespec mtime{};
        bool operator==(const Stamp& o) const;
    };

    const std::string fixed_;
    const std::string file_;
    mutable std::mutex mu_;
    Stamp stamp_;
    std::string cached_;
    std::size_t reads_ = 0;
};

}  // namespace podid::kube
