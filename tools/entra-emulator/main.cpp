// podid-entra-emulator: flags -> EntraEmulator, then serve until SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "options.h"
#include "server.h"

namespace {

// Written to a temporary name and renamed, so a reader polling the path never sees half a file.
bool write_file_atomically(const std::string& path, const std::string& text) {
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << text;
        if (!out.flush())
            return false;
    }
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

int fail(const std::string& message) {
    std::cerr << "podid-entra-emulator: " << message << "\n";
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace podid::entra_emulator;
    auto cmd = parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
    if (!cmd) {
        std::cerr << "podid-entra-emulator: " << cmd.error().message << "\n";
        return 2;
    }
    if (cmd->help) {
        std::cout << usage();
        return 0;
    }
    auto options = to_options(*cmd);
    if (!options)
        return fail(options.error().message);

    // Block the stop signals before the I/O thread exists so only sigwait() below receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    EntraEmulator emulator(std::move(*options));
    if (!cmd->config_file.empty()) {
        auto config = read_config_file(cmd->config_file);
        if (!config)
            return fail(config.error().message);
        if (auto r = emulator.directory().load(*config); !r)
            return fail(cmd->config_file + ": " + r.error().message);
    }
    if (auto r = emulator.start(); !r)
        return fail(r.error().message);
    nlohmann::json issuers = nlohmann::json::object();
    for (const auto& name : cmd->issuers) {
        auto url = emulator.add_issuer(name);
        if (!url)
            return fail(url.error().message);
        issuers[name] = *url;
    }
    if (!cmd->ca_out.empty() && !write_file_atomically(cmd->ca_out, emulator.ca_pem()))
        return fail("cannot write " + cmd->ca_out);
    nlohmann::json ready = {{"url", emulator.origin()},
                            {"port", emulator.port()},
                            {"admin_port", cmd->admin ? nlohmann::json(emulator.admin_port()) : nlohmann::json()},
                            {"issuers", issuers}};
    if (!cmd->ready_file.empty() && !write_file_atomically(cmd->ready_file, ready.dump() + "\n"))
        return fail("cannot write " + cmd->ready_file);
    std::cout << "listening on " << emulator.origin();
    if (cmd->admin)
        std::cout << ", admin API on " << emulator.admin_origin();
    std::cout << std::endl;

    int sig = 0;
    sigwait(&stop_signals, &sig);
    emulator.stop();
    return 0;
}
