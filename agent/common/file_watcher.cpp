#include "common/file_watcher.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <utility>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace podid {
namespace {

// The watcher's own objects, owned by its pending handlers.
struct FileWatch : std::enable_shared_from_this<FileWatch> {
    FileWatch(boost::asio::io_context& io, std::chrono::milliseconds poll, FileEventHandler on_event)
        : inotify(io), timer(io), poll(poll), on_event(std::move(on_event)) {}

    boost::asio::posix::stream_descriptor inotify;
    boost::asio::steady_timer timer;
    std::chrono::milliseconds poll;
    FileEventHandler on_event;
    std::array<char, 4096> buf{};

    void start(const std::string& path) {
        int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd >= 0) {
            std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
            // Watch the directory, not the file: replacing the file by rename (editors, kubelet's ConfigMap
            // "..data" symlink swap) leaves a watch on the old inode blind.
            if (::inotify_add_watch(fd, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB) >= 0) {
                inotify.assign(fd);
                read_events();
            } else {
                ::close(fd);
            }
        }
        if (poll.count() > 0)
            arm_timer();
    }

    void read_events() {
        inotify.async_read_some(boost::asio::buffer(buf),
                                [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                                    if (ec)
                                        return;
                                    // Which names changed does not matter: the owner compares stamps.
                                    if (!self->on_event())
                                        return;
                                    self->read_events();
                                });
    }

    void arm_timer() {
        timer.expires_after(poll);
        timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (ec)
                return;
            if (!self->on_event()) {
                boost::system::error_code ignored;
                self->inotify.close(ignored);  // the owner is gone: stop the reader too
                return;
            }
            self->arm_timer();
        });
    }
};

}  // namespace

std::optional<FileStamp> file_stamp(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return std::nullopt;
    return FileStamp{st.st_dev, st.st_ino, st.st_size,
                     static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

void watch_file(boost::asio::io_context& io, const std::string& path, std::chrono::milliseconds poll_interval,
                FileEventHandler on_event) {
    std::make_shared<FileWatch>(io, poll_interval, std::move(on_event))->start(path);
}

}  // namespace podid
