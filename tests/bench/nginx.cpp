#include "nginx.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "netns_http.h"

namespace podid::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string config(const std::string& dir, const std::string& ip, int port) {
    return "daemon off;\n"
           "master_process on;\n"
           "user root;\n"  // the files sit in the node's private workdir
           "worker_processes auto;\n"
           "pid " +
           dir +
           "/nginx.pid;\n"
           "error_log " +
           dir +
           "/error.log warn;\n"
           "events { worker_connections 4096; }\n"
           "http {\n"
           "  access_log off;\n"
           "  keepalive_requests 1000000;\n"
           "  keepalive_timeout 90s;\n"
           "  client_body_temp_path " +
           dir +
           "/tmp;\n"
           "  proxy_temp_path " +
           dir +
           "/tmp;\n"
           "  fastcgi_temp_path " +
           dir +
           "/tmp;\n"
           "  types { application/json json; }\n"
           "  server {\n"
           "    listen " +
           ip + ":" + std::to_string(port) +
           " reuseport;\n"
           "    root " +
           dir +
           "/www;\n"
           "    location / { }\n"
           "  }\n"
           "}\n";
}

}  // namespace

std::unique_ptr<NginxServer> NginxServer::start(test::TestNode& node, const std::string& ip, int port,
                                                const std::string& body) {
    std::unique_ptr<NginxServer> n(new NginxServer());
    n->dir_ = node.workdir() + "/nginx";
    fs::create_directories(n->dir_ + "/www");
    fs::create_directories(n->dir_ + "/tmp");
    std::ofstream(n->dir_ + "/www/token.json") << body;
    std::ofstream(n->dir_ + "/nginx.conf") << config(n->dir_, ip, port);
    // Its own cgroup outside kubepods: the node's teardown kills workers too, even if the master died.
    n->master_ = node.spawn({"nginx", "-c", n->dir_ + "/nginx.conf", "-p", n->dir_, "-e", n->dir_ + "/error.log"},
                            node.node_netns(), node.system_cgroup("bench-nginx"));
    for (int i = 0; i < 250; ++i) {
        if (tcp_connects(node.node_netns(), ip, port)) {
            n->url_ = "http://" + ip + ":" + std::to_string(port) + "/token.json";
            return n;
        }
        if (!n->master_.running())
            break;
        std::this_thread::sleep_for(20ms);
    }
    std::ifstream log(n->dir_ + "/error.log");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    throw std::runtime_error("nginx did not start: " + n->master_.read_err() + text);
}

NginxServer::~NginxServer() {
    if (master_.pid() <= 0)
        return;
    master_.signal(SIGQUIT);  // graceful: the master stops its workers before exiting
    master_.wait(5s);         // kills it at the deadline
}

}  // namespace podid::bench
