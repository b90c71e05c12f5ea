#include "options.h"

#include <charconv>

#include <boost/asio/ip/address.hpp>

namespace podid::emulator {
namespace {

template <class Int>
std::optional<Int> parse_int(std::string_view text) {
    Int value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
        return std::nullopt;
    return value;
}

}  // namespace

std::string usage() {
    return "usage: podid-imds-emulator [flags]\n"
           "Behaves like the Azure IMDS managed-identity endpoint, for tests, demos and local development.\n"
           "  --listen IP:PORT            address to serve on (default 169.254.169.254:80; 127.0.0.1:0 picks a port)\n"
           "  --identity CLIENT_ID[,RESOURCE_ID[,OBJECT_ID]]\n"
           "                              a user-assigned identity of the VM (repeatable)\n"
           "  --system-identity CLIENT_ID the identity used when a request names none (else: 400 Identity not found)\n"
           "  --tenant TID                tenant id in tokens and /metadata/identity/info\n"
           "  --token-lifetime SECONDS    token lifetime (default 86400)\n"
           "  --key-file PEM              RSA private key to sign tokens with (default: a new RSA-2048 key)\n"
           "  --ready-file PATH           write \"IP:PORT\\n\" there once listening\n"
           "  --fault JSON                start with a fault, e.g. "
           "'{\"mode\":\"status\",\"status\":429,\"count\":3}';\n"
           "                              modes: none, status, latency, reset, hang, slow_body, html\n"
           "  --enforce-limits            429 beyond IMDS's 20 token requests/s or 5 concurrent\n"
           "  --help                      show this text\n"
           "Admin API on the same listener: GET /_emulator/stats, POST /_emulator/reset,\n"
           "GET|POST /_emulator/faults, GET /_emulator/jwks.\n";
}

Result<std::pair<std::string, uint16_t>> parse_listen(std::string_view text) {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
        return make_error("--listen needs IP:PORT, got '" + std::string(text) + "'");
    std::string_view host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    boost::asio::ip::make_address(std::string(host), ec);
    if (ec)
        return make_error("--listen: '" + std::string(host) + "' is not an IP address");
    auto port = parse_int<uint16_t>(text.substr(colon + 1));
    if (!port)
        return make_error("--listen: '" + std::string(text.substr(colon + 1)) + "' is not a port number");
    return std::make_pair(std::string(host), *port);
}

Result<CommandLine> parse_command_line(const std::vector<std::string>& args) {
    CommandLine cmd;
    for (size_t i = 0; i < args.size(); ++i) {
        std::string flag = args[i];
        std::optional<std::string> inline_value;
        if (size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
            inline_value = flag.substr(eq + 1);
            flag.resize(eq);
        }
        auto value = [&]() -> Result<std::string> {
            if (inline_value)
                return *inline_value;
            if (i + 1 >= args.size())
                return make_error(flag + " needs a value");
            return args[++i];
        };
        auto no_value = [&]() -> Result<void> {
            if (inline_value)
                return make_error(flag + " takes no value");
            return {};
        };

        if (flag == "--help" || flag == "-h") {
            if (auto r = no_value(); !r)
                return r.error();
            cmd.help = true;
            continue;
        }
        if (flag == "--enforce-limits") {
            if (auto r = no_value(); !r)
                return r.error();
            cmd.enforce_limits = true;
            continue;
        }
        auto v = value();
        if (flag != "--listen" && flag != "--identity" && flag != "--system-identity" && flag != "--tenant" &&
            flag != "--token-lifetime" && flag != "--key-file" && flag != "--ready-file" && flag != "--fault") {
            return make_error("unknown flag '" + flag + "' (see --help)");
        }
        if (!v)
            return v.error();

        if (flag == "--listen") {
            auto listen = parse_listen(*v);
            if (!listen)
                return listen.error();
            cmd.listen_ip = listen->first;
            cmd.listen_port = listen->second;
        } else if (flag == "--identity") {
            auto identity = parse_identity_flag(*v);
            if (!identity)
                return identity.error();
            cmd.identities.push_back(*identity);
        } else if (flag == "--system-identity") {
            if (v->empty())
                return make_error("--system-identity needs a client id");
            cmd.system_identity = *v;
        } else if (flag == "--tenant") {
            if (v->empty())
                return make_error("--tenant needs a tenant id");
            cmd.tenant_id = *v;
        } else if (flag == "--token-lifetime") {
            auto seconds = parse_int<int64_t>(*v);
            if (!seconds || *seconds <= 0)
                return make_error("--token-lifetime needs a positive number of seconds");
            cmd.token_lifetime = *seconds;
        } else if (flag == "--key-file") {
            cmd.key_file = *v;
        } else if (flag == "--ready-file") {
            cmd.ready_file = *v;
        } else if (flag == "--fault") {
            auto fault = parse_fault(std::string_view(*v));
            if (!fault)
                return make_error("--fault: " + fault.error().message);
            cmd.fault = *fault;
        }
    }
    return cmd;
}

EmulatorConfig to_config(const CommandLine& cmd) {
    EmulatorConfig config;
    config.listen_ip = cmd.listen_ip;
    config.listen_port = cmd.listen_port;
    for (const auto& identity : cmd.identities)
        config.identities.add_user_assigned(identity);
    if (cmd.system_identity)
        config.identities.set_system_assigned(*cmd.system_identity);
    config.tenant_id = cmd.tenant_id;
    config.token_lifetime = cmd.token_lifetime;
    config.fault = cmd.fault;
    config.enforce_limits = cmd.enforce_limits;
    return config;
}

}  // namespace podid::emulator
