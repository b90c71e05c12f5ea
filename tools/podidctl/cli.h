// podidctl's command line (pure, unit tested) and the commands themselves.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/result.h"

namespace podid::ctl {

struct CtlOptions {
    enum class Command { status, pods, explain, conns, help, version };
    Command command = Command::help;
    std::string socket = "/run/podid/admin.sock";  // --socket, $PODID_ADMIN_SOCKET
    std::string bpffs = "/sys/fs/bpf/podid";       // --bpffs, $PODID_BPFFS
    bool json = false;                             // -o json
    std::string explain_pod;                       // explain NAMESPACE/NAME
    std::string explain_cgroup;                    // explain --cgroup PATH
    size_t limit = 50;                             // conns --limit N
};

// argv without argv[0]; env gives PODID_ADMIN_SOCKET / PODID_BPFFS defaults.
Result<CtlOptions> parse_ctl_options(const std::vector<std::string>& args, const std::string& env_socket = "",
                                     const std::string& env_bpffs = "");

std::string ctl_usage();

// Runs the command, writing to out/err. Exit status: 0 ok; 1 the agent is unreachable, not ready (status) or
// answered an error; 2 bad usage (handled by the caller).
int run_ctl(const CtlOptions& options, std::ostream& out, std::ostream& err);

}  // namespace podid::ctl
