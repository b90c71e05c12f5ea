// (3) Upstream amplification: N hostNetwork pods (cgroups only) x K concurrent requests each, in B
// bursts, for the same (identity, resource) pair and for a distinct pair per pod. The emulator counts
// the token requests that reached it. NMI forwards every request: its column is N x K x B.
#include <filesystem>
#include <fstream>

#include "bench.h"
#include "fixtures.h"

namespace podid::bench {

void bench_upstream_amplification(const BenchOptions& options, Section& out) {
    const std::vector<int> sizes = options.quick ? std::vector<int>{1, 5} : std::vector<int>{1, 10, 50, 100, 250};
    const int per_pod = options.quick ? 2 : 4;
    const int bursts = options.quick ? 2 : 3;
    auto pn = standalone_node();
    std::vector<std::string> cgroups;
    for (int i = 0; i < sizes.back(); ++i)
        cgroups.push_back(add_cgroup_pod(pn->node(), i).cgroup_dir);
    pn->start_emulator();
    pn->start_agent();
    const std::string lines_file = pn->node().workdir() + "/burst-lines";

    bool all_ok = true;
    for (int n : sizes) {
        for (bool distinct : {false, true}) {
            const std::string scenario = distinct ? "distinct" : "same";
            std::ofstream lines(lines_file, std::ios::trunc);
            for (int i = 0; i < n; ++i) {
                // A resource never asked for before: every scenario starts with a cold cache.
                std::string resource = "https://bench-" + scenario + "-" + std::to_string(n) +
                                       (distinct ? "-" + std::to_string(i) : "") + ".example.com";
                lines << cgroups[static_cast<size_t>(i)] << "\t" << token_path(resource) << "\n";
            }
            lines.close();
            pn->emulator_reset();
            test::RunResult r = pn->node().run_in_node(
                {PODID_BENCH_CLIENT_BIN, "burst", "--lines", lines_file, "--per-cgroup", std::to_string(per_pod),
                 "--rounds", std::to_string(bursts), "--pause-ms", "100"},
                "", std::chrono::seconds(180));
            auto j = nlohmann::json::parse(r.out, nullptr, false);
            if (r.exit_code != 0 || j.is_discarded())
                throw std::runtime_error("burst client failed: " + r.out + r.err);
            long requests = 0, ok = 0;
            for (const auto& round : j["rounds"])
                for (const auto& [status, count] : round["status"].items()) {
                    requests += count.get<long>();
                    ok += status == "200" ? count.get<long>() : 0;
                }
            const double upstream = pn->emulator_stats().value("token_requests", -1.0);
            const int expected = distinct ? n : 1;
            const std::string key = scenario + "_n" + std::to_string(n);
            out.figure(key + "_requests",
                       "N=" + std::to_string(n) + " " + scenario + " pair: requests (" + std::to_string(per_pod) +
                           "/pod x " + std::to_string(bursts) + " bursts)",
                       static_cast<double>(requests), "");
            out.figure(key + "_ok", "N=" + std::to_string(n) + " " + scenario + " pair: 200 answers",
                       static_cast<double>(ok), "");
            out.figure(key + "_podid_upstream",
                       "N=" + std::to_string(n) + " " + scenario + " pair: podid upstream calls", upstream, "");
            out.figure(key + "_nmi_upstream",
                       "N=" + std::to_string(n) + " " + scenario + " pair: NMI upstream calls (1 per request)",
                       static_cast<double>(requests), "");
            out.target("N=" + std::to_string(n) + " " + scenario + ": upstream calls == distinct pairs", upstream,
                       "==", expected);
            if (ok != requests && all_ok)
                out.notes.push_back("N=" + std::to_string(n) + " " + scenario + " answers: " + r.out);
            all_ok = all_ok && ok == requests;
            pn->agent_log();
        }
    }
    out.notes.push_back(
        "bursts are 100 ms apart, within one refresh period (token lifetime 24 h); "
        "every burst's connections are all open before any request is written");
    std::filesystem::remove(lines_file);
}

}  // namespace podid::bench
