// podid-entra-emulator's command line, parsed as a pure function; reading the files it names is a separate step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "faults.h"
#include "server.h"

namespace podid::entra_emulator {

struct CommandLine {
    bool help = false;
    std::string listen_ip = "127.0.0.1";
    uint16_t listen_port = 8443;
    std::optional<std::pair<std::string, uint16_t>> admin;  // --admin IP:PORT
    std::string cert_file, key_file;
    std::vector<std::string> dns_names;
    std::string ca_out;
    std::vector<std::string> trust_ca_files;
    std::string config_file;
    std::string signing_key_file;
    int64_t token_lifetime = 3599;
    int64_t jwks_cache_seconds = 30;
    std::vector<std::string> issuers;
    std::optional<FaultSpec> fault;
    std::string ready_file;
};

// `args` excludes argv[0]. Flags take "--flag VALUE" or "--flag=VALUE". The error is one line for the user.
Result<CommandLine> parse_command_line(const std::vector<std::string>& args);

// The options the command line describes, with the certificate, key and CA files it names read.
Result<EmulatorOptions> to_options(const CommandLine& cmd);

// The --config file: {"tenants":[...],"apps":[...]} (directory.h); an app's "certificate_files" (paths
// relative to the file) are read into its "certificates".
Result<nlohmann::json> read_config_file(const std::string& path);

Result<std::string> read_text_file(const std::string& path);

std::string usage();

}  // namespace podid::entra_emulator
