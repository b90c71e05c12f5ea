#include "wrk.h"

#include <cmath>
#include <sstream>

namespace podid::bench {
namespace {

// "1.23ms", "850.00us", "1.01s" -> milliseconds; NaN when unreadable.
double to_ms(const std::string& text) {
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (...) {
        return std::nan("");
    }
    std::string unit = text.substr(used);
    if (unit == "us")
        return v / 1000;
    if (unit == "ms")
        return v;
    if (unit == "s")
        return v * 1000;
    if (unit == "m")
        return v * 60'000;
    return std::nan("");
}

std::vector<std::string> argv_for(const WrkLoad& load) {
    std::vector<std::string> argv = {"wrk",
                                     "-t",
                                     std::to_string(load.threads),
                                     "-c",
                                     std::to_string(load.connections),
                                     "-d",
                                     std::to_string(std::max(1, static_cast<int>(std::lround(load.seconds)))) + "s",
                                     "--latency",
                                     "--timeout",
                                     "5s"};
    for (const auto& h : load.headers) {
        argv.push_back("-H");
        argv.push_back(h);
    }
    argv.push_back(load.url);
    return argv;
}

WrkResult finish(const test::RunResult& r) {
    WrkResult w = parse_wrk(r.out);
    if (r.exit_code != 0)
        w.ok = false;
    w.raw = r.out + r.err;
    return w;
}

}  // namespace

WrkResult parse_wrk(const std::string& text) {
    WrkResult w;
    w.raw = text;
    std::istringstream in(text);
    std::string line;
    bool distribution = false;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string first;
        words >> first;
        if (first == "Latency" && line.find("Distribution") != std::string::npos) {
            distribution = true;
            continue;
        }
        if (distribution && (first == "50%" || first == "99%")) {
            std::string value;
            words >> value;
            (first == "50%" ? w.p50_ms : w.p99_ms) = to_ms(value);
            continue;
        }
        if (first == "Requests/sec:") {
            words >> w.rps;
            w.ok = w.rps > 0;
        } else if (line.find("requests in") != std::string::npos) {
            w.requests = std::atol(first.c_str());
        } else if (first == "Non-2xx") {
            std::string rest;
            std::getline(words, rest);
            auto colon = rest.find(':');
            if (colon != std::string::npos)
                w.errors += std::atol(rest.c_str() + colon + 1);
        } else if (first == "Socket") {
            // "Socket errors: connect 0, read 0, write 0, timeout 0"
            std::string word;
            while (words >> word)
                if (!word.empty() && std::isdigit(static_cast<unsigned char>(word[0])))
                    w.errors += std::atol(word.c_str());
        }
    }
    return w;
}

WrkResult run_wrk(test::TestNode& node, const std::string& pod, const WrkLoad& load) {
    auto timeout = std::chrono::milliseconds(static_cast<long>(load.seconds * 1000) + 20'000);
    return finish(node.run_in_pod(pod, argv_for(load), timeout));
}

WrkResult run_wrk_in_cgroup(test::TestNode& node, const std::string& cgroup_dir, const WrkLoad& load) {
    auto timeout = std::chrono::milliseconds(static_cast<long>(load.seconds * 1000) + 20'000);
    return finish(node.run(argv_for(load), node.node_netns(), cgroup_dir, timeout));
}

}  // namespace podid::bench
