// (1) Token serving through the redirect: wrk in a pod asks http://169.254.169.254 for a cached token
// (podid, via the cgroup/connect4 redirect) and, alternately, asks nginx on the node IP for a static
// file of the same body size. Keep-alive and connection-per-request; medians over alternating trials.
#include <filesystem>
#include <iostream>
#include <tuple>

#include <thread>

#include "bench.h"
#include "fixtures.h"
#include "nginx.h"
#include "stats.h"
#include "wrk.h"

namespace podid::bench {

namespace {

struct Series {
    std::vector<double> rps, p50, p99, answered_rps;
    void add(const WrkResult& w) {
        rps.push_back(w.rps);
        // Only 2xx answers are tokens served: a 429 from a rate limit is cheap and must not count.
        double ok_share =
            w.requests > 0 ? static_cast<double>(w.requests - w.errors) / static_cast<double>(w.requests) : 0;
        answered_rps.push_back(w.rps * ok_share);
        p50.push_back(w.p50_ms);
        p99.push_back(w.p99_ms);
    }
};

WrkResult must_run(test::TestNode& node, const WrkLoad& load, const std::string& what) {
    WrkResult w = run_wrk(node, "load", load);
    if (!w.ok)
        throw std::runtime_error("wrk against " + what + " failed: " + w.raw);
    return w;
}

// --hold: the commands that put a process in the load pod (its cgroup first: `ip netns exec` remounts /sys) and
// show the agent, for perf, strace and bpftool while the setup is live.
void hold_for_inspection(test::PodidNode& pn, const NginxServer& nginx) {
    test::TestNode& node = pn.node();
    const test::Pod& pod = node.pod("load");
    const std::string in_pod = shell_entering(pod.cgroup_dir, pod.netns);
    std::cerr << "\npodid-bench --hold: the node is up.\n"
              << "  node netns   " << node.node_netns() << "\n"
              << "  pod netns    " << pod.netns << "\n"
              << "  pod cgroup   " << pod.cgroup_dir << "\n"
              << "  audit log    " << pn.audit_path() << "  (truncate it between runs)\n"
              << "  agent        pgrep -f 'podid-agent.*" << node.prefix() << "'\n"
              << "  load podid   " << in_pod
              << " wrk -t1 -c32 -d5 --latency -H 'Metadata: true' 'http://169.254.169.254" << token_path() << "'\n"
              << "  load nginx   " << in_pod << " wrk -t1 -c32 -d5 --latency -H 'Metadata: true' '" << nginx.url()
              << "'\n"
              << "  (add -H 'Connection: close' for connection-per-request)\n"
              << "Press Enter to run the benchmark and tear the node down.\n";
    std::string line;
    std::getline(std::cin, line);
}

}  // namespace

void bench_token_serving(const BenchOptions& options, Section& out) {
    auto pn = standalone_node();
    // One pod is the whole load here, so the per-caller rate limit (200/s by default, a fairness guard between
    // pods) would measure the limit, not the serving path: it is switched off for this benchmark only.
    pn->set_agent_args({"--caller-rate", "0"});
    pn->add_pod({.name = "load"});
    pn->start_emulator();
    pn->start_agent();
    test::TestNode& node = pn->node();

    // The first connection right after "ready" has been refused now and then: retry briefly.
    auto first = pn->curl("load", token_path());
    for (int i = 0; i < 20 && first.status != 200; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        first = pn->curl("load", token_path());
    }
    if (first.status != 200)
        throw std::runtime_error("the agent did not serve a token: " + std::to_string(first.status) + " " + first.body +
                                 first.err + "\n" + pn->agent_log());
    auto nginx = NginxServer::start(node, node.node_ip(), 8080, first.body);
    if (options.hold)
        hold_for_inspection(*pn, *nginx);
    out.figure("body_bytes", "token body size (both servers)", static_cast<double>(first.body.size()), "B");

    // 12 pairs of 3 s rather than 5 of 5 s: enough pairs for a 95 % interval of each median ratio (ranks 2 and 10
    // of 12), so a run tells a change of the serving path from the machine's drift.
    const int trials = options.quick ? 1 : 12;
    const double seconds = options.quick ? 1 : 3;
    const std::string podid_url = "http://169.254.169.254" + token_path();
    const std::vector<std::string> keepalive = {"Metadata: true"};
    const std::vector<std::string> close = {"Metadata: true", "Connection: close"};
    const std::string audit = pn->audit_path();

    struct Mode {
        std::string key, label;
        std::vector<std::string> headers;
        Series podid, nginx;
        long podid_errors = 0, nginx_errors = 0;
    };
    std::vector<Mode> modes = {{"keepalive", "keep-alive", keepalive, {}, {}},
                               {"close", "connection-per-request", close, {}, {}}};
    for (auto& m : modes) {
        WrkLoad podid_load{podid_url, m.headers, 1, 32, seconds};
        WrkLoad nginx_load{nginx->url(), m.headers, 1, 32, seconds};
        if (!options.quick) {  // warm both: first-connection costs and page cache out of the trials
            must_run(node, {podid_url, m.headers, 1, 32, 1}, "podid");
            must_run(node, {nginx->url(), m.headers, 1, 32, 1}, "nginx");
        }
        for (int t = 0; t < trials; ++t) {
            // A B, then B A: drift in the machine's load hits both sides alike.
            for (int leg = 0; leg < 2; ++leg) {
                bool podid_turn = (leg == 0) == (t % 2 == 0);
                WrkResult w = must_run(node, podid_turn ? podid_load : nginx_load, podid_turn ? "podid" : "nginx");
                (podid_turn ? m.podid : m.nginx).add(w);
                (podid_turn ? m.podid_errors : m.nginx_errors) += w.errors;
                if (w.errors > 0 && out.notes.size() < 2)
                    out.notes.push_back(std::string(podid_turn ? "podid" : "nginx") + " answered " +
                                        std::to_string(w.errors) + " of " + std::to_string(w.requests) +
                                        " requests with an error or non-2xx status (e.g. a per-caller rate limit)");
                // The audit log grows by one line per request; keep the disk out of the picture.
                std::error_code ec;
                std::filesystem::resize_file(audit, 0, ec);
                pn->agent_log();  // drain the agent's stderr pipe
            }
        }
    }

    for (auto& m : modes) {
        out.figure(m.key + "_podid_rps", "podid " + m.label + " req/s (2xx only)", median(m.podid.answered_rps),
                   "req/s");
        out.figure(m.key + "_podid_all_rps", "podid " + m.label + " req/s (any status)", median(m.podid.rps), "req/s");
        out.figure(m.key + "_nginx_rps", "nginx " + m.label + " req/s", median(m.nginx.rps), "req/s");
        out.figure(m.key + "_podid_p50_ms", "podid " + m.label + " p50", median(m.podid.p50), "ms");
        out.figure(m.key + "_nginx_p50_ms", "nginx " + m.label + " p50", median(m.nginx.p50), "ms");
        out.figure(m.key + "_podid_p99_ms", "podid " + m.label + " p99", median(m.podid.p99), "ms");
        out.figure(m.key + "_nginx_p99_ms", "nginx " + m.label + " p99", median(m.nginx.p99), "ms");
        out.figure(m.key + "_rps_ratio", m.label + " 2xx req/s podid/nginx (median of pairs)",
                   median(ratios(m.podid.answered_rps, m.nginx.answered_rps)), "x");
        out.figure(m.key + "_p99_ratio", m.label + " p99 podid/nginx (median of pairs)",
                   median(ratios(m.podid.p99, m.nginx.p99)), "x");
        out.figure(m.key + "_podid_errors", "podid " + m.label + " errors (socket + non-2xx, all trials)",
                   static_cast<double>(m.podid_errors), "");
        out.figure(m.key + "_nginx_errors", "nginx " + m.label + " errors (socket + non-2xx, all trials)",
                   static_cast<double>(m.nginx_errors), "");
    }
    out.target("keep-alive req/s >= 0.9 x nginx",
               median(ratios(modes[0].podid.answered_rps, modes[0].nginx.answered_rps)), ">=", 0.9);
    out.target("keep-alive p99 <= 1.5 x nginx p99", median(ratios(modes[0].podid.p99, modes[0].nginx.p99)), "<=", 1.5);
    out.target("connection-per-request req/s >= 0.8 x nginx",
               median(ratios(modes[1].podid.answered_rps, modes[1].nginx.answered_rps)), ">=", 0.8);
    for (auto& m : modes) {
        for (const auto& [what, podid_side, nginx_side] :
             {std::tuple{"2xx req/s", &m.podid.answered_rps, &m.nginx.answered_rps},
              std::tuple{"p99", &m.podid.p99, &m.nginx.p99}}) {
            auto r = ratios(*podid_side, *nginx_side);
            Interval ci = median_ci95(r);
            char line[200];
            std::snprintf(line, sizeof(line), "%s %s podid/nginx per pair: median %.3f, 95 %% interval %.3f-%.3f",
                          m.label.c_str(), what, median(r), ci.low, ci.high);
            out.notes.push_back(line);
        }
    }
    out.notes.push_back("wrk -t1 -c32 in the pod, " + std::to_string(trials) + " alternating trials x " +
                        std::to_string(static_cast<int>(seconds)) +
                        " s per server and mode; agent with production defaults (2 I/O threads, audit log on) except "
                        "--caller-rate 0 (one pod is the whole load); "
                        "nginx worker_processes auto, access_log off");
}

}  // namespace podid::bench
