// UnixAcceptor (admin/unix_acceptor.h): every connection reaches the callback on the io_context, and stop()
// closes the listener once.
#include "admin/unix_acceptor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>

#include "common/unix_listener.h"
#include "temp_dir.h"

namespace podid {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

struct IoThread {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::thread thread{[this] { io.run(); }};
    ~IoThread() {
        work.reset();
        io.stop();
        thread.join();
    }
};

bool eventually(const std::function<bool()>& condition) {
    for (int i = 0; i < 300 && !condition(); ++i)
        std::this_thread::sleep_for(10ms);
    return condition();
}

TEST(UnixAcceptor, HandsEveryConnectionToTheCallbackUntilStopped) {
    test::TempDir dir;
    const std::string path = (dir.path / "a.sock").string();
    auto listener = bind_unix_listener(path, "test socket");
    ASSERT_TRUE(listener) << listener.error().message;
    IoThread io;
    UnixAcceptor acceptor(io.io);
    EXPECT_EQ(acceptor.native_handle(), -1);
    EXPECT_FALSE(acceptor.stop()) << "nothing to stop before start";
    std::atomic<int> accepted{0};
    std::atomic<bool> on_io_thread{true};
    const int fd = listener->get();
    auto started =
        acceptor.start(std::move(*listener), path, "test socket", [&](std::shared_ptr<UnixAcceptor::Socket> s) {
            if (std::this_thread::get_id() != io.thread.get_id())
                on_io_thread = false;
            if (s->is_open())
                ++accepted;
        });
    ASSERT_TRUE(started) << started.error().message;
    EXPECT_EQ(acceptor.native_handle(), fd);
    EXPECT_EQ(acceptor.path(), path);

    auto a = connect_unix(path);
    auto b = connect_unix(path);
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(eventually([&] { return accepted == 2; })) << accepted;
    EXPECT_TRUE(on_io_thread);

    EXPECT_TRUE(acceptor.stop());
    EXPECT_TRUE(acceptor.stopped());
    EXPECT_FALSE(acceptor.stop()) << "only the first stop() stops";
    // Closed: a new connection is refused (the socket file stays; its owner decides whether to remove it).
    EXPECT_TRUE(eventually([&] {
        auto c = connect_unix(path);
        return !c && c.error().code == ECONNREFUSED;
    }));
    EXPECT_EQ(accepted, 2);
}

TEST(UnixAcceptor, RefusesWhatIsNotASocket) {
    IoThread io;
    UnixAcceptor acceptor(io.io);
    auto started = acceptor.start(Fd(), "/nowhere", "test socket", [](auto) {});
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().message.find("cannot serve the test socket /nowhere"), std::string::npos)
        << started.error().message;
}

TEST(ConnectUnix, NamesWhatFailed) {
    auto missing = connect_unix("/nonexistent-podid-dir/x.sock");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ENOENT);
    EXPECT_NE(missing.error().message.find("cannot connect to /nonexistent-podid-dir/x.sock"), std::string::npos);
    auto too_long = connect_unix("/" + std::string(200, 'x'));
    ASSERT_FALSE(too_long);
    EXPECT_EQ(too_long.error().code, ENAMETOOLONG);
}

}  // namespace
}  // namespace podid
