// Kernel compatibility matrix: the guest check (tests/kernel/guest_check.cpp: feature probes, then the datapath on a
// pod in its own netns and cgroup, then the real podid-agent in a cgroup namespace of its own serving that pod,
// tests/kernel/agent_check.cpp) on older kernels booted under QEMU, with cgroup2 mounted with nsdelegate as on AKS
// nodes, and on the build machine's kernel.
//
// This test binary is also the guest program: run with --guest-check it runs the check instead of the tests. That
// keeps one build target (the e2e glob builds one executable per file) and the initramfs gets exactly the code
// that was tested here.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "datapath/probe.h"
#include "kernel/guest_check.h"
#include "support/self_helper.h"

// The guest program lives in its own files; they are compiled into this test binary (see above).
#include "kernel/agent_check.cpp"
#include "kernel/guest_check.cpp"

namespace podid::test {
namespace {

struct CheckLine {
    bool pass = false;
    std::string detail;
};

struct Transcript {
    std::map<std::string, CheckLine> checks;
    bool done = false;
    int exit_code = -1;
    std::string text;
};

Transcript parse(const std::string& text) {
    Transcript t;
    t.text = text;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        auto at = line.find("PODID-KERNEL-CHECK ");
        if (at != std::string::npos) {
            std::istringstream ls(line.substr(at + 19));
            std::string name, verdict, detail;
            ls >> name >> verdict;
            std::getline(ls, detail);
            t.checks[name] = CheckLine{verdict == "PASS", detail.empty() ? detail : detail.substr(1)};
        }
        if (line.find("PODID-KERNEL-DONE") != std::string::npos)
            t.done = true;
    }
    return t;
}

Transcript run_command(const std::string& command) {
    std::string out;
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (!p)
        return parse("popen failed");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        out.append(buf, n);
    int status = pclose(p);
    Transcript t = parse(out);
    t.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return t;
}

// Everything the guest check must report, whatever the kernel; a check that never printed is a failure too.
const char* const kRequiredChecks[] = {
    "install",
    "origin-recording",
    "connect4-client",
    "connect4-getpeername",
    "connect4-redirect",
    "connect4-http",
    "connect4-origin",
    "connect4-imds-untouched",
    "connect4-counter",
    "connect6-v4mapped-getpeername",
    "connect6-v4mapped-origin",
    "raw-syn-blocked",
    "udp-blocked",
    "other-port-refused",
    "guard-load",
    "guard-attach",
    "guard-af-packet",
    "guard-uninstall",
    "uninstall",
    // The real agent in a cgroup namespace of its own (tests/kernel/agent_check.h).
    "agent-cgroups",
    "agent-emulator",
    "agent-probes",
    "agent-own-cgroup",
    "agent-selfcheck",
    "agent-readyz",
    "agent-token",
    "agent-sigterm",
    "agent-cleanup",
};

// Only where cgroup2 is mounted with nsdelegate, which the QEMU guests do and the build machine cannot (a system-wide
// flag): without these lines the agent checks above could pass because nothing refused the self-check.
const char* const kRequiredNsdelegateChecks[] = {
    "nsdelegate-mount",
    "nsdelegate-move-refused",
};

void expect_all_pass(const Transcript& t, const std::string& where, bool nsdelegate) {
    ASSERT_TRUE(t.done) << where << ": the guest check never finished; console:\n" << t.text;
    bool failed = false;
    for (const auto& [name, line] : t.checks) {
        EXPECT_TRUE(line.pass) << where << ": " << name << " FAIL " << line.detail;
        failed = failed || !line.pass;
    }
    for (const char* name : kRequiredChecks)
        EXPECT_TRUE(t.checks.count(name)) << where << ": no result for " << name << "; console:\n" << t.text;
    if (nsdelegate) {
        for (const char* name : kRequiredNsdelegateChecks)
            EXPECT_TRUE(t.checks.count(name)) << where << ": no result for " << name << "; console:\n" << t.text;
    }
    // The agent's and the emulator's logs are on the console after a failed agent check.
    if (failed)
        std::printf("%s: console:\n%s\n", where.c_str(), t.text.c_str());
    for (const auto& r : kernel_requirements())
        EXPECT_TRUE(t.checks.count("probe:" + kernel_check::one_token(r.what))) << where << ": probe " << r.what;
    // Which recording each kernel picked is worth seeing in the log (docs/kernels.md lists it).
    if (auto it = t.checks.find("origin-recording"); it != t.checks.end())
        std::printf("%s: origin recorded from %s\n", where.c_str(), it->second.detail.c_str());
    if (auto it = t.checks.find("agent-timing"); it != t.checks.end())
        std::printf("[ timing   ] %s agent phase: %s\n", where.c_str(), it->second.detail.c_str());
}

bool is_root() { return geteuid() == 0; }

// The real probes on the build machine's kernel: all present (6.x).
TEST(KernelProbeOnHost, EveryFeatureIsPresent) {
    ASSERT_TRUE(is_root()) << "the probes load BPF programs and attach to a cgroup: run as root";
    for (const auto& r : probe_kernel_features_report())
        EXPECT_TRUE(r.ok) << r.requirement->what << ": " << r.detail;
    auto all = probe_kernel_features();
    EXPECT_TRUE(all.ok()) << all.error().message;
}

// Second column of the matrix: the same guest check, on this machine's kernel, in fresh namespaces.
TEST(KernelMatrix, HostKernel) {
    ASSERT_TRUE(is_root()) << "the guest check loads BPF programs and builds namespaces: run as root";
    auto start = std::chrono::steady_clock::now();
    Transcript t = run_command(self_exe() + " --guest-check --probe-bin " + PODID_PROBE_BIN + " --agent-bin " +
                               PODID_AGENT_BIN + " --emulator-bin " + PODID_EMULATOR_BIN);
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("[ timing   ] host kernel check %.1fs\n", secs);
    expect_all_pass(t, "host kernel", false);
    EXPECT_EQ(t.exit_code, 0) << t.text;
}

class QemuKernel : public ::testing::TestWithParam<const char*> {};

// One Debian kernel package per row: booted under QEMU (TCG), the check runs as the guest's init.
TEST_P(QemuKernel, DatapathWorks) {
    ASSERT_TRUE(is_root()) << "the kernel cache and apt-get download need root";
    const std::string pkg = GetParam();
    auto start = std::chrono::steady_clock::now();
    Transcript t = run_command(std::string(PODID_SOURCE_DIR) + "/tests/kernel/run_in_qemu.sh " + pkg + " " +
                               self_exe() + " " + PODID_PROBE_BIN + " " + PODID_AGENT_BIN + " " + PODID_EMULATOR_BIN);
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("[ timing   ] %s %.1fs (fetch, initramfs, boot and check)\n", pkg.c_str(), secs);
    ASSERT_NE(t.exit_code, 3) << "could not prepare " << pkg << ":\n" << t.text;
    ASSERT_NE(t.text.find("PODID-KERNEL-BOOTED"), std::string::npos) << pkg << " did not boot:\n" << t.text;
    expect_all_pass(t, pkg, true);
    auto kernel = t.checks.find("kernel");
    if (kernel != t.checks.end())
        std::printf("[ kernel   ] %s\n", kernel->second.detail.c_str());
}

// Debian 12's cloud kernels: 6.1 (the oldest we can boot from the archive, below AKS's 6.6/6.8) and the
// bookworm backports 6.12. Package names pin an ABI; when the archive drops one, take the current one from
// `apt-cache depends linux-image-cloud-amd64` (and linux-image-6.12-cloud-amd64).
INSTANTIATE_TEST_SUITE_P(Debian, QemuKernel,
                         ::testing::Values("linux-image-6.1.0-56-cloud-amd64",
                                           "linux-image-6.12.117+deb12-cloud-amd64"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                             std::string name = info.param;
                             for (char& c : name)
                                 if (!std::isalnum(static_cast<unsigned char>(c)))
                                     c = '_';
                             return name;
                         });

}  // namespace
}  // namespace podid::test

// Replaces gtest_main's main (a static library: the linker takes this one and never pulls its object).
int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "--guest-check") == 0) {
        podid::kernel_check::GuestCheckOptions options;
        const std::map<std::string, std::string*> with_value = {{"--probe-bin", &options.probe_bin},
                                                                {"--ip-bin", &options.ip_bin},
                                                                {"--agent-bin", &options.agent_bin},
                                                                {"--emulator-bin", &options.emulator_bin},
                                                                {"--emulator-key", &options.emulator_key}};
        for (int i = 2; i < argc; ++i) {
            if (std::strcmp(argv[i], "--expect-nsdelegate") == 0) {
                options.expect_nsdelegate = true;
            } else if (auto it = with_value.find(argv[i]); it != with_value.end() && i + 1 < argc) {
                *it->second = argv[++i];
            } else {
                std::fprintf(stderr, "--guest-check: unknown or incomplete flag %s\n", argv[i]);
                return 2;
            }
        }
        return podid::kernel_check::run_guest_check(options);
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
