// Lines with descriptors attached (common/fd_passing.h), over a socketpair.
#include "common/fd_passing.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

namespace podid {
namespace {

using namespace std::chrono_literals;

struct Pair {
    Fd a, b;
    Pair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        a = Fd(fds[0]);
        b = Fd(fds[1]);
    }
};

ino_t inode_of(int fd) {
    struct stat st {};
    ::fstat(fd, &st);
    return st.st_ino;
}

TEST(FdPassing, LineAndDescriptorsArriveTogether) {
    Pair p;
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    Fd r(pipe_fds[0]), w(pipe_fds[1]);
    ASSERT_TRUE(send_line_with_fds(p.a.get(), R"({"hello":1})", {r.get(), w.get()}));
    auto got = receive_line_with_fds(p.b.get(), 1s);
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(got->line, R"({"hello":1})");
    ASSERT_EQ(got->fds.size(), 2u);
    // The same open files (new descriptors), and close-on-exec.
    EXPECT_EQ(inode_of(got->fds[0].get()), inode_of(r.get()));
    EXPECT_NE(got->fds[0].get(), r.get());
    EXPECT_TRUE(::fcntl(got->fds[1].get(), F_GETFD) & FD_CLOEXEC);
    ASSERT_EQ(::write(got->fds[1].get(), "x", 1), 1);
    char c = 0;
    EXPECT_EQ(::read(r.get(), &c, 1), 1);
    EXPECT_EQ(c, 'x');
}

TEST(FdPassing, LineInPiecesWithoutDescriptors) {
    Pair p;
    ASSERT_EQ(::write(p.a.get(), "{\"a\":", 5), 5);
    std::thread later([&] {
        std::this_thread::sleep_for(50ms);
        (void)::write(p.a.get(), "2}\n", 3);
    });
    auto got = receive_line_with_fds(p.b.get(), 2s);
    later.join();
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(got->line, "{\"a\":2}");
    EXPECT_TRUE(got->fds.empty());
}

TEST(FdPassing, ErrorsNameTheCause) {
    {
        Pair p;
        p.a.reset();
        auto got = receive_line_with_fds(p.b.get(), 1s);
        ASSERT_FALSE(got);
        EXPECT_EQ(got.error().code, ECONNRESET);
    }
    {
        Pair p;
        auto got = receive_line_with_fds(p.b.get(), 50ms);
        ASSERT_FALSE(got);
        EXPECT_EQ(got.error().code, ETIMEDOUT);
    }
    {
        Pair p;
        std::vector<int> many(kMaxPassedFds + 1, 0);
        EXPECT_FALSE(send_line_with_fds(p.a.get(), "x", many));
    }
    {
        Pair p;
        ASSERT_TRUE(send_line_with_fds(p.a.get(), "one\ntwo", {}));
        auto got = receive_line_with_fds(p.b.get(), 1s);
        ASSERT_FALSE(got) << "a second message before an answer is a protocol error";
        EXPECT_EQ(got.error().code, EPROTO);
    }
}

}  // namespace
}  // namespace podid
