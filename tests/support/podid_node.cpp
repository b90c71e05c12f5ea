#include "support/podid_node.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace podid::test {

using namespace std::chrono_literals;

namespace {

std::string base64url_decode(std::string in) {
    for (char& c : in) {
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
    }
    while (in.size() % 4)
        in.push_back('=');
    static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    int val = 0, bits = -8;
    for (char c : in) {
        if (c == '=')
            break;
        auto pos = alphabet.find(c);
        if (pos == std::string::npos)
            return {};
        val = (val << 6) + static_cast<int>(pos);
        bits += 6;
        if (bits >= 0) {
            out.push_back(static_cast<char>((val >> bits) & 0xff));
            bits -= 8;
        }
    }
    return out;
}

}  // namespace

nlohmann::json jwt_claims(const std::string& jwt) {
    auto first = jwt.find('.');
    auto second = jwt.find('.', first + 1);
    if (first == std::string::npos || second == std::string::npos)
        return nullptr;
    return nlohmann::json::parse(base64url_decode(jwt.substr(first + 1, second - first - 1)), nullptr, false);
}

nlohmann::json PodidNode::HttpResult::json() const { return nlohmann::json::parse(body, nullptr, false); }

std::unique_ptr<PodidNode> PodidNode::create(PodidNodeOptions options) {
    std::unique_ptr<PodidNode> n(new PodidNode());
    n->options_ = std::move(options);
    n->node_ = TestNode::create();
    // The agent runs as a hostNetwork pod would: in the node netns, its cgroup under kubepods (so the
    // programs see it, and it must exempt itself to reach the real IMDS).
    n->agent_cgroup_ = n->node_->make_cgroup(n->options_.cgroup_driver == "cgroupfs"
                                                 ? "kubepods/besteffort/podc0ffee00-0000-4000-8000-000000000001/" +
                                                       std::string(64, 'a')
                                                 : "kubepods.slice/kubepods-besteffort.slice/"
                                                   "kubepods-besteffort-podc0ffee00_0000_4000_8000_000000000001.slice/"
                                                   "cri-containerd-" +
                                                       std::string(64, 'a') + ".scope");
    n->daemon_cgroup_ = n->node_->system_cgroup("imds");
    n->bindings_path_ = n->node_->workdir() + "/bindings.json";
    n->audit_path_ = n->node_->workdir() + "/audit.log";
    n->admin_socket_path_ = n->node_->workdir() + "/admin.sock";
    // The node's own directory for what agents share (hand-over socket, token cache): root-only, as /run/podid.
    std::filesystem::create_directories(n->node_->workdir() + "/node-run");
    std::filesystem::permissions(n->node_->workdir() + "/node-run", std::filesystem::perms::owner_all);
    if (!n->options_.bindings.is_null())
        n->write_bindings(n->options_.bindings);
    return n;
}

PodidNode::~PodidNode() = default;

void PodidNode::write_bindings(const nlohmann::json& bindings) {
    // Write-then-rename, as editors and config management do.
    std::string tmp = bindings_path_ + ".tmp";
    {
        std::ofstream out(tmp);
        out << bindings.dump(2) << "\n";
    }
    if (std::rename(tmp.c_str(), bindings_path_.c_str()) != 0)
        throw std::runtime_error("cannot write " + bindings_path_);
}

void PodidNode::start_emulator() {
    std::vector<std::string> argv = {PODID_EMULATOR_BIN, "--listen", "169.254.169.254:80"};
    for (const auto& id : options_.vm_identities) {
        argv.push_back("--identity");
        argv.push_back(id);
    }
    if (!options_.system_identity.empty()) {
        argv.push_back("--system-identity");
        argv.push_back(options_.system_identity);
    }
    emulator_ = node_->spawn(argv, node_->node_netns(), daemon_cgroup_);
    if (!emulator_.wait_for_output("listening on", 10s))
        throw std::runtime_error("the IMDS emulator did not start: " + emulator_.read_err());
}

std::vector<std::string> PodidNode::agent_argv(const std::string& admin_socket) const {
    std::vector<std::string> argv = {
        PODID_AGENT_BIN, "--node-ip", node_->node_ip(), "--cgroup-root",
        options_.cgroup_driver == "cgroupfs" ? node_->kubepods_cgroupfs_dir() : node_->kubepods_dir(), "--bpffs",
        pin_dir(), "--audit-log", audit_path_, "--admin-socket", admin_socket,
        // Shared by every agent of this node, as the DaemonSet's host directory is; never the machine's /run/podid.
        "--handover-socket", handover_socket_path(), "--token-cache-file", token_cache_path()};
    if (!options_.bindings.is_null()) {
        argv.push_back("--bindings");
        argv.push_back(bindings_path_);
    }
    argv.insert(argv.end(), options_.agent_args.begin(), options_.agent_args.end());
    if (options_.agent_cgroup_namespace)
        argv.insert(argv.begin(), {"unshare", "--cgroup", "--"});
    return argv;
}

std::string PodidNode::surge_agent_cgroup(int n) {
    char uid[64];
    std::snprintf(uid, sizeof uid, "c0ffee00_0000_4000_8000_%012d", 100 + n);
    return node_->make_cgroup("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + std::string(uid) +
                              ".slice/cri-containerd-" + std::string(64, static_cast<char>('a' + n % 6)) + ".scope");
}

Process PodidNode::spawn_agent(const std::string& cgroup, const std::string& admin_socket,
                               const std::vector<std::string>& extra_args) {
    std::vector<std::string> argv = agent_argv(admin_socket);
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    return node_->spawn(argv, node_->node_netns(), cgroup, options_.agent_env);
}

void PodidNode::adopt_agent(Process agent) { agent_ = std::move(agent); }

void PodidNode::start_agent(std::chrono::milliseconds timeout) {
    agent_ = node_->spawn(agent_argv(admin_socket_path_), node_->node_netns(), agent_cgroup_, options_.agent_env);
    if (!agent_.wait_for_output("podid-agent ready", timeout)) {
        auto r = agent_.wait(1s);
        throw std::runtime_error("podid-agent did not become ready (exit " + std::to_string(r.exit_code) +
                                 "): " + agent_.read_err() + r.err);
    }
}

void PodidNode::kill_agent() {
    agent_.signal(SIGKILL);
    agent_.wait(5s);
}

int PodidNode::stop_agent() {
    agent_.signal(SIGTERM);
    return agent_.wait(15s).exit_code;
}

bool PodidNode::agent_running() { return agent_.running(); }

std::string PodidNode::agent_log() { return agent_.read_err(); }

PodidNode::HttpResult PodidNode::run_curl(const std::vector<std::string>& argv, const std::string& netns,
                                          const std::string& cgroup) {
    RunResult r = node_->run(argv, netns, cgroup, 30s);
    HttpResult h;
    h.err = r.err;
    auto nl = r.out.rfind('\n');
    if (r.exit_code != 0 || nl == std::string::npos) {
        h.err += " (curl exit " + std::to_string(r.exit_code) + ")";
        return h;
    }
    h.status = std::atoi(r.out.c_str() + nl + 1);
    h.body = r.out.substr(0, nl);
    return h;
}

PodidNode::FirstOk PodidNode::curl_until_ok(const std::string& pod, const std::string& path_and_query,
                                            std::chrono::seconds limit) {
    const auto start = std::chrono::steady_clock::now();
    FirstOk r;
    while (r.status != 200 && std::chrono::steady_clock::now() - start < limit) {
        r.status = curl(pod, path_and_query).status;
        if (r.status != 200)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

PodidNode::HttpResult PodidNode::curl(const std::string& pod, const std::string& path_and_query, bool metadata_header,
                                      const std::vector<std::string>& extra_headers) {
    std::vector<std::string> argv = {"curl", "-sS", "-m", "20", "-w", "\n%{http_code}"};
    if (metadata_header) {
        argv.push_back("-H");
        argv.push_back("Metadata: true");
    }
    for (const auto& h : extra_headers) {
        argv.push_back("-H");
        argv.push_back(h);
    }
    argv.push_back("http://169.254.169.254" + path_and_query);
    const Pod& p = node_->pod(pod);
    return run_curl(argv, p.netns, p.cgroup_dir);
}

PodidNode::HttpResult PodidNode::curl_in_node(const std::string& url, const std::vector<std::string>& headers,
                                              const std::string& cgroup) {
    std::vector<std::string> argv = {"curl", "-sS", "-m", "20", "-w", "\n%{http_code}"};
    for (const auto& h : headers) {
        argv.push_back("-H");
        argv.push_back(h);
    }
    argv.push_back(url);
    return run_curl(argv, node_->node_netns(), cgroup);
}

nlohmann::json PodidNode::emulator_stats() {
    auto r = curl_in_node("http://169.254.169.254/_emulator/stats", {}, daemon_cgroup_);
    if (r.status != 200)
        throw std::runtime_error("emulator stats: status " + std::to_string(r.status) + " " + r.err);
    return nlohmann::json::parse(r.body);
}

void PodidNode::emulator_reset() {
    RunResult r = node_->run({"curl", "-sS", "-m", "10", "-X", "POST", "http://169.254.169.254/_emulator/reset"},
                             node_->node_netns(), daemon_cgroup_);
    if (r.exit_code != 0)
        throw std::runtime_error("emulator reset failed: " + r.err);
}

void PodidNode::emulator_fault(const nlohmann::json& fault) {
    RunResult r = node_->run({"curl", "-sS", "-m", "10", "-X", "POST", "-H", "Content-Type: application/json", "-d",
                              fault.dump(), "http://169.254.169.254/_emulator/faults"},
                             node_->node_netns(), daemon_cgroup_);
    if (r.exit_code != 0)
        throw std::runtime_error("emulator fault failed: " + r.err);
}

std::vector<std::string> PodidNode::emulator_peers() {
    std::vector<std::string> peers;
    for (const auto& req : emulator_stats().value("requests", nlohmann::json::array()))
        peers.push_back(req.value("peer", ""));
    return peers;
}

std::vector<nlohmann::json> PodidNode::audit_lines(std::size_t at_least) {
    // The agent writes audit lines from a writer thread, after the answer is sent and within its flush interval
    // (50 ms): a test that knows how many lines it expects waits for them (a loaded machine can take longer than
    // any fixed pause); then wait until the file has not grown for longer than that interval, so a line for an
    // answer the test already has is there.
    auto read = [&] {
        std::vector<nlohmann::json> lines;
        std::ifstream in(audit_path_);
        std::string line;
        while (std::getline(in, line)) {
            auto j = nlohmann::json::parse(line, nullptr, false);
            if (!j.is_discarded())
                lines.push_back(std::move(j));
        }
        return lines;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (at_least > 0 && read().size() < at_least && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::error_code ec;
    auto size = std::filesystem::file_size(audit_path_, ec);
    for (int i = 0; i < 30; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(80));
        const auto now = std::filesystem::file_size(audit_path_, ec);
        if (now == size)
            break;
        size = now;
    }
    return read();
}

}  // namespace podid::test
