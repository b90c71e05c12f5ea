// A throwaway PKI for tests that need TLS: a CA, a server certificate for the addresses tests dial, and
// client certificates signed by the CA (client-certificate authentication). Generated at run time with
// OpenSSL 3 (EC P-256, quick to make), so no key material lives in the repository.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace podid::test {

struct TlsCert {
    std::string cert_pem;
    std::string key_pem;  // PKCS#8
};

struct PkiOptions {
    // The server certificate's subjectAltNames: 127.0.0.1 for loopback tests, 10.77.0.1 for the test node's IP.
    std::vector<std::string> server_ips = {"127.0.0.1", "10.77.0.1"};
    std::vector<std::string> server_dns = {"localhost", "kubernetes.default.svc"};
    std::string client_cn = "podid-test";       // becomes the user name under client-cert auth
    std::vector<std::string> client_orgs = {};  // become the groups
    int valid_days = 2;
};

struct TestPki {
    TlsCert ca;
    TlsCert server;
    TlsCert client;
    // Set by write_pki: ca.crt, server.crt, server.key, client.crt, client.key in this directory.
    std::string dir;
    std::string ca_path() const { return dir + "/ca.crt"; }
    std::string client_cert_path() const { return dir + "/client.crt"; }
    std::string client_key_path() const { return dir + "/client.key"; }
    std::string server_cert_path() const { return dir + "/server.crt"; }
    std::string server_key_path() const { return dir + "/server.key"; }
};

Result<TestPki> make_test_pki(const PkiOptions& options = {});

// Another client certificate from the same CA (a second user, e.g. "system:node:node1" in "system:nodes").
Result<TlsCert> issue_client_cert(const TestPki& pki, const std::string& cn, const std::vector<std::string>& orgs,
                                  int valid_days = 2);

// Writes the PEM files (keys mode 0600) into `dir` (created if missing) and records it in pki.dir.
Result<void> write_pki(TestPki& pki, const std::string& dir);

// Standard base64 with padding, as kubeconfig's *-data fields want it.
std::string base64_encode(const std::string& bytes);

}  // namespace podid::test
