// podid-agent: flags and wiring only. Each stage lives in its own folder (see docs/architecture.md).
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <bpf/libbpf.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "app/agent.h"
#include "app/options.h"
#include "datapath/datapath.h"
#include "datapath/guard.h"

extern char** environ;

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
        std::string kv(*e);
        if (auto eq = kv.find('='); eq != std::string::npos)
            env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    auto options = podid::parse_agent_options(args, env);
    if (!options) {
        std::fprintf(stderr, "podid-agent: %s\n", options.error().message.c_str());
        return 2;
    }
    switch (options->command) {
    case podid::AgentOptions::Command::help: std::fputs(podid::agent_usage().c_str(), stdout); return 0;
    case podid::AgentOptions::Command::version:
        // What an operator compares with the image and its labels: the release, the commit it was built from
        // (cmake/version.cmake), the build type, and the libbpf this process runs with (a shared library, so
        // the image's, not necessarily the one it was compiled against).
        std::printf("podid-agent %s\ncommit %s\nbuild %s\nlibbpf %s\n", PODID_VERSION, PODID_GIT_COMMIT_STR,
                    PODID_BUILD_TYPE_STR, libbpf_version_string());
        return 0;
    case podid::AgentOptions::Command::uninstall: {
        // The interface guard's tc filters first (in this network namespace: run it where the agent ran).
        auto guards = podid::InterfaceGuard::uninstall(options->bpffs);
        if (!guards)
            std::fprintf(stderr, "podid-agent: uninstall: interface guard: %s\n", guards.error().message.c_str());
        else if (*guards > 0)
            std::fprintf(stderr, "podid-agent: removed the interface guard from %zu interfaces\n", *guards);
        auto r = podid::Datapath::uninstall(options->bpffs);
        if (!r) {
            std::fprintf(stderr, "podid-agent: uninstall: %s\n", r.error().message.c_str());
            return 1;
        }
        std::fprintf(stderr, "podid-agent: removed every pin under %s; pods now reach 169.254.169.254 directly\n",
                     options->bpffs.c_str());
        return 0;
    }
    case podid::AgentOptions::Command::run: break;
    }
    return podid::run_agent(*options);
}
