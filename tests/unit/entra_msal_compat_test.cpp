// podid-entra-emulator against a real Entra client: Debian's python3-msal (tests/compat/msal_check.py) gets
// tokens from the program with a client secret (through MSAL's instance discovery), a federated assertion
// from an issuer the program hosts, and a certificate MSAL signs itself, and sees AADSTS7000215 for a wrong
// secret. The program runs as users run it: flags, a config file, --ca-out, the admin API, SIGTERM.
// CI installs python3-msal (tools/install-deps.sh); without it this test fails and says so.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "entra-emulator/pki.h"
#include "imds-emulator/http_client.h"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The interpreter python3-msal installs into. A python3 earlier in PATH (pyenv, a virtualenv) would not see
// the Debian package.
constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kTenant = "9b1c6a52-3f0e-4d7a-8c21-5e4f3a2b1d0c";
constexpr const char* kTenantName = "podid-compat.onmicrosoft.com";
constexpr const char* kSecretApp = "e0000000-0000-4000-8000-0000000000e1";
constexpr const char* kCertApp = "e0000000-0000-4000-8000-0000000000e2";
constexpr const char* kFedApp = "e0000000-0000-4000-8000-0000000000e3";
constexpr const char* kSecret = "msal~compat.Secret_1";
constexpr const char* kResource = "https://management.azure.com";
constexpr const char* kSubject = "system:serviceaccount:podid-demo:app";

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "podid-entra-compat-XXXXXX").string();
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out.flush())
        throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// A child with stdout and stderr in one file; SIGKILLed if this process dies first.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& output,
            const std::map<std::string, std::string>& env = {}) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        throw std::runtime_error("fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        FILE* out = std::fopen(output.c_str(), "w");
        if (!out)
            _exit(126);
        dup2(fileno(out), 1);
        dup2(fileno(out), 2);
        for (const auto& [name, value] : env)
            setenv(name.c_str(), value.c_str(), 1);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        std::perror(args[0]);
        _exit(127);
    }
    return pid;
}

// Exit status, or -1 when the child did not exit within `timeout` (it is then killed).
int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(20ms);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
}

struct ChildGuard {
    pid_t pid = -1;
    ~ChildGuard() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

TEST(EntraMsalCompat, MsalGetsTokensWithSecretFederationAndCertificate) {
    ASSERT_TRUE(fs::exists(kPython)) << kPython << " is missing: install python3 and python3-msal "
                                     << "(tools/install-deps.sh)";
    TempDir dir;
    auto cert = podid::entra_emulator::make_client_certificate("podid-msal-compat");
    ASSERT_TRUE(cert) << cert.error().message;
    write_file(dir.path / "app.crt", cert->cert_pem);
    write_file(dir.path / "app.key", cert->key_pem);
    nlohmann::json config = {
        {"tenants", {{{"id", kTenant}, {"names", {kTenantName}}}}},
        {"apps",
         {{{"tenant", kTenant}, {"client_id", kSecretApp}, {"secrets", {kSecret}}},
          {{"tenant", kTenantName}, {"client_id", kCertApp}, {"certificate_files", {"app.crt"}}}}}};
    write_file(dir.path / "config.json", config.dump(2));

    fs::path ready = dir.path / "ready.json";
    fs::path ca = dir.path / "ca.pem";
    ChildGuard emulator{
        spawn({PODID_ENTRA_EMULATOR_BIN, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--ca-out", ca.string(),
               "--config", (dir.path / "config.json").string(), "--issuer", "cluster1", "--ready-file", ready.string()},
              dir.path / "emulator.log")};
    nlohmann::json info;
    for (int i = 0; i < 300 && info.is_null(); ++i) {
        if (fs::exists(ready))
            info = nlohmann::json::parse(read_file(ready), nullptr, false);
        if (info.is_null() || info.is_discarded()) {
            info = nullptr;
            std::this_thread::sleep_for(20ms);
        }
    }
    ASSERT_TRUE(info.is_object()) << "no ready file; emulator output:\n" << read_file(dir.path / "emulator.log");
    std::string base = info["url"];
    uint16_t admin_port = info["admin_port"];
    std::string issuer = info["issuers"]["cluster1"];
    EXPECT_EQ(base, "https://127.0.0.1:" + std::to_string(info["port"].get<int>()));
    ASSERT_TRUE(fs::exists(ca));

    // The federated app needs the issuer URL, known only now: add it at run time, and mint a token.
    auto admin = podid::emulator::HttpConnection::open("127.0.0.1", admin_port);
    ASSERT_TRUE(admin) << admin.error().message;
    nlohmann::json fed_app = {
        {"tenant", kTenant},
        {"client_id", kFedApp},
        {"federated_credentials",
         {{{"issuer", issuer}, {"subject", kSubject}, {"audiences", {"api://AzureADTokenExchange"}}}}}};
    auto added = admin->post("/apps", fed_app.dump());
    ASSERT_TRUE(added) << added.error().message;
    ASSERT_EQ(added->result_int(), 201u) << added->body();
    auto minted = admin->post("/issuers/cluster1/token", nlohmann::json{{"sub", kSubject}}.dump());
    ASSERT_TRUE(minted) << minted.error().message;
    ASSERT_EQ(minted->result_int(), 200u) << minted->body();
    write_file(dir.path / "federated.jwt", nlohmann::json::parse(minted->body())["token"].get<std::string>());

    fs::path output = dir.path / "msal.log";
    pid_t python = spawn({kPython,
                          std::string(PODID_SOURCE_DIR) + "/tests/compat/msal_check.py",
                          "--base",
                          base,
                          "--tenant",
                          kTenantName,
                          "--tenant-id",
                          kTenant,
                          "--resource",
                          kResource,
                          "--secret-client",
                          kSecretApp,
                          "--secret",
                          kSecret,
                          "--fed-client",
                          kFedApp,
                          "--fed-assertion-file",
                          (dir.path / "federated.jwt").string(),
                          "--cert-client",
                          kCertApp,
                          "--cert-pem",
                          (dir.path / "app.crt").string(),
                          "--cert-key",
                          (dir.path / "app.key").string()},
                         output, {{"REQUESTS_CA_BUNDLE", ca.string()}, {"SSL_CERT_FILE", ca.string()}});
    int status = wait_exit(python, 120s);
    std::string log = read_file(output);
    ASSERT_NE(status, 3) << "python3-msal is not installed for " << kPython
                         << ": run tools/install-deps.sh (apt-get install python3-msal)\n"
                         << log;
    EXPECT_EQ(status, 0) << log << "\nemulator output:\n" << read_file(dir.path / "emulator.log");
    EXPECT_NE(log.find("msal_check: all 4 checks passed"), std::string::npos) << log;
    std::cout << log;

    // What the emulator saw.
    auto stats = admin->get("/stats");
    ASSERT_TRUE(stats) << stats.error().message;
    auto s = nlohmann::json::parse(stats->body());
    EXPECT_EQ(s["by_outcome"].value("AADSTS7000215", 0), 1) << s.dump();
    EXPECT_EQ(s["by_outcome"].value("success", 0), 3) << s.dump();
    EXPECT_EQ(s["by_credential"].value("certificate", 0), 1) << s.dump();
    EXPECT_EQ(s["by_credential"].value("federated", 0), 1) << s.dump();
    EXPECT_EQ(s["by_client_id"].value(kSecretApp, 0), 2) << s.dump();
    EXPECT_EQ(s.value("issuer_fetches", 0), 2) << s.dump();

    ASSERT_EQ(kill(emulator.pid, SIGTERM), 0);
    EXPECT_EQ(wait_exit(emulator.pid, 10s), 0) << read_file(dir.path / "emulator.log");
    emulator.pid = -1;
}

}  // namespace
