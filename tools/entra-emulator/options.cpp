#include "options.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/ip/address.hpp>

namespace podid::entra_emulator {
namespace {

template <class Int>
std::optional<Int> to_int(std::string_view text) {
    Int value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
        return std::nullopt;
    return value;
}

Result<std::pair<std::string, uint16_t>> ip_port(const std::string& flag, std::string_view text) {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
        return make_error(flag + " needs IP:PORT, got '" + std::string(text) + "'");
    std::string host(text.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (ec)
        return make_error(flag + ": '" + host + "' is not an IP address");
    auto port = to_int<uint16_t>(text.substr(colon + 1));
    if (!port)
        return make_error(flag + ": '" + std::string(text.substr(colon + 1)) + "' is not a port number");
    return std::make_pair(host, *port);
}

}  // namespace

std::string usage() {
    return "usage: podid-entra-emulator [flags]\n"
           "Speaks Entra ID's v2 token endpoint (client credentials with a client secret, a certificate assertion or\n"
           "a federated token) over HTTPS, for tests, demos and local development.\n"
           "  --listen IP:PORT          HTTPS address (default 127.0.0.1:8443; port 0 picks one)\n"
           "  --admin IP:PORT           admin API, plain HTTP, loopback only (default: none)\n"
           "  --cert FILE --key FILE    serve this certificate (chain) instead of generating a CA\n"
           "  --dns-name NAME           an extra DNS name in the generated certificate (repeatable; localhost and\n"
           "                            127.0.0.1 are always in it)\n"
           "  --ca-out FILE             write the generated CA certificate (PEM) there, for SSL_CERT_FILE or\n"
           "                            REQUESTS_CA_BUNDLE\n"
           "  --trust-ca FILE           also trust this CA (PEM) when fetching federated issuers' metadata\n"
           "                            (repeatable)\n"
           "  --config FILE             tenants and apps (JSON, see README.md)\n"
           "  --signing-key FILE        RSA private key for access tokens (default: a new RSA-2048 key)\n"
           "  --token-lifetime SECONDS  expires_in of access tokens (default 3599)\n"
           "  --jwks-cache SECONDS      how long fetched issuer keys are reused (default 30)\n"
           "  --issuer NAME             host a test issuer at /_issuers/NAME (repeatable)\n"
           "  --fault JSON              start with a fault, e.g. '{\"mode\":\"status\",\"status\":429,"
           "\"retry_after\":2,\"count\":3}'\n"
           "  --ready-file PATH         once listening, write {\"url\",\"port\",\"admin_port\",\"issuers\"} there\n"
           "  --help                    show this text\n";
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
        if (flag == "--help" || flag == "-h") {
            if (inline_value)
                return make_error(flag + " takes no value");
            cmd.help = true;
            continue;
        }
        static const char* kValued[] = {"--listen",     "--admin",    "--cert",   "--key",         "--dns-name",
                                        "--ca-out",     "--trust-ca", "--config", "--signing-key", "--token-lifetime",
                                        "--jwks-cache", "--issuer",   "--fault",  "--ready-file"};
        if (std::none_of(std::begin(kValued), std::end(kValued), [&](const char* f) { return flag == f; }))
            return make_error("unknown flag '" + flag + "' (see --help)");
        std::string v;
        if (inline_value)
            v = *inline_value;
        else if (i + 1 < args.size())
            v = args[++i];
        else
            return make_error(flag + " needs a value");
        if (v.empty())
            return make_error(flag + " needs a non-empty value");

        if (flag == "--listen" || flag == "--admin") {
            auto addr = ip_port(flag, v);
            if (!addr)
                return addr.error();
            if (flag == "--admin") {
                cmd.admin = *addr;
            } else {
                cmd.listen_ip = addr->first;
                cmd.listen_port = addr->second;
            }
        } else if (flag == "--cert") {
            cmd.cert_file = v;
        } else if (flag == "--key") {
            cmd.key_file = v;
        } else if (flag == "--dns-name") {
            cmd.dns_names.push_back(v);
        } else if (flag == "--ca-out") {
            cmd.ca_out = v;
        } else if (flag == "--trust-ca") {
            cmd.trust_ca_files.push_back(v);
        } else if (flag == "--config") {
            cmd.config_file = v;
        } else if (flag == "--signing-key") {
            cmd.signing_key_file = v;
        } else if (flag == "--token-lifetime" || flag == "--jwks-cache") {
            auto seconds = to_int<int64_t>(v);
            if (!seconds || *seconds <= 0)
                return make_error(flag + " needs a positive number of seconds");
            (flag == "--token-lifetime" ? cmd.token_lifetime : cmd.jwks_cache_seconds) = *seconds;
        } else if (flag == "--issuer") {
            cmd.issuers.push_back(v);
        } else if (flag == "--fault") {
            auto fault = parse_fault(std::string_view(v));
            if (!fault)
                return make_error("--fault: " + fault.error().message);
            cmd.fault = *fault;
        } else if (flag == "--ready-file") {
            cmd.ready_file = v;
        }
    }
    if (cmd.cert_file.empty() != cmd.key_file.empty())
        return make_error("--cert and --key go together");
    if (!cmd.cert_file.empty() && !cmd.ca_out.empty())
        return make_error("--ca-out writes a generated CA; with --cert there is none");
    return cmd;
}

Result<std::string> read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return make_error("cannot read " + path, errno);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

Result<nlohmann::json> read_config_file(const std::string& path) {
    auto text = read_text_file(path);
    if (!text)
        return text.error();
    auto config = nlohmann::json::parse(*text, nullptr, false);
    if (config.is_discarded() || !config.is_object())
        return make_error(path + " is not a JSON object");
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (config.contains("apps") && config["apps"].is_array()) {
        for (auto& app : config["apps"]) {
            if (!app.is_object() || !app.contains("certificate_files"))
                continue;
            if (!app["certificate_files"].is_array())
                return make_error(path + ": 'certificate_files' must be an array of paths");
            for (const auto& file : app["certificate_files"]) {
                if (!file.is_string())
                    return make_error(path + ": 'certificate_files' must be an array of paths");
                auto pem = read_text_file((dir / file.get<std::string>()).string());
                if (!pem)
                    return pem.error();
                app["certificates"].push_back(*pem);
            }
            app.erase("certificate_files");
        }
    }
    return config;
}

Result<EmulatorOptions> to_options(const CommandLine& cmd) {
    EmulatorOptions options;
    options.listen_ip = cmd.listen_ip;
    options.port = cmd.listen_port;
    if (cmd.admin) {
        options.admin_ip = cmd.admin->first;
        options.admin_port = cmd.admin->second;
    }
    options.dns_names.insert(options.dns_names.end(), cmd.dns_names.begin(), cmd.dns_names.end());
    if (!cmd.cert_file.empty()) {
        auto cert = read_text_file(cmd.cert_file);
        auto key = read_text_file(cmd.key_file);
        if (!cert)
            return cert.error();
        if (!key)
            return key.error();
        options.cert_pem = *cert;
        options.key_pem = *key;
    }
    for (const auto& file : cmd.trust_ca_files) {
        auto pem = read_text_file(file);
        if (!pem)
            return pem.error();
        options.trust_ca_pems.push_back(*pem);
    }
    if (!cmd.signing_key_file.empty()) {
        auto pem = read_text_file(cmd.signing_key_file);
        if (!pem)
            return pem.error();
        options.signing_key_pem = *pem;
    }
    options.token_lifetime = cmd.token_lifetime;
    options.jwks_cache_ttl = std::chrono::seconds(cmd.jwks_cache_seconds);
    if (cmd.fault)
        options.fault = *cmd.fault;
    return options;
}

}  // namespace podid::entra_emulator
