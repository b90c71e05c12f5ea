// Noticing that a configuration file changed: inotify on the file's directory plus a stat() poll.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

namespace podid {

// A file's identity as stat() sees it, to tell a changed file from a spurious event.
struct FileStamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
};

// nullopt when the file cannot be stat()ed (missing, no permission).
std::optional<FileStamp> file_stamp(const std::string& path);

// Called on the watcher's io_context when the file may have changed. Returns false when its owner is gone: the
// watcher then stops.
using FileEventHandler = std::function<bool()>;

// Calls `on_event` when the file at `path` may have changed: on inotify events in its directory (IN_CLOSE_WRITE,
// IN_MOVED_TO, IN_CREATE, IN_ATTRIB on any name, so that editors' and ConfigMaps' rename-replace are seen) and
// every `poll_interval` as a safety net (0: no polling), also the only mechanism when inotify is unavailable.
// Events are not filtered by name: compare FileStamps to learn whether the file itself changed.
//
// The watcher owns itself through its pending handlers on `io`. Once `on_event` returned false it stops: from the
// poll, it also closes its inotify descriptor, so that `io` runs out of work; from an inotify event, it stops
// reading and the next poll (if any) closes the descriptor.
void watch_file(boost::asio::io_context& io, const std::string& path, std::chrono::milliseconds poll_interval,
                FileEventHandler on_event);

}  // namespace podid
