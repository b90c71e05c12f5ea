// What a benchmark run found: figures and PASS/FAIL target lines per benchmark, printed as a table and
// written as JSON (bench-results.json) for machines.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace podid::bench {

struct Figure {
    std::string key;    // machine name, stable: "podid_keepalive_rps"
    std::string label;  // for the table: "podid keep-alive req/s"
    double value = 0;
    std::string unit;  // "req/s", "ms", "MiB", "x", "" ...
};

struct Target {
    std::string text;  // the target as the issue states it: "keep-alive req/s >= 0.9 x nginx"
    double measured = 0;
    std::string op;  // ">=", "<=", "=="
    double threshold = 0;
    bool pass = false;
};

struct Section {
    std::string name;  // "token_serving": what --only selects
    std::string title;
    std::vector<Figure> figures;
    std::vector<Target> targets;
    std::vector<std::string> notes;  // conditions worth knowing when reading the figures
    std::string error;               // the benchmark could not finish: why
    double seconds = 0;

    void figure(std::string key, std::string label, double value, std::string unit);
    // Records a target line; the comparison is done here so every line is judged the same way.
    bool target(std::string text, double measured, std::string op, double threshold);
};

struct RunInfo {
    std::string mode;     // "quick" | "full"
    std::string command;  // as run
    std::string started;  // ISO 8601 UTC
    std::string kernel;
    unsigned cpus = 0;
    double load_at_start = 0;  // 1-minute load average: others compiling make the figures noisy
};

nlohmann::ordered_json to_json(const RunInfo& info, const std::vector<Section>& sections);
void print_table(std::ostream& out, const RunInfo& info, const std::vector<Section>& sections);

}  // namespace podid::bench
