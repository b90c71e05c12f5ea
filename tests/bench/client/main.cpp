// podid-bench-client <connect-loop|connect-alternate|burst|touch|first-token> --name value ...  (see client.h)
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "client/args.h"
#include "client/client.h"

namespace podid::bench {

std::vector<std::string> read_lines(const std::string& path) {
    std::vector<std::string> lines;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty())
            lines.push_back(line);
    return lines;
}

}  // namespace podid::bench

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(
            stderr,
            "usage: podid-bench-client connect-loop|connect-alternate|burst|touch|first-token --name value ...\n");
        return 2;
    }
    std::string command = argv[1];
    std::vector<std::string> args(argv + 2, argv + argc);
    if (command == "connect-loop")
        return podid::bench::run_connect_loop(args);
    if (command == "connect-alternate")
        return podid::bench::run_connect_alternate(args);
    if (command == "burst")
        return podid::bench::run_burst(args);
    if (command == "touch")
        return podid::bench::run_touch(args);
    if (command == "first-token")
        return podid::bench::run_first_token(args);
    std::fprintf(stderr, "podid-bench-client: unknown command %s\n", command.c_str());
    return 2;
}
