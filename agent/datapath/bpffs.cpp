#include "datapath/bpffs.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace podid {

namespace {
constexpr long kBpfFsMagic = 0xcafe4a11;  // BPF_FS_MAGIC from linux/magic.h
}

bool is_on_bpffs(const std::string& path) {
    struct statfs st {};
    return ::statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == kBpfFsMagic;
}

Result<void> ensure_pin_dir(const std::string& pin_dir) {
    namespace fs = std::filesystem;
    const fs::path dir(pin_dir);
    const fs::path parent = dir.parent_path();
    std::error_code ec;
    if (!is_on_bpffs(parent.string())) {
        fs::create_directories(parent, ec);
        if (ec)
            return make_error("cannot create " + parent.string() + " for bpffs: " + ec.message(), ec.value());
        if (::mount("bpf", parent.c_str(), "bpf", 0, "mode=0700") != 0) {
            int err = errno;
            return make_error("cannot mount bpffs on " + parent.string() + ": " + std::strerror(err) +
                                  (err == EPERM ? " (run as root or with CAP_SYS_ADMIN)" : ""),
                              err);
        }
    }
    if (::mkdir(pin_dir.c_str(), 0700) != 0 && errno != EEXIST) {
        int err = errno;
        return make_error("cannot create pin directory " + pin_dir + ": " + std::strerror(err), err);
    }
    if (!is_on_bpffs(pin_dir))
        return make_error(pin_dir + " is not on a bpf filesystem; point --bpffs at a directory under a bpffs mount",
                          ENOTSUP);
    return {};
}

}  // namespace podid
