// (4) Footprint: the agent's RSS (VmRSS, VmHWM) and CPU (utime+stime) in Kubernetes mode with P pods
// known through the API-server double, and with C cgroups in the BPF per-cgroup counter map; each idle
// (no busy polling: CPU must stay near zero) and under load (wrk from one pod + one token per pod).
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench.h"
#include "fixtures.h"
#include "proc_usage.h"
#include "support/kube_apiserver.h"
#include "wrk.h"

namespace podid::bench {

namespace {

struct Phase {
    std::string key, label;
};

// One token request from every pod at once (per-pod state in the agent: caller cache, audit).
void token_per_pod(KubeNode& k, const std::vector<std::string>& cgroups) {
    const std::string file = k.node().workdir() + "/footprint-lines";
    std::ofstream lines(file, std::ios::trunc);
    for (const auto& c : cgroups)
        lines << c << "\t" << token_path() << "\n";
    lines.close();
    test::RunResult r = k.node().run_in_node({PODID_BENCH_CLIENT_BIN, "burst", "--lines", file, "--per-cgroup", "1"},
                                             "", std::chrono::seconds(120));
    if (r.exit_code != 0)
        throw std::runtime_error("burst client failed: " + r.out + r.err);
}

}  // namespace

void bench_footprint(const BenchOptions& options, Section& out) {
    const std::vector<int> pod_counts = options.quick ? std::vector<int>{25, 100} : std::vector<int>{250, 1000};
    const int cgroup_count = options.quick ? 500 : 10'000;
    const double idle_seconds = options.quick ? 1 : 10;
    const double load_seconds = options.quick ? 1 : 5;

    auto k = KubeNode::create();
    k->podid().start_emulator();
    k->podid().start_agent();
    const pid_t agent = k->podid().agent().pid();
    std::vector<std::string> cgroups;

    auto measure = [&](const std::string& key, const std::string& label) {
        k->podid().agent_log();
        std::this_thread::sleep_for(std::chrono::seconds(1));  // let the last events settle
        ProcUsage before = read_proc_usage(agent);
        std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long>(idle_seconds * 1000)));
        ProcUsage idle = read_proc_usage(agent);
        const double idle_cpu = (idle.cpu_seconds - before.cpu_seconds) / idle_seconds;
        token_per_pod(*k, cgroups);
        WrkResult w =
            run_wrk_in_cgroup(k->node(), cgroups.front(),
                              {"http://169.254.169.254" + token_path(), {"Metadata: true"}, 1, 32, load_seconds});
        ProcUsage loaded = read_proc_usage(agent);
        if (!idle.ok || !loaded.ok || !w.ok)
            throw std::runtime_error("footprint (" + key + "): agent gone or wrk failed: " + w.raw);
        out.figure(key + "_idle_rss_mib", label + ": RSS idle", idle.rss_mib, "MiB");
        out.figure(key + "_idle_cpu", label + ": CPU idle (cores, over " + std::to_string(int(idle_seconds)) + " s)",
                   idle_cpu, "cores");
        out.figure(key + "_load_rss_mib", label + ": RSS after load", loaded.rss_mib, "MiB");
        out.figure(key + "_hwm_mib", label + ": peak RSS (VmHWM)", loaded.hwm_mib, "MiB");
        out.figure(key + "_load_cpu", label + ": CPU under load (cores)",
                   (loaded.cpu_seconds - idle.cpu_seconds) / load_seconds, "cores");
        out.figure(key + "_load_rps", label + ": req/s during load", w.rps, "req/s");
        out.target(label + ": idle CPU <= 0.01 cores", idle_cpu, "<=", 0.01);
        return loaded;
    };

    int published = 0;
    ProcUsage at_most_pods;
    for (int count : pod_counts) {
        for (; published < count; ++published)
            cgroups.push_back(k->add_pod(published).cgroup_dir);
        bool seen = test::KubeApiServer::wait_for([&] { return k->metric("podid_pods_tracked") >= count; },
                                                  std::chrono::seconds(60));
        if (!seen)
            throw std::runtime_error("the agent did not report " + std::to_string(count) + " pods tracked");
        at_most_pods = measure("pods" + std::to_string(count), std::to_string(count) + " pods");
    }
    out.target(std::to_string(pod_counts.back()) + " pods: RSS <= 32 MiB (peak, VmHWM)", at_most_pods.hwm_mib,
               "<=", 32);

    // Cgroups that made a redirected connection: one counter-map entry each.
    const std::string parent = k->node().kubepods_dir() + "/bench-touch.slice";
    const std::string file = k->node().workdir() + "/touch-cgroups";
    {
        std::ofstream list(file, std::ios::trunc);
        for (int i = 0; i < cgroup_count; ++i) {
            std::string dir = parent + "/c" + std::to_string(i);
            std::filesystem::create_directories(dir);
            list << dir << "\n";
        }
    }
    test::RunResult r =
        k->node().run_in_node({PODID_BENCH_CLIENT_BIN, "touch", "--cgroups", file}, "", std::chrono::seconds(300));
    if (r.exit_code != 0)
        throw std::runtime_error("touch client failed: " + r.out + r.err);
    const double tracked = k->metric("podid_cgroups_tracked");
    out.figure("cgroups_tracked", "cgroups in the BPF counter map", tracked, "");
    measure("cgroups" + std::to_string(cgroup_count),
            std::to_string(cgroup_count) + " cgroups + " + std::to_string(pod_counts.back()) + " pods");
    if (tracked < cgroup_count)
        out.notes.push_back("fewer cgroups tracked than touched: " + r.out);
    out.notes.push_back(
        "Kubernetes mode against the API-server double (HTTPS, list+watch); hostNetwork pods "
        "(cgroups only); idle = " +
        std::to_string(int(idle_seconds)) + " s without requests");
}

}  // namespace podid::bench
