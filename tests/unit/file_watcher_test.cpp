// The file watcher: inotify on the directory sees writes in place and renames into place, the poll sees what
// inotify cannot, and the watcher stops once its owner is gone. FileStamp tells a changed file from an event.
#include "common/file_watcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/io_context.hpp>

#include "temp_dir.h"

namespace podid {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::trunc) << text; }

// Runs `io` until `done()` or a deadline.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        io.restart();
        io.run_for(std::chrono::milliseconds(10));
    }
    return true;
}

// Counts events and remembers the stamp of the file at the last one, as an owner comparing stamps would.
struct Observer {
    explicit Observer(std::string path) : path(std::move(path)) {}

    std::string path;
    int events = 0;
    std::optional<FileStamp> seen;

    FileEventHandler handler() {
        return [this] {
            ++events;
            seen = file_stamp(path);
            return true;
        };
    }
};

TEST(FileWatcher, InotifySeesWriteInPlace) {
    TempDir dir;
    fs::path file = dir.path / "config.json";
    write_file(file, "one");
    Observer o(file.string());
    boost::asio::io_context io;
    watch_file(io, file.string(), std::chrono::milliseconds(0), o.handler());  // inotify only

    write_file(file, "two!");
    EXPECT_TRUE(run_until(io, [&] { return o.seen && o.seen->size == 4; }));
}

TEST(FileWatcher, InotifySeesRenameIntoPlace) {
    TempDir dir;
    fs::path file = dir.path / "config.json";
    write_file(file, "one");
    const auto before = file_stamp(file.string());
    ASSERT_TRUE(before);
    Observer o(file.string());
    boost::asio::io_context io;
    watch_file(io, file.string(), std::chrono::milliseconds(0), o.handler());

    // Written aside, then renamed over the file: the watched path now names another inode.
    fs::path aside = dir.path / ".config.json.tmp";
    write_file(aside, "two");
    o.events = 0;
    fs::rename(aside, file);
    EXPECT_TRUE(run_until(io, [&] { return o.seen && o.seen->ino != before->ino; }));
    EXPECT_GE(o.events, 1);
}

TEST(FileWatcher, InotifySeesSymlinkSwapOfAConfigMap) {
    // kubelet's ConfigMap volume: config.json -> ..data/config.json, and ..data is a symlink swapped by rename.
    TempDir dir;
    fs::create_directories(dir.path / "v1");
    fs::create_directories(dir.path / "v2");
    write_file(dir.path / "v1" / "config.json", "one");
    write_file(dir.path / "v2" / "config.json", "two, longer");
    fs::create_directory_symlink("v1", dir.path / "..data");
    fs::create_symlink("..data/config.json", dir.path / "config.json");
    const std::string path = (dir.path / "config.json").string();
    Observer o(path);
    boost::asio::io_context io;
    watch_file(io, path, std::chrono::milliseconds(0), o.handler());

    fs::create_directory_symlink("v2", dir.path / "..data_tmp");
    fs::rename(dir.path / "..data_tmp", dir.path / "..data");
    EXPECT_TRUE(run_until(io, [&] { return o.seen && o.seen->size == 11; }));
}

TEST(FileWatcher, PollSeesAReplacedDirectory) {
    // The watched directory replaced as a whole: its inotify watch goes blind, only the poll notices.
    TempDir dir;
    fs::path sub = dir.path / "cfg";
    fs::create_directories(sub);
    write_file(sub / "config.json", "one");
    const std::string path = (sub / "config.json").string();
    Observer o(path);
    boost::asio::io_context io;
    watch_file(io, path, std::chrono::milliseconds(20), o.handler());

    fs::path other = dir.path / "cfg2";
    fs::create_directories(other);
    write_file(other / "config.json", "two, longer");
    fs::remove_all(sub);
    fs::rename(other, sub);
    EXPECT_TRUE(run_until(io, [&] { return o.seen && o.seen->size == 11; }));
}

TEST(FileWatcher, PollWorksWithoutADirectoryToWatch) {
    // No directory, so no inotify watch: the poll alone reports, and sees the file once it appears.
    TempDir dir;
    const std::string path = (dir.path / "later" / "config.json").string();
    Observer o(path);
    boost::asio::io_context io;
    watch_file(io, path, std::chrono::milliseconds(10), o.handler());
    EXPECT_TRUE(run_until(io, [&] { return o.events >= 2; }));
    EXPECT_FALSE(o.seen);
    fs::create_directories(dir.path / "later");
    write_file(path, "x");
    EXPECT_TRUE(run_until(io, [&] { return o.seen.has_value(); }));
}

TEST(FileWatcher, StopsWhenTheOwnerIsGone) {
    TempDir dir;
    fs::path file = dir.path / "config.json";
    write_file(file, "one");
    boost::asio::io_context io;
    int events = 0;
    watch_file(io, file.string(), std::chrono::milliseconds(5), [&] {
        ++events;
        return false;
    });
    write_file(file, "two");
    // The first answer "gone" stops the watcher and closes its inotify descriptor: the io_context runs out of work.
    io.run_for(std::chrono::seconds(2));
    EXPECT_TRUE(io.stopped());
    EXPECT_GE(events, 1);
    EXPECT_LE(events, 2);  // at most the inotify event and the poll that was already pending
}

TEST(FileStamp, ChangesWithContentAndInode) {
    TempDir dir;
    fs::path file = dir.path / "f";
    EXPECT_FALSE(file_stamp(file.string()));
    write_file(file, "abc");
    auto a = file_stamp(file.string());
    ASSERT_TRUE(a);
    EXPECT_EQ(a->size, 3);
    EXPECT_EQ(file_stamp(file.string()), a);  // nothing changed

    write_file(file, "abcd");
    auto b = file_stamp(file.string());
    ASSERT_TRUE(b);
    EXPECT_NE(b, a);
    EXPECT_EQ(b->ino, a->ino);

    write_file(dir.path / "g", "abcd");
    fs::rename(dir.path / "g", file);
    auto c = file_stamp(file.string());
    ASSERT_TRUE(c);
    EXPECT_NE(c->ino, b->ino);
}

}  // namespace
}  // namespace podid
