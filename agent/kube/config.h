// Where the API server is and how to authenticate to it: from the pod's service account (in-cluster)
// or from a kubeconfig file (YAML or JSON). Everything is read and checked up front so a bad file fails
// at start with one clear error; only a token *file* is read again later (see bearer_token.h).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/result.h"

namespace podid::kube {

struct KubeConfig {
    std::string server;  // as configured: "https://10.0.0.1:443"
    std::string host;    // "10.0.0.1", "api.example", "fd00::1" (no brackets)
    std::string port = "443";
    std::string path_prefix;      // non-empty for API servers behind a path ("/k8s/clusters/c-1"), no trailing '/'
    std::string tls_server_name;  // when set: the name sent as SNI and verified instead of `host`
    std::string ca_pem;           // trusted CAs; empty: the system trust store
    std::string token;            // static bearer token
    std::string token_file;       // bearer token read from this file, re-read when it changes (projected tokens)
    std::string client_cert_pem;  // client certificate chain and its key, both or neither
    std::string client_key_pem;
    std::string ns;  // the namespace of the context, or the pod's own namespace in-cluster
};

struct ServerAddress {
    std::string host;
    std::string port;
    std::string path_prefix;
};

// "https://host[:port][/prefix]", IPv6 hosts in brackets. Plain http is refused: the bearer token
// would travel in clear text.
Result<ServerAddress> parse_server_url(std::string_view url);

inline constexpr std::string_view kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

// KUBERNETES_SERVICE_HOST/PORT from the process environment and token, ca.crt and namespace from
// kServiceAccountDir.
Result<KubeConfig> in_cluster_config();
// The same with the environment and the directory supplied (tests).
Result<KubeConfig> in_cluster_config(const std::map<std::string, std::string>& env, const std::string& sa_dir);

// The current context of a kubeconfig file. Relative file paths inside resolve against the file's
// directory, as kubectl does. Refused with a clear error: insecure-skip-tls-verify, exec and
// auth-provider credential plugins, basic auth, a user without any credential.
Result<KubeConfig> load_kubeconfig(const std::string& path);
// The same from text already read; `base_dir` resolves relative paths.
Result<KubeConfig> parse_kubeconfig(const std::string& text, const std::string& base_dir);

// `kubeconfig_path` when non-empty, else in-cluster: what the agent calls.
Result<KubeConfig> load_config(const std::string& kubeconfig_path);

}  // namespace podid::kube
