// StaticBindings, the bindings file as a BindingSource: load and reload keep the last good table, and watch()
// reloads once per change of the file.
#include "policy/static_bindings.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "static_bindings_fixtures.h"
#include "temp_dir.h"

namespace podid {
namespace {

namespace fs = std::filesystem;

using test::doc;
using test::entry;
using test::TempDir;

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::trunc) << text; }

// Replaces the file the way editors and ConfigMap updates do: write aside, then rename over.
void replace_file(const fs::path& p, const std::string& text) {
    fs::path tmp = p.string() + ".tmp";
    write_file(tmp, text);
    fs::rename(tmp, p);
}

Caller caller_at(const std::string& path) {
    Caller c;
    c.cgroup_path = path;
    return c;
}

TEST(StaticBindingsFile, LoadAndReloadKeepsOldTableOnBadFile) {
    TempDir dir;
    fs::path file = dir.path / "bindings.json";
    std::vector<std::string> errors;
    StaticBindings bindings(file.string(), [&](const std::string& m) { errors.push_back(m); });

    EXPECT_FALSE(bindings.ready());
    EXPECT_EQ(bindings.bindings_for(caller_at("/a")).kind, BindingKind::none);
    auto missing = bindings.load();
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("cannot read bindings file"), std::string::npos);
    EXPECT_FALSE(bindings.ready());

    write_file(file, "{\"bindings\": [\n  {\"cgroup\": \"/a\"}\n]}");
    auto bad = bindings.load();
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find(file.string() + ":2:"), std::string::npos) << bad.error().message;
    EXPECT_FALSE(bindings.ready());
    EXPECT_TRUE(errors.empty());  // load() returns its error, it does not log

    write_file(file, doc({entry("/a")}));
    ASSERT_TRUE(bindings.load().ok());
    EXPECT_TRUE(bindings.ready());
    Binding b = bindings.bindings_for(caller_at("/a/b"));
    EXPECT_EQ(b.kind, BindingKind::static_file);
    EXPECT_EQ(b.explanation, "bindings entry 1 (/a)");
    EXPECT_EQ(bindings.bindings_for(caller_at("")).kind, BindingKind::none);

    // A broken edit: the old table stays, the error is logged and returned.
    write_file(file, doc({entry("/b")}).substr(0, 20));
    auto r = bindings.reload();
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0], r.error().message);
    EXPECT_TRUE(bindings.ready());
    EXPECT_EQ(bindings.bindings_for(caller_at("/a")).kind, BindingKind::static_file);
    EXPECT_EQ(bindings.bindings_for(caller_at("/b")).kind, BindingKind::none);

    // The file removed: same.
    fs::remove(file);
    EXPECT_FALSE(bindings.reload().ok());
    EXPECT_EQ(errors.size(), 2u);
    EXPECT_EQ(bindings.bindings_for(caller_at("/a")).kind, BindingKind::static_file);

    // Fixed: the new table replaces the old one.
    write_file(file, doc({entry("/b")}));
    ASSERT_TRUE(bindings.reload().ok());
    EXPECT_EQ(bindings.bindings_for(caller_at("/a")).kind, BindingKind::none);
    EXPECT_EQ(bindings.bindings_for(caller_at("/b")).kind, BindingKind::static_file);
}

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

class StaticBindingsWatch : public ::testing::TestWithParam<bool> {};  // true: inotify only; false: polling

TEST_P(StaticBindingsWatch, SeesInPlaceWritesAndRenames) {
    const bool inotify_only = GetParam();
    TempDir dir;
    fs::path file = dir.path / "bindings.json";
    write_file(file, doc({entry("/a")}));
    std::vector<std::string> errors;
    StaticBindings bindings(file.string(), [&](const std::string& m) { errors.push_back(m); });
    ASSERT_TRUE(bindings.load().ok());

    boost::asio::io_context io;
    // Poll interval 0 disables polling, so the first mode proves inotify alone sees each kind of change; the
    // second checks that the poll and inotify together still reload once per change.
    bindings.watch(io, inotify_only ? std::chrono::milliseconds(0) : std::chrono::milliseconds(20));
    auto binds = [&](const std::string& path) {
        return bindings.bindings_for(caller_at(path)).kind == BindingKind::static_file;
    };

    write_file(file, doc({entry("/b")}));  // in place: IN_CLOSE_WRITE
    EXPECT_TRUE(run_until(io, [&] { return binds("/b"); }));
    EXPECT_FALSE(binds("/a"));

    replace_file(file, doc({entry("/c")}));  // rename over: IN_MOVED_TO
    EXPECT_TRUE(run_until(io, [&] { return binds("/c"); }));

    replace_file(file, "{");  // a bad file is reported once and the table stays
    EXPECT_TRUE(run_until(io, [&] { return !errors.empty(); }));
    io.restart();
    io.run_for(std::chrono::milliseconds(100));
    EXPECT_EQ(errors.size(), 1u);
    EXPECT_TRUE(binds("/c"));

    write_file(dir.path / "unrelated.json", "{");  // events for other files change nothing
    io.restart();
    io.run_for(std::chrono::milliseconds(100));
    EXPECT_EQ(errors.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Modes, StaticBindingsWatch, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Inotify" : "InotifyAndPoll"; });

TEST(StaticBindingsFile, PollAloneNoticesChangeOfAnotherDirectory) {
    // A directory replaced as a whole (its old inotify watch goes blind): only the poll can notice.
    TempDir dir;
    fs::path sub = dir.path / "cfg";
    fs::create_directories(sub);
    fs::path file = sub / "bindings.json";
    write_file(file, doc({entry("/a")}));
    StaticBindings bindings(file.string());
    ASSERT_TRUE(bindings.load().ok());
    boost::asio::io_context io;
    bindings.watch(io, std::chrono::milliseconds(20));

    fs::path other = dir.path / "cfg2";
    fs::create_directories(other);
    write_file(other / "bindings.json", doc({entry("/z")}));
    fs::remove_all(sub);
    fs::rename(other, sub);
    EXPECT_TRUE(run_until(io, [&] { return bindings.bindings_for(caller_at("/z")).kind == BindingKind::static_file; }));
}

TEST(StaticBindingsFile, DestroyedBeforeIoContext) {
    TempDir dir;
    fs::path file = dir.path / "bindings.json";
    write_file(file, doc({entry("/a")}));
    boost::asio::io_context io;
    {
        StaticBindings bindings(file.string());
        ASSERT_TRUE(bindings.load().ok());
        bindings.watch(io, std::chrono::milliseconds(5));
    }
    write_file(file, doc({entry("/b")}));
    // The handlers find the bindings gone and stop, closing the inotify descriptor: the io_context runs out of work.
    io.run_for(std::chrono::seconds(2));
    EXPECT_TRUE(io.stopped());
}

}  // namespace
}  // namespace podid
