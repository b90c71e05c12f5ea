// podidctl: see cli.h and README.md ("podidctl").
#include <cstdlib>
#include <iostream>

#include "cli.h"

int main(int argc, char** argv) {
    auto env = [](const char* name) {
        const char* v = std::getenv(name);
        return std::string(v ? v : "");
    };
    auto options = podid::ctl::parse_ctl_options(std::vector<std::string>(argv + 1, argv + argc),
                                                 env("PODID_ADMIN_SOCKET"), env("PODID_BPFFS"));
    if (!options) {
        std::cerr << "podidctl: " << options.error().message << "\n";
        return 2;
    }
    return podid::ctl::run_ctl(*options, std::cout, std::cerr);
}
