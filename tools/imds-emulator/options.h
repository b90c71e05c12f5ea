// podid-imds-emulator's command line, parsed as a pure function so every flag rule is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "faults.h"
#include "identity_store.h"
#include "server.h"

namespace podid::emulator {

struct CommandLine {
    bool help = false;
    std::string listen_ip = "169.254.169.254";
    uint16_t listen_port = 80;
    std::vector<EmulatedIdentity> identities;
    std::optional<std::string> system_identity;
    std::string tenant_id = kDefaultTenantId;
    int64_t token_lifetime = 86400;
    std::string key_file;    // empty: generate a key at start
    std::string ready_file;  // empty: none
    FaultSpec fault;
    bool enforce_limits = false;
};

// `args` excludes argv[0]. Flags take "--flag VALUE" or "--flag=VALUE". The error is one line for the user.
Result<CommandLine> parse_command_line(const std::vector<std::string>& args);

// "IP:PORT" or "[IPv6]:PORT".
Result<std::pair<std::string, uint16_t>> parse_listen(std::string_view text);

EmulatorConfig to_config(const CommandLine& cmd);

std::string usage();

}  // namespace podid::emulator
