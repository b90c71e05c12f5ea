// (6) Upgrades and restarts, side by side on one node: a pod calls IMDS in a tight loop (a new connection per
// request, curl) while the agent is replaced
//  - by a surge hand-over (a new agent takes the listeners and the pins, the old one drains): how long from the new
//    agent's exec to the old agent drained, and how many of the pod's requests failed;
//  - by a plain restart (SIGTERM, the next agent started as soon as the old one exited): how long from SIGTERM until
//    the pod is served again (the refused window), and how many requests were refused;
//  - after a crash (SIGKILL, the next agent started at once): the same window.
// Also: exec -> "podid-agent ready". Windows are seen by the pod, whose curl runs every few milliseconds, so they
// carry a few milliseconds of curl start-up.
#include <signal.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "bench.h"
#include "fixtures.h"
#include "stats.h"
#include "support/podid_node.h"

namespace podid::bench {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// The pod's loop: one line per request, "<http code> <curl exit code>".
struct PodLoop {
    test::Process process;
    std::string stop_file;

    std::map<std::string, int> stop() {
        { std::ofstream(stop_file) << "stop\n"; }
        test::RunResult r = process.wait(std::chrono::seconds(30));
        std::map<std::string, int> outcomes;
        std::istringstream lines(r.out);
        for (std::string line; std::getline(lines, line);)
            ++outcomes[line];
        return outcomes;
    }
};

PodLoop start_loop(test::PodidNode& pn, const std::string& pod, const std::string& name) {
    PodLoop loop;
    loop.stop_file = pn.node().workdir() + "/stop-" + name;
    loop.process = pn.node().spawn_in_pod(
        pod, {"sh", "-c",
              "until [ -e " + loop.stop_file +
                  " ]; do curl -s -o /dev/null -H 'Metadata: true' --max-time 10 -w '%{http_code} %{exitcode}\\n' "
                  "'http://169.254.169.254" +
                  token_path() + "'; done; exit 0"});
    return loop;
}

int count_not(const std::map<std::string, int>& outcomes, const std::string& good) {
    int n = 0;
    for (const auto& [outcome, count] : outcomes)
        if (outcome != good)
            n += count;
    return n;
}

// SIGTERM or SIGKILL, then the next agent at once: milliseconds until the pod is served again.
double restart_window(test::PodidNode& pn, int signal, int n, double& exec_to_ready_ms) {
    const Clock::time_point t0 = Clock::now();
    pn.agent().signal(signal);
    pn.agent().wait(std::chrono::seconds(15));
    const Clock::time_point exec = Clock::now();
    test::Process next =
        pn.spawn_agent(pn.surge_agent_cgroup(n), pn.node().workdir() + "/admin-" + std::to_string(n) + ".sock");
    if (!next.wait_for_output("podid-agent ready", std::chrono::seconds(20)))
        throw std::runtime_error("the restarted agent did not become ready: " + next.read_err());
    exec_to_ready_ms = ms_between(exec, Clock::now());
    pn.adopt_agent(std::move(next));
    auto ok = pn.curl_until_ok("probe", token_path(), std::chrono::seconds(10));
    if (ok.status != 200)
        throw std::runtime_error("the pod was not served after a restart");
    return ms_between(t0, Clock::now());
}

}  // namespace

void bench_upgrades(const BenchOptions& options, Section& out) {
    const int rounds = options.quick ? 2 : 20;
    auto pn = standalone_node();
    pn->add_pod({.name = "loop"});
    pn->add_pod({.name = "probe"});
    pn->start_emulator();
    pn->start_agent();
    int next_cgroup = 0;

    // Surge hand-overs.
    std::vector<double> handover_ms;
    PodLoop loop = start_loop(*pn, "loop", "handover");
    test::Process old = std::move(pn->agent());
    for (int i = 0; i < rounds; ++i) {
        const Clock::time_point t0 = Clock::now();
        test::Process next = pn->spawn_agent(pn->surge_agent_cgroup(next_cgroup),
                                             pn->node().workdir() + "/admin-" + std::to_string(next_cgroup) + ".sock");
        ++next_cgroup;
        if (!next.wait_for_output("hand-over: complete", std::chrono::seconds(20)))
            throw std::runtime_error("hand-over did not complete: " + next.read_err() + old.read_err());
        handover_ms.push_back(ms_between(t0, Clock::now()));
        old.wait(std::chrono::seconds(15));
        old = std::move(next);
    }
    pn->adopt_agent(std::move(old));
    auto handover_outcomes = loop.stop();
    const int handover_failed = count_not(handover_outcomes, "200 0");

    // Plain restarts and crashes.
    std::vector<double> sigterm_ms, sigkill_ms, ready_ms;
    loop = start_loop(*pn, "loop", "restart");
    for (int i = 0; i < rounds; ++i) {
        double ready = 0;
        sigterm_ms.push_back(restart_window(*pn, SIGTERM, next_cgroup++, ready));
        ready_ms.push_back(ready);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    auto restart_outcomes = loop.stop();
    for (int i = 0; i < rounds; ++i) {
        double ready = 0;
        sigkill_ms.push_back(restart_window(*pn, SIGKILL, next_cgroup++, ready));
        ready_ms.push_back(ready);
    }

    out.figure("handover_p50_ms", "surge hand-over: new agent exec -> old agent drained, p50", median(handover_ms),
               "ms");
    out.figure("handover_max_ms", "surge hand-over: new agent exec -> old agent drained, max",
               percentile(handover_ms, 100), "ms");
    out.figure("handover_failed", "surge hand-overs: pod requests that failed", handover_failed, "requests");
    out.figure("sigterm_window_p50_ms", "plain restart: SIGTERM -> pod served again, p50", median(sigterm_ms), "ms");
    out.figure("sigterm_window_p99_ms", "plain restart: SIGTERM -> pod served again, p99", percentile(sigterm_ms, 99),
               "ms");
    out.figure("sigterm_refused", "plain restarts: pod requests refused", count_not(restart_outcomes, "200 0"),
               "requests");
    out.figure("sigkill_window_p50_ms", "crash: SIGKILL -> pod served again (next agent at once), p50",
               median(sigkill_ms), "ms");
    out.figure("exec_to_ready_p50_ms", "agent exec -> ready (warm token cache), p50", median(ready_ms), "ms");
    out.target("surge hand-overs fail no pod request", handover_failed, "==", 0);
    int resets = 0;
    for (const auto* outcomes : {&handover_outcomes, &restart_outcomes})
        for (const auto& [outcome, count] : *outcomes)
            if (outcome != "200 0" && outcome != "000 7")
                resets += count;
    out.target("no reset or empty reply in hand-overs and restarts", resets, "==", 0);
    out.notes.push_back(std::to_string(rounds) + " of each; the pod loop opens a new connection per request (" +
                        std::to_string(handover_outcomes["200 0"]) + " answers during the hand-overs)");
}

}  // namespace podid::bench
