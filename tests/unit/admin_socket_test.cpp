// The admin socket (unix, root only) and the routes podidctl uses, over a real socket in a temp directory,
// plus the ring of recent connections.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "admin/admin_socket.h"
#include "admin/introspect.h"
#include "client.h"
#include "observe/recent_conns.h"

namespace podid {
namespace {

namespace http = boost::beast::http;
using nlohmann::json;

TEST(RecentConnections, KeepsTheNewestFirstAndCountsAll) {
    RecentConnections ring(3);
    for (int i = 1; i <= 5; ++i) {
        ConnRecord r;
        r.peer = "p" + std::to_string(i);
        ring.record(r);
    }
    EXPECT_EQ(ring.total(), 5u);
    auto latest = ring.latest(10);
    ASSERT_EQ(latest.size(), 3u);
    EXPECT_EQ(latest[0].peer, "p5");
    EXPECT_EQ(latest[0].seq, 5u);
    EXPECT_EQ(latest[2].peer, "p3");
    EXPECT_EQ(ring.latest(1).at(0).peer, "p5");
    RecentConnections empty(4);
    EXPECT_TRUE(empty.latest(5).empty());
    ConnRecord one;
    one.peer = "x";
    empty.record(one);
    EXPECT_EQ(empty.latest(5).size(), 1u);
}

TEST(AdminSocket, PeerRule) {
    EXPECT_TRUE(admin_peer_allowed(0, 0));
    EXPECT_TRUE(admin_peer_allowed(1000, 1000));  // an agent run by a user in development
    EXPECT_FALSE(admin_peer_allowed(65534, 0));
    EXPECT_FALSE(admin_peer_allowed(1000, 0));
}

class AdminSocketServe : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("podid-admin-" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir_);
        path_ = (dir_ / "sub" / "admin.sock").string();
    }
    void TearDown() override {
        io_.stop();
        if (thread_.joinable())
            thread_.join();
        std::filesystem::remove_all(dir_);
    }
    void run() {
        thread_ = std::thread([this] { io_.run(); });
    }

    std::filesystem::path dir_;
    std::string path_;
    boost::asio::io_context io_;
    std::thread thread_;
};

TEST_F(AdminSocketServe, ServesTheRoutesRootOnly) {
    IntrospectSources sources;
    sources.version = "9.9.9";
    sources.node_ip = "10.0.0.4";
    sources.port = 2579;
    Introspection views(sources);
    AdminSocketServer server(io_, [&views](const AdminRequest& req) { return introspect_response(req, views); });
    ASSERT_TRUE(server.listen(path_).ok());
    auto guard = boost::asio::make_work_guard(io_);
    run();

    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "created 0600: no window for other users";
    ASSERT_EQ(::stat(path_.substr(0, path_.rfind('/')).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);

    auto status = ctl::admin_get(path_, "/v1/status");
    ASSERT_TRUE(status.ok()) << status.error().message;
    EXPECT_EQ(status->status, 200);
    EXPECT_EQ(status->body.value("version", ""), "9.9.9");
    EXPECT_EQ(status->body.value("mode", ""), "standalone");
    EXPECT_EQ(status->body.value("port", 0), 2579);

    struct Row {
        std::string target;
        int status;
        std::string error_part;
    };
    const std::vector<Row> rows = {
        {"/v1/pods", 200, ""},
        {"/v1/conns?limit=5", 200, ""},
        {"/v1/conns?limit=0", 400, "limit must be a positive integer"},
        {"/v1/conns?limit=x", 400, "limit must be a positive integer"},
        {"/v1/explain", 400, "give pod=NAMESPACE/NAME or cgroup=PATH"},
        {"/v1/explain?pod=nons", 400, "pod must be NAMESPACE/NAME"},
        {"/v1/explain?pod=a/b", 404, "standalone mode has no pod directory"},
        {"/v1/explain?cgroup=relative", 400, "must start with /"},
        {"/v1/explain?cgroup=%2Fx", 404, "no cgroup /x"},
        {"/v1/nothing", 404, "unknown path"},
        {"/v1/explain?pod=%zz", 400, ""},
    };
    for (const auto& row : rows) {
        auto r = ctl::admin_get(path_, row.target);
        ASSERT_TRUE(r.ok()) << row.target << ": " << r.error().message;
        EXPECT_EQ(r->status, row.status) << row.target << " " << r->body.dump();
        if (!row.error_part.empty()) {
            EXPECT_NE(r->body.value("error_description", "").find(row.error_part), std::string::npos)
                << row.target << " " << r->body.dump();
        }
    }

    // A second agent on the same path is refused while this one answers.
    boost::asio::io_context other_io;
    AdminSocketServer second(other_io,
                             [](const AdminRequest& req) { return AdminResponse(http::status::ok, req.version()); });
    auto r = second.listen(path_);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("another process is serving"), std::string::npos) << r.error().message;

    server.shutdown();
    for (int i = 0; i < 100 && std::filesystem::exists(path_); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_FALSE(std::filesystem::exists(path_)) << "shutdown removes the socket file";
    // Stop the I/O thread while the server and the views its sessions use still exist (they are locals).
    guard.reset();
    io_.stop();
    thread_.join();
}

TEST_F(AdminSocketServe, ReplacesAStaleSocketButNotAFile) {
    std::filesystem::create_directories(dir_ / "sub");
    // A socket file nobody listens on: what a SIGKILLed agent leaves.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
    AdminSocketServer server(io_, [](const AdminRequest& req) {
        AdminResponse res(http::status::ok, req.version());
        res.body() = "{}";
        res.prepare_payload();
        return res;
    });
    ASSERT_TRUE(server.listen(path_).ok());
    server.shutdown();
    io_.run();  // the accept loop ends once the posted close has run (nothing may outlive io_ half-done)

    std::string plain = (dir_ / "sub" / "not-a-socket").string();
    std::ofstream(plain) << "keep me";
    boost::asio::io_context io2;
    AdminSocketServer refuse(io2,
                             [](const AdminRequest& req) { return AdminResponse(http::status::ok, req.version()); });
    auto r = refuse.listen(plain);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("is not a socket"), std::string::npos);
    EXPECT_TRUE(std::filesystem::exists(plain));
}

}  // namespace
}  // namespace podid
