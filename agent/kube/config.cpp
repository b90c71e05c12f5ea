#include "kube/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <yaml-cpp/yaml.h>

#include "kube/base64.h"

extern char** environ;

namespace podid::kube {

namespace {

Result<std::string> read_file(const std::string& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        return make_error("cannot read " + what + " " + path + ": " + std::strerror(err), err);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string resolve(const std::string& base_dir, const std::string& path) {
    if (path.empty() || path.front() == '/' || base_dir.empty())
        return path;
    return base_dir + "/" + path;
}

std::string trim(const std::string& text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return {};
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

BioPtr memory_bio(const std::string& pem) {
    return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

// Checked here so a truncated or swapped file is reported at start, naming the kubeconfig field.
Result<void> check_certificates(const std::string& pem, const std::string& what) {
    BioPtr bio = memory_bio(pem);
    int count = 0;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        X509_free(cert);
        ++count;
    }
    ERR_clear_error();  // the loop ends on "no start line", which is not an error
    if (count == 0)
        return make_error(what + " holds no PEM certificate");
    return {};
}

Result<void> check_private_key(const std::string& pem, const std::string& what) {
    BioPtr bio = memory_bio(pem);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    ERR_clear_error();
    if (!key)
        return make_error(what + " holds no unencrypted PEM private key");
    EVP_PKEY_free(key);
    return {};
}

std::string scalar(const YAML::Node& map, const char* key) {
    if (!map.IsMap())
        return {};
    const YAML::Node node = map[key];
    return node && node.IsScalar() ? node.Scalar() : std::string();
}

bool present(const YAML::Node& map, const char* key) { return map.IsMap() && map[key] && !map[key].IsNull(); }

// kubeconfig lists are [{name: N, <field>: {...}}]; the entry's <field> map, or an undefined node.
YAML::Node find_named(const YAML::Node& root, const char* list, const std::string& name, const char* field) {
    const YAML::Node entries = root[list];
    if (entries && entries.IsSequence())
        for (const YAML::Node& entry : entries)
            if (scalar(entry, "name") == name)
                return entry[field];
    return YAML::Node(YAML::NodeType::Undefined);
}

// "<field>-data" (base64 PEM) wins over "<field>" (a file path), as in kubectl.
Result<std::string> pem_field(const YAML::Node& map, const std::string& field, const std::string& base_dir,
                              const std::string& where) {
    const std::string data = scalar(map, (field + "-data").c_str());
    if (!data.empty()) {
        auto decoded = base64_decode(data);
        if (!decoded)
            return make_error(where + " " + field + "-data is not valid base64");
        return *decoded;
    }
    const std::string path = scalar(map, field.c_str());
    if (path.empty())
        return std::string();
    return read_file(resolve(base_dir, path), where + " " + field);
}

Result<KubeConfig> parse_document(const YAML::Node& root, const std::string& base_dir) {
    if (!root.IsMap())
        return make_error("kubeconfig is not a mapping");
    const std::string context_name = scalar(root, "current-context");
    if (context_name.empty())
        return make_error("kubeconfig has no current-context");
    const YAML::Node context = find_named(root, "contexts", context_name, "context");
    if (!context || !context.IsMap())
        return make_error("kubeconfig current-context \"" + context_name + "\" is not among its contexts");

    KubeConfig out;
    out.ns = scalar(context, "namespace");
    const std::string cluster_name = scalar(context, "cluster");
    const YAML::Node cluster = find_named(root, "clusters", cluster_name, "cluster");
    if (!cluster || !cluster.IsMap())
        return make_error("kubeconfig context \"" + context_name + "\" names cluster \"" + cluster_name +
                          "\", which is not among its clusters");
    const std::string where_cluster = "kubeconfig cluster \"" + cluster_name + "\"";
    if (present(cluster, "insecure-skip-tls-verify") && cluster["insecure-skip-tls-verify"].as<bool>(false))
        return make_error(where_cluster +
                          " sets insecure-skip-tls-verify: podid refuses to send credentials to "
                          "an unverified API server");
    out.server = scalar(cluster, "server");
    if (out.server.empty())
        return make_error(where_cluster + " has no server");
    auto address = parse_server_url(out.server);
    if (!address)
        return make_error(where_cluster + ": " + address.error().message);
    out.host = address->host;
    out.port = address->port;
    out.path_prefix = address->path_prefix;
    out.tls_server_name = scalar(cluster, "tls-server-name");
    auto ca = pem_field(cluster, "certificate-authority", base_dir, where_cluster);
    if (!ca)
        return ca.error();
    out.ca_pem = std::move(*ca);
    if (!out.ca_pem.empty())
        if (auto ok = check_certificates(out.ca_pem, where_cluster + " certificate-authority"); !ok)
            return ok.error();

    const std::string user_name = scalar(context, "user");
    const YAML::Node user = find_named(root, "users", user_name, "user");
    if (!user || !user.IsMap())
        return make_error("kubeconfig context \"" + context_name + "\" names user \"" + user_name +
                          "\", which is not among its users");
    const std::string where_user = "kubeconfig user \"" + user_name + "\"";
    if (present(user, "exec") || present(user, "auth-provider"))
        return make_error(where_user +
                          " uses a credential plugin (exec/auth-provider), which podid does not run; "
                          "use a token, tokenFile or client certificate");
    if (present(user, "username") || present(user, "password"))
        return make_error(where_user + " uses basic auth, which podid does not support");
    out.token = scalar(user, "token");
    const std::string token_file = scalar(user, "tokenFile");
    if (!token_file.empty()) {
        out.token_file = resolve(base_dir, token_file);
        auto token = read_file(out.token_file, where_user + " tokenFile");
        if (!token)
            return token.error();
    }
    auto cert = pem_field(user, "client-certificate", base_dir, where_user);
    if (!cert)
        return cert.error();
    auto key = pem_field(user, "client-key", base_dir, where_user);
    if (!key)
        return key.error();
    if (cert->empty() != key->empty())
        return make_error(where_user + " has a client certificate without its key or a key without its certificate");
    if (!cert->empty()) {
        if (auto ok = check_certificates(*cert, where_user + " client-certificate"); !ok)
            return ok.error();
        if (auto ok = check_private_key(*key, where_user + " client-key"); !ok)
            return ok.error();
    }
    out.client_cert_pem = std::move(*cert);
    out.client_key_pem = std::move(*key);
    if (out.token.empty() && out.token_file.empty() && out.client_cert_pem.empty())
        return make_error(where_user + " has no token, tokenFile or client certificate");
    return out;
}

std::map<std::string, std::string> process_environment() {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        const auto eq = entry.find('=');
        if (eq != std::string_view::npos)
            env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    }
    return env;
}

}  // namespace

Result<ServerAddress> parse_server_url(std::string_view url) {
    constexpr std::string_view kHttps = "https://";
    if (url.substr(0, kHttps.size()) != kHttps)
        return make_error("server \"" + std::string(url) + "\" is not an https:// URL");
    std::string_view rest = url.substr(kHttps.size());
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (path.find_first_of("?#") != std::string_view::npos)
        return make_error("server \"" + std::string(url) + "\" has a query or fragment");
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);

    ServerAddress out;
    out.path_prefix = std::string(path);
    out.port = "443";
    std::string_view port;
    bool port_given = false;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos)
            return make_error("server \"" + std::string(url) + "\" has an unterminated IPv6 address");
        out.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                return make_error("server \"" + std::string(url) + "\" is malformed after its IPv6 address");
            port = after.substr(1);
            port_given = true;
        }
    } else {
        const auto colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            port_given = true;
        }
    }
    if (out.host.empty() || out.host.find('@') != std::string::npos)
        return make_error("server \"" + std::string(url) + "\" has no usable host");
    if (port_given) {
        const bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == port.npos;
        if (!digits || std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)
            return make_error("server \"" + std::string(url) + "\" has an invalid port");
        out.port = std::string(port);
    }
    return out;
}

Result<KubeConfig> parse_kubeconfig(const std::string& text, const std::string& base_dir) {
    try {
        return parse_document(YAML::Load(text), base_dir);
    } catch (const YAML::Exception& e) {
        return make_error(std::string("kubeconfig is not valid YAML: ") + e.what());
    }
}

Result<KubeConfig> load_kubeconfig(const std::string& path) {
    auto text = read_file(path, "kubeconfig");
    if (!text)
        return text.error();
    const auto slash = path.rfind('/');
    const std::string base_dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
    auto config = parse_kubeconfig(*text, base_dir);
    if (!config)
        return make_error(path + ": " + config.error().message, config.error().code);
    return config;
}

Result<KubeConfig> in_cluster_config(const std::map<std::string, std::string>& env, const std::string& sa_dir) {
    auto lookup = [&](const char* name) {
        auto it = env.find(name);
        return it == env.end() ? std::string() : it->second;
    };
    const std::string host = lookup("KUBERNETES_SERVICE_HOST");
    const std::string port = lookup("KUBERNETES_SERVICE_PORT");
    if (host.empty() || port.empty())
        return make_error(
            "not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set "
            "(or pass a kubeconfig)");
    const bool ipv6 = host.find(':') != std::string::npos;
    auto address = parse_server_url("https://" + (ipv6 ? "[" + host + "]" : host) + ":" + port);
    if (!address)
        return make_error("KUBERNETES_SERVICE_HOST/PORT: " + address.error().message);

    KubeConfig out;
    out.server = "https://" + (ipv6 ? "[" + host + "]" : host) + ":" + port;
    out.host = address->host;
    out.port = address->port;
    out.token_file = sa_dir + "/token";
    auto token = read_file(out.token_file, "service account token");
    if (!token)
        return token.error();
    if (trim(*token).empty())
        return make_error("service account token " + out.token_file + " is empty");
    auto ca = read_file(sa_dir + "/ca.crt", "service account CA");
    if (!ca)
        return ca.error();
    if (auto ok = check_certificates(*ca, "service account CA " + sa_dir + "/ca.crt"); !ok)
        return ok.error();
    out.ca_pem = std::move(*ca);
    if (auto ns = read_file(sa_dir + "/namespace", "namespace"))
        out.ns = trim(*ns);
    return out;
}

Result<KubeConfig> in_cluster_config() {
    return in_cluster_config(process_environment(), std::string(kServiceAccountDir));
}

Result<KubeConfig> load_config(const std::string& kubeconfig_path) {
    return kubeconfig_path.empty() ? in_cluster_config() : load_kubeconfig(kubeconfig_path);
}

}  // namespace podid::kube
