// "--name value" pairs of the client's sub-commands.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace podid::bench {

// Every argument is "--name value"; anything else ends the parse with `error` set.
struct Args {
    std::map<std::string, std::string> values;
    std::string error;
    std::string get(const std::string& name, const std::string& fallback = "") const {
        auto it = values.find(name);
        return it == values.end() ? fallback : it->second;
    }
    long number(const std::string& name, long fallback) const {
        auto it = values.find(name);
        return it == values.end() ? fallback : std::stol(it->second);
    }
};

inline Args parse_args(const std::vector<std::string>& args) {
    Args out;
    for (size_t i = 0; i < args.size(); i += 2) {
        if (args[i].rfind("--", 0) != 0 || i + 1 >= args.size()) {
            out.error = "expected --name value at '" + args[i] + "'";
            return out;
        }
        out.values[args[i].substr(2)] = args[i + 1];
    }
    return out;
}

// Lines of a file, empty ones skipped.
std::vector<std::string> read_lines(const std::string& path);

}  // namespace podid::bench
