// podid-imds-emulator: flags → EmulatorServer, then wait for SIGTERM/SIGINT.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "options.h"
#include "server.h"

namespace {

// Written to a temporary name and renamed, so a test polling the file never reads half a line.
bool write_ready_file(const std::string& path, const std::string& endpoint) {
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << endpoint << "\n";
        if (!out.flush()) return false;
    }
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace podid::emulator;
    auto cmd = parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
    if (!cmd) {
        std::cerr << "podid-imds-emulator: " << cmd.error().message << "\n";
        return 2;
    }
    if (cmd->help) {
        std::cout << usage();
        return 0;
    }

    auto signer = cmd->key_file.empty() ? TokenSigner::generate() : TokenSigner::from_pem_file(cmd->key_file);
    if (!signer) {
        std::cerr << "podid-imds-emulator: " << signer.error().message << "\n";
        return 1;
    }

    // Block the stop signals before the I/O thread exists so only sigwait() below receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    EmulatorServer server(to_config(*cmd), std::move(*signer));
    auto port = server.start();
    if (!port) {
        std::cerr << "podid-imds-emulator: " << port.error().message << "\n";
        return 1;
    }
    if (!cmd->ready_file.empty() && !write_ready_file(cmd->ready_file, server.endpoint())) {
        std::cerr << "podid-imds-emulator: cannot write ready file " << cmd->ready_file << "\n";
        return 1;
    }
    std::cout << "listening on " << server.endpoint() << std::endl;

    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
    return 0;
}
