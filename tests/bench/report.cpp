#include "report.h"

#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace podid::bench {

void Section::figure(std::string key, std::string label, double value, std::string unit) {
    figures.push_back({std::move(key), std::move(label), value, std::move(unit)});
}

bool Section::target(std::string text, double measured, std::string op, double threshold) {
    bool pass = false;
    if (op == ">=")
        pass = measured >= threshold;
    else if (op == "<=")
        pass = measured <= threshold;
    else if (op == "==")
        pass = measured == threshold;
    // NaN (nothing measured) never passes.
    pass = pass && !std::isnan(measured);
    targets.push_back({std::move(text), measured, std::move(op), threshold, pass});
    return pass;
}

namespace {

// JSON has no NaN: an unmeasured figure is null.
nlohmann::ordered_json number(double v) {
    if (std::isnan(v) || std::isinf(v))
        return nullptr;
    return v;
}

std::string format(double v) {
    if (std::isnan(v))
        return "n/a";
    std::ostringstream s;
    double a = std::fabs(v);
    s << std::fixed << std::setprecision(a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 3) << v;
    return s.str();
}

}  // namespace

nlohmann::ordered_json to_json(const RunInfo& info, const std::vector<Section>& sections) {
    nlohmann::ordered_json out;
    out["schema"] = "podid-bench/1";
    out["mode"] = info.mode;
    out["command"] = info.command;
    out["started"] = info.started;
    out["host"] = {{"kernel", info.kernel}, {"cpus", info.cpus}, {"load_at_start", info.load_at_start}};
    size_t passed = 0, total = 0;
    out["benchmarks"] = nlohmann::ordered_json::array();
    for (const auto& s : sections) {
        nlohmann::ordered_json b;
        b["name"] = s.name;
        b["title"] = s.title;
        b["seconds"] = s.seconds;
        b["error"] = s.error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.error);
        b["figures"] = nlohmann::ordered_json::object();
        for (const auto& f : s.figures)
            b["figures"][f.key] = {{"value", number(f.value)}, {"unit", f.unit}, {"label", f.label}};
        b["targets"] = nlohmann::ordered_json::array();
        for (const auto& t : s.targets) {
            b["targets"].push_back({{"target", t.text},
                                    {"measured", number(t.measured)},
                                    {"op", t.op},
                                    {"threshold", t.threshold},
                                    {"pass", t.pass}});
            ++total;
            passed += t.pass ? 1 : 0;
        }
        b["notes"] = s.notes;
        out["benchmarks"].push_back(std::move(b));
    }
    out["targets_passed"] = passed;
    out["targets_total"] = total;
    return out;
}

void print_table(std::ostream& out, const RunInfo& info, const std::vector<Section>& sections) {
    out << "\npodid benchmarks (" << info.mode << ", " << info.cpus << " CPUs, load " << std::fixed
        << std::setprecision(2) << info.load_at_start << " at start, kernel " << info.kernel << ")\n";
    for (const auto& s : sections) {
        out << "\n== " << s.title << " [" << s.name << ", " << std::setprecision(0) << s.seconds << " s]\n";
        if (!s.error.empty())
            out << "  ERROR: " << s.error << "\n";
        for (const auto& f : s.figures)
            out << "  " << std::left << std::setw(58) << f.label << std::right << std::setw(12) << format(f.value)
                << " " << f.unit << "\n";
        for (const auto& t : s.targets)
            out << "  " << (t.pass ? "PASS " : "FAIL ") << std::left << std::setw(53) << t.text << std::right
                << std::setw(12) << format(t.measured) << " " << t.op << " " << format(t.threshold) << "\n";
        for (const auto& n : s.notes)
            out << "  note: " << n << "\n";
    }
}

}  // namespace podid::bench
