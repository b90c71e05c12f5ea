// The self-check without privileges: the answer judge, the request/body contract, and the fork fallback end to
// end against a loopback listener, with a plain directory standing in for the cgroup (writing "0" to its
// cgroup.procs is then an ordinary file write). The kernel path (clone3 into a real cgroup, the redirect) is in
// tests/e2e/metrics_test.cpp.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/fd.h"
#include "observe/selfcheck.h"

namespace podid {
namespace {

namespace fs = std::filesystem;

TEST(SelfCheckJudge, Table) {
    const uint64_t id = 4242;
    const std::string ok_head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
    struct Row {
        const char* name;
        std::string raw;
        bool passed;
        const char* detail_part;
    } rows[] = {
        {"passes", ok_head + "podid-selfcheck cgroup=4242", true, "origin cgroup 4242"},
        {"trailing newline", ok_head + "podid-selfcheck cgroup=4242\n", true, "4242"},
        {"http/1.0", "HTTP/1.0 200 OK\r\n\r\npodid-selfcheck cgroup=4242", true, "4242"},
        {"other cgroup", ok_head + "podid-selfcheck cgroup=17", false, "recorded as cgroup 17, expected 4242"},
        {"no origin", ok_head + "podid-selfcheck cgroup=0", false, "recorded as cgroup 0"},
        {"id prefix only", ok_head + "podid-selfcheck cgroup=42420", false, "expected 4242"},
        {"real IMDS answered", "HTTP/1.1 404 Not Found\r\n\r\n", false, "not redirected"},
        {"agent without route", ok_head + "{\"compute\":{}}", false, "without the self-check route"},
        {"no answer", "", false, "no answer"},
        {"truncated", "HTTP/1.1 200 OK\r\nContent-Le", false, "truncated"},
        {"garbage", "SSH-2.0-OpenSSH", false, "answered"},
        {"child failed", "!connect", false, "connect failed"},
    };
    for (const auto& r : rows) {
        auto st = judge_selfcheck_response(r.raw, id);
        EXPECT_EQ(st.passed, r.passed) << r.name;
        EXPECT_NE(st.detail.find(r.detail_part), std::string::npos) << r.name << ": " << st.detail;
    }
}

TEST(SelfCheckContract, RequestAndBody) {
    EXPECT_EQ(selfcheck_request().rfind("GET /_podid/selfcheck HTTP/1.1\r\n", 0), 0u);
    EXPECT_NE(selfcheck_request().find("Connection: close\r\n"), std::string::npos);
    EXPECT_EQ(selfcheck_request().substr(selfcheck_request().size() - 4), "\r\n\r\n");
    EXPECT_EQ(selfcheck_body(123), "podid-selfcheck cgroup=123");
    auto st = judge_selfcheck_response("HTTP/1.1 200 OK\r\n\r\n" + selfcheck_body(99), 99);
    EXPECT_TRUE(st.passed);
}

// A loopback "agent": reads one request and answers with whatever `body_for` returns for it.
class LoopbackAgent {
public:
    explicit LoopbackAgent(std::function<std::string(const std::string&)> answer) : answer_(std::move(answer)) {
        fd_ = Fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_.get(), 16) != 0)
            throw std::runtime_error("listen on loopback failed");
        socklen_t len = sizeof(a);
        getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { loop(); });
    }
    ~LoopbackAgent() {
        stop_ = true;
        ::shutdown(fd_.get(), SHUT_RDWR);
        thread_.join();
    }
    uint16_t port() const { return port_; }
    std::string last_request() const {
        std::lock_guard lock(mu_);
        return last_;
    }

private:
    void loop() {
        while (!stop_) {
            Fd c(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!c.valid())
                return;
            std::string req;
            char buf[1024];
            while (req.find("\r\n\r\n") == std::string::npos) {
                ssize_t r = read(c.get(), buf, sizeof(buf));
                if (r <= 0)
                    break;
                req.append(buf, static_cast<size_t>(r));
            }
            {
                std::lock_guard lock(mu_);
                last_ = req;
            }
            std::string res = answer_(req);
            (void)!write(c.get(), res.data(), res.size());
        }
    }

    std::function<std::string(const std::string&)> answer_;
    Fd fd_;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    mutable std::mutex mu_;
    std::string last_;
    std::thread thread_;
};

struct TempRoot {
    fs::path path = fs::temp_directory_path() / ("podid-selfcheck-test-" + std::to_string(getpid()));
    TempRoot() { fs::create_directories(path); }
    ~TempRoot() { fs::remove_all(path); }
};

uint64_t inode_of(const fs::path& p) {
    struct stat sb {};
    return stat(p.c_str(), &sb) == 0 ? sb.st_ino : 0;
}

std::string http_ok(const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// A plain directory with an empty cgroup.procs, as the kernel would provide it in a real cgroup.
SelfCheckOptions loopback_options(const TempRoot& root, uint16_t port) {
    fs::create_directories(root.path / "podid-selfcheck.scope");
    std::ofstream(root.path / "podid-selfcheck.scope" / "cgroup.procs").flush();
    SelfCheckOptions o;
    o.cgroup_root = root.path.string();
    o.target_ip = "127.0.0.1";
    o.target_port = port;
    o.timeout = std::chrono::milliseconds(2000);
    o.use_clone3 = false;  // a plain directory is no cgroup: exercise the fork + cgroup.procs fallback
    return o;
}

TEST(SelfCheck, ForkFallbackPassesWhenTheAnswerNamesItsCgroup) {
    TempRoot root;
    const fs::path dir = root.path / "podid-selfcheck.scope";
    LoopbackAgent agent([&](const std::string&) { return http_ok(selfcheck_body(inode_of(dir))); });
    SelfCheckStatus reported;
    auto o = loopback_options(root, agent.port());
    o.on_result = [&](const SelfCheckStatus& s) { reported = s; };
    {
        SelfCheck check(o);
        auto st = check.run_once();
        EXPECT_TRUE(st.passed) << st.detail;
        EXPECT_GT(st.finished_ms, 0);
        EXPECT_EQ(check.cgroup_path(), dir.string());
        EXPECT_EQ(check.cgroup_id(), inode_of(dir));
        EXPECT_EQ(check.status().passed, true);
        EXPECT_TRUE(reported.passed);
        EXPECT_EQ(agent.last_request(), selfcheck_request());
        // The child joined the "cgroup" by writing 0 (itself) to cgroup.procs before connecting.
        std::ifstream procs(dir / "cgroup.procs");
        std::string content((std::istreambuf_iterator<char>(procs)), {});
        EXPECT_EQ(content, "0");
        fs::remove(dir / "cgroup.procs");  // a real cgroup directory holds no regular files to remove
    }
    EXPECT_FALSE(fs::exists(dir)) << "the self-check cgroup is removed on destruction";
}

TEST(SelfCheck, FailsWithTheReasonTable) {
    TempRoot root;
    struct Row {
        const char* name;
        std::function<std::string(uint64_t id)> answer;  // empty: nobody listens
        const char* detail_part;
    } rows[] = {
        {"another cgroup", [](uint64_t id) { return http_ok(selfcheck_body(id + 1)); }, "expected"},
        {"not redirected", [](uint64_t) { return std::string("HTTP/1.1 404 Not Found\r\n\r\n"); }, "not redirected"},
        {"closes without answer", [](uint64_t) { return std::string(); }, "no answer"},
        {"nobody listens", nullptr, "connect failed: Connection refused"},
    };
    for (const auto& r : rows) {
        const fs::path dir = root.path / "podid-selfcheck.scope";
        uint16_t port = 0;
        std::unique_ptr<LoopbackAgent> agent;
        if (r.answer) {
            agent = std::make_unique<LoopbackAgent>([&](const std::string&) { return r.answer(inode_of(dir)); });
            port = agent->port();
        } else {
            LoopbackAgent closed([](const std::string&) { return std::string(); });
            port = closed.port();  // bound then closed: nothing listens there now
        }
        SelfCheck check(loopback_options(root, port));
        auto st = check.run_once();
        EXPECT_FALSE(st.passed) << r.name;
        EXPECT_NE(st.detail.find(r.detail_part), std::string::npos) << r.name << ": " << st.detail;
        fs::remove(dir / "cgroup.procs");
    }
}

// Where the kernel refuses to place the process below the cgroup root (nsdelegate: ENOENT outside the agent's
// cgroup namespace; here a cgroup.procs that cannot be written), the check moves below the agent's own cgroup.
TEST(SelfCheck, MovesBelowTheAgentsOwnCgroupWhenTheRootRefuses) {
    TempRoot root;
    const fs::path refused = root.path / "podid-selfcheck.scope";
    const fs::path own = root.path / "agent-container";
    const fs::path moved = own / "podid-selfcheck";
    auto o = loopback_options(root, 0);
    fs::remove(refused / "cgroup.procs");
    fs::create_symlink("/dev/full", refused / "cgroup.procs");  // the child's write fails (ENOSPC)
    fs::create_directories(moved);
    std::ofstream(moved / "cgroup.procs").flush();
    LoopbackAgent agent([&](const std::string&) { return http_ok(selfcheck_body(inode_of(moved))); });
    o.target_port = agent.port();
    int asked = 0;
    o.own_cgroup = [&] {
        ++asked;
        return own.string();
    };
    {
        SelfCheck check(o);
        auto st = check.run_once();
        EXPECT_TRUE(st.passed) << st.detail;
        EXPECT_EQ(check.cgroup_path(), moved.string());
        EXPECT_EQ(check.cgroup_id(), inode_of(moved));
        // For good: the next run goes straight there, without asking again.
        st = check.run_once();
        EXPECT_TRUE(st.passed) << st.detail;
        EXPECT_EQ(asked, 1);
        fs::remove(moved / "cgroup.procs");
    }
    EXPECT_FALSE(fs::exists(moved)) << "the moved self-check cgroup is removed on destruction";
}

TEST(SelfCheck, RefusedWithNoOwnCgroupBelowTheRootSaysSo) {
    TempRoot root;
    const fs::path refused = root.path / "podid-selfcheck.scope";
    auto o = loopback_options(root, 1);
    fs::remove(refused / "cgroup.procs");
    fs::create_symlink("/dev/full", refused / "cgroup.procs");
    o.own_cgroup = [] { return std::string(); };
    SelfCheck check(o);
    auto st = check.run_once();
    EXPECT_FALSE(st.passed);
    EXPECT_NE(st.detail.find("join cgroup failed: No space left on device"), std::string::npos) << st.detail;
    EXPECT_NE(st.detail.find("not below the cgroup root"), std::string::npos) << st.detail;
    EXPECT_EQ(check.cgroup_path(), refused.string());
    fs::remove(refused / "cgroup.procs");
}

TEST(SelfCheck, CannotCreateTheCgroup) {
    SelfCheckOptions o;
    o.cgroup_root = "/nonexistent-podid-root";
    SelfCheck check(o);
    auto st = check.run_once();
    EXPECT_FALSE(st.passed);
    EXPECT_NE(st.detail.find("cannot create /nonexistent-podid-root/podid-selfcheck.scope"), std::string::npos)
        << st.detail;
}

TEST(SelfCheck, PeriodicRunsUntilStopped) {
    TempRoot root;
    const fs::path dir = root.path / "podid-selfcheck.scope";
    std::atomic<int> answered{0};
    LoopbackAgent agent([&](const std::string&) {
        ++answered;
        return http_ok(selfcheck_body(inode_of(dir)));
    });
    auto o = loopback_options(root, agent.port());
    o.interval = std::chrono::milliseconds(20);
    SelfCheck check(o);
    check.start();
    for (int i = 0; i < 500 && answered < 3; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    check.stop();
    EXPECT_GE(answered.load(), 3);
    int after_stop = answered;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(answered.load(), after_stop);
    EXPECT_TRUE(check.status().passed) << check.status().detail;
    fs::remove(dir / "cgroup.procs");
}

}  // namespace
}  // namespace podid
