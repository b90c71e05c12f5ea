// Certificates made at run time, so no key material lives in the repository: the emulator's own CA and HTTPS
// server certificate (EC P-256, quick to make), and RSA client certificates as an app registration holds them
// (RS256/PS256 client assertions need RSA).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace podid::entra_emulator {

struct PemPair {
    std::string cert_pem;
    std::string key_pem;  // PKCS#8
};

struct ServerPkiOptions {
    std::vector<std::string> ips = {"127.0.0.1"};  // subjectAltName IP entries
    std::vector<std::string> dns = {"localhost"};  // subjectAltName DNS entries
    int valid_days = 7;
};

struct ServerPki {
    PemPair ca;
    PemPair server;
};

// A CA and a serverAuth certificate it signed for `options`' names.
Result<ServerPki> make_server_pki(const ServerPkiOptions& options = {});

// A self-signed RSA-2048 certificate with CN `common_name`: what one uploads to an app registration and signs
// client assertions with.
Result<PemPair> make_client_certificate(const std::string& common_name, int valid_days = 7);

}  // namespace podid::entra_emulator
