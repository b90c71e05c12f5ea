// podid-bench [--quick] [--only NAME[,NAME]] [--out FILE] [--strict] [--hold] [--connect-rounds N]
// Runs the benchmarks on a test node built inside this machine, prints a table with
// PASS/FAIL per target line and writes the result as JSON. Exit: 2 when a benchmark could not run,
// 1 with --strict when a target line failed, 0 otherwise.
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "bench.h"
#include "support/test_node.h"

namespace {

using namespace podid::bench;

struct Entry {
    const char* name;
    const char* title;
    void (*run)(const BenchOptions&, Section&);
};

const Entry kBenchmarks[] = {
    {"token_serving", "1. Token serving through the redirect vs nginx static", bench_token_serving},
    {"connect_path", "2. Connect path: direct vs podid redirect vs iptables DNAT", bench_connect_path},
    {"upstream_amplification", "3. Upstream amplification: N pods x concurrent bursts", bench_upstream_amplification},
    {"footprint", "4. Footprint: RSS and CPU, idle and under load", bench_footprint},
    {"cold_paths", "5. Cold paths: start to ready, new pod to first token", bench_cold_paths},
    {"upgrades", "6. Upgrades: surge hand-over vs plain restart vs crash, seen by a pod", bench_upgrades},
};

std::string now_iso() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

double load_average() {
    std::ifstream in("/proc/loadavg");
    double one = 0;
    in >> one;
    return one;
}

int usage(const std::string& why) {
    std::cerr
        << "podid-bench: " << why
        << "\nusage: podid-bench [--quick] [--only NAME[,NAME]] [--out FILE] [--strict] [--hold] [--connect-rounds N]\n"
        << "  --hold   token_serving, connect_path: keep the node up and print how to load and profile it; Enter goes "
           "on\n"
        << "  --connect-rounds N   connect_path: rounds of 0.1 s per variant (default 320, ~3 min); more narrow\n"
        << "                       the ratios' confidence intervals as 1/sqrt(N)\n"
        << "benchmarks:";
    for (const auto& b : kBenchmarks)
        std::cerr << " " << b.name;
    std::cerr << "\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    BenchOptions options;
    std::set<std::string> only;
    std::string out_path = std::string(PODID_BUILD_DIR) + "/bench-results.json";
    bool strict = false;
    std::string command = "podid-bench";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        command += " " + a;
        if (a == "--quick") {
            options.quick = true;
        } else if (a == "--strict") {
            strict = true;
        } else if (a == "--hold") {
            options.hold = true;
        } else if (a == "--connect-rounds" && i + 1 < argc) {
            std::string v = argv[++i];
            command += " " + v;
            char* end = nullptr;
            long rounds = std::strtol(v.c_str(), &end, 10);
            if (end == v.c_str() || *end != '\0' || rounds < 6 || rounds > 100000)
                return usage("--connect-rounds wants a whole number from 6 to 100000, not '" + v + "'");
            options.connect_rounds = static_cast<int>(rounds);
        } else if ((a == "--only" || a == "--out") && i + 1 < argc) {
            std::string v = argv[++i];
            command += " " + v;
            if (a == "--out") {
                out_path = v;
                continue;
            }
            std::stringstream names(v);
            std::string name;
            while (std::getline(names, name, ','))
                only.insert(name);
        } else if (a == "--help" || a == "-h") {
            usage("runs podid's benchmarks on a test node; needs root");
            return 0;
        } else {
            return usage("unknown argument " + a);
        }
    }
    for (const auto& name : only) {
        bool known = false;
        for (const auto& b : kBenchmarks)
            known = known || name == b.name;
        if (!known)
            return usage("no benchmark named " + name);
    }
    if (!podid::test::is_root()) {
        std::cerr << "podid-bench: run as root: it loads BPF programs and builds network namespaces\n";
        return 2;
    }

    RunInfo info;
    info.mode = options.quick ? "quick" : "full";
    info.command = command;
    info.started = now_iso();
    utsname u{};
    ::uname(&u);
    info.kernel = u.release;
    info.cpus = static_cast<unsigned>(::sysconf(_SC_NPROCESSORS_ONLN));
    info.load_at_start = load_average();

    std::vector<Section> sections;
    bool errors = false;
    for (const auto& b : kBenchmarks) {
        if (!only.empty() && !only.count(b.name))
            continue;
        Section s;
        s.name = b.name;
        s.title = b.title;
        std::cerr << "podid-bench: running " << b.name << (options.quick ? " (quick)" : "") << "...\n";
        auto start = std::chrono::steady_clock::now();
        try {
            b.run(options, s);  // its test node is gone when this returns, whatever happened
        } catch (const std::exception& e) {
            s.error = e.what();
            errors = true;
        }
        s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        sections.push_back(std::move(s));
    }

    print_table(std::cout, info, sections);
    std::ofstream out(out_path);
    out << to_json(info, sections).dump(2) << "\n";
    out.close();
    if (!out) {
        std::cerr << "podid-bench: cannot write " << out_path << "\n";
        return 2;
    }
    std::cout << "\nresults: " << out_path << "\n";
    bool failed = false;
    for (const auto& s : sections)
        for (const auto& t : s.targets)
            failed = failed || !t.pass;
    if (errors)
        return 2;
    return strict && failed ? 1 : 0;
}
