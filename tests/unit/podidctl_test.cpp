// podidctl's pure parts: command-line parsing (one row per case), reading the agent's HTTP answer, and the
// tables rendered from the JSON the agent serves.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "client.h"
#include "render.h"

namespace podid::ctl {
namespace {

using nlohmann::json;

struct ParseRow {
    std::vector<std::string> args;
    bool ok;
    CtlOptions::Command command;
    std::string error_part;  // in the error, or a field check for ok rows (see below)
};

TEST(PodidctlOptions, Table) {
    using C = CtlOptions::Command;
    const std::vector<ParseRow> rows = {
        {{"status"}, true, C::status, ""},
        {{"pods", "-o", "json"}, true, C::pods, ""},
        {{"-ojson", "pods"}, true, C::pods, ""},
        {{"--output=table", "conns"}, true, C::conns, ""},
        {{"conns", "--limit", "7"}, true, C::conns, ""},
        {{"explain", "default/web"}, true, C::explain, ""},
        {{"explain", "--cgroup", "/system.slice/x.service"}, true, C::explain, ""},
        {{"version"}, true, C::version, ""},
        {{"--help"}, true, C::help, ""},
        {{}, false, C::help, "no command given"},
        {{"frobnicate"}, false, C::help, "unknown command 'frobnicate'"},
        {{"status", "--verbose"}, false, C::help, "unknown flag '--verbose'"},
        {{"pods", "-o", "yaml"}, false, C::help, "'yaml' is not table or json"},
        {{"conns", "--limit", "0"}, false, C::help, "--limit: '0'"},
        {{"conns", "--limit", "ten"}, false, C::help, "--limit: 'ten'"},
        {{"conns", "--limit"}, false, C::help, "--limit needs a value"},
        {{"explain"}, false, C::help, "explain takes NAMESPACE/POD or --cgroup PATH"},
        {{"explain", "web"}, false, C::help, "'web' is not NAMESPACE/POD"},
        {{"explain", "a/b/c"}, false, C::help, "'a/b/c' is not NAMESPACE/POD"},
        {{"explain", "/b"}, false, C::help, "'/b' is not NAMESPACE/POD"},
        {{"explain", "a/b", "--cgroup", "/x"}, false, C::help, "explain takes NAMESPACE/POD or --cgroup PATH"},
        {{"pods", "extra"}, false, C::help, "unexpected argument 'extra'"},
        {{"pods", "--cgroup", "/x"}, false, C::help, "--cgroup goes with explain"},
        {{"status", "--socket", "relative.sock"}, false, C::help, "--socket must be an absolute path"},
    };
    for (const auto& row : rows) {
        auto r = parse_ctl_options(row.args);
        std::string joined;
        for (const auto& a : row.args)
            joined += a + " ";
        ASSERT_EQ(r.ok(), row.ok) << joined << (r.ok() ? "" : r.error().message);
        if (row.ok)
            EXPECT_EQ(r->command, row.command) << joined;
        else
            EXPECT_NE(r.error().message.find(row.error_part), std::string::npos) << joined << r.error().message;
    }
}

TEST(PodidctlOptions, ValuesAndEnvironment) {
    auto r = parse_ctl_options({"--socket=/tmp/a.sock", "--bpffs", "/b", "conns", "--limit=12", "-o", "json"});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->socket, "/tmp/a.sock");
    EXPECT_EQ(r->bpffs, "/b");
    EXPECT_EQ(r->limit, 12u);
    EXPECT_TRUE(r->json);
    auto env = parse_ctl_options({"status"}, "/run/x.sock", "/sys/fs/bpf/x");
    ASSERT_TRUE(env.ok());
    EXPECT_EQ(env->socket, "/run/x.sock");
    EXPECT_EQ(env->bpffs, "/sys/fs/bpf/x");
    auto flag_wins = parse_ctl_options({"--socket", "/a", "status"}, "/run/x.sock");
    EXPECT_EQ(flag_wins->socket, "/a");
    auto e = parse_ctl_options({"explain", "team-a/web-0"});
    EXPECT_EQ(e->explain_pod, "team-a/web-0");
}

TEST(PodidctlClient, ParsesAnswers) {
    auto ok = parse_admin_reply("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\n");
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok->status, 200);
    EXPECT_EQ(ok->body["a"], 1);
    auto err = parse_admin_reply("HTTP/1.1 404 Not Found\r\n\r\n{\"error\":\"not_found\"}");
    ASSERT_TRUE(err.ok());
    EXPECT_EQ(err->status, 404);
    EXPECT_FALSE(parse_admin_reply("SSH-2.0-OpenSSH\r\n").ok());
    EXPECT_FALSE(parse_admin_reply("HTTP/1.1 200 OK\r\n\r\nnot json").ok());
    EXPECT_FALSE(parse_admin_reply("HTTP/1.1 200 OK\r\nContent-Length: 5").ok());
}

TEST(PodidctlClient, MissingSocketSaysWhatToCheck) {
    auto r = admin_get("/tmp/podidctl-test-no-such.sock", "/v1/status");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("is podid-agent running?"), std::string::npos) << r.error().message;
}

TEST(PodidctlRender, TablePadsColumns) {
    std::string t = format_table({"A", "LONGER"}, {{"xxxx", "1"}, {"y", "22"}});
    EXPECT_EQ(t, "A     LONGER\nxxxx  1\ny     22\n");
}

TEST(PodidctlRender, Durations) {
    EXPECT_EQ(format_duration(5), "5s");
    EXPECT_EQ(format_duration(192), "3m12s");
    EXPECT_EQ(format_duration(7500), "2h5m");
    EXPECT_EQ(format_duration(-3), "0s");
}

TEST(PodidctlRender, PodsTable) {
    json body = {{"mode", "kubernetes"},
                 {"pods", json::array({{{"namespace", "team-a"},
                                        {"name", "web-0"},
                                        {"binding", "aad_pod_identity"},
                                        {"identities", json::array({{{"client_id", "id-1"}, {"default", true}},
                                                                    {{"client_id", "id-2"}, {"default", false}}})},
                                        {"cgroups", json::array({json::object(), json::object()})},
                                        {"counters", {{"redirected", 12}, {"blocked", 3}}}}})},
                 {"other_cgroups", json::array({{{"id", 7}, {"path", nullptr}, {"counters", {{"redirected", 1}}}}})}};
    std::string out = render_pods(body);
    EXPECT_NE(out.find("team-a/web-0  aad_pod_identity  id-1 (+1)  2        12          3"), std::string::npos) << out;
    EXPECT_NE(out.find("(removed) id 7"), std::string::npos) << out;
}

TEST(PodidctlRender, ExplainListsStepsInOrder) {
    json e = {{"pod", {{"namespace", "default"}, {"name", "vote"}, {"uid", "u-1"}, {"service_account", "sa"}}},
              {"cgroup", "/kubepods.slice/p"},
              {"decided_by", "kubernetes"},
              {"binding", "aad_pod_identity"},
              {"identities", json::array({{{"client_id", "id-1"}, {"name", "azure-vote"}, {"default", true}}})},
              {"steps", json::array({"first step", "second step"})},
              {"unsupported", json::array({{{"binding", "default/b"}, {"identity", "default/sp"}, {"type", 1}}})},
              {"requests",
               {{"without_identity_parameter", "the default identity above"},
                {"with_client_id_msi_res_id_or_object_id", "served only when ..."}}}};
    std::string out = render_explain(e);
    EXPECT_NE(out.find("default/vote (uid u-1, service account sa)"), std::string::npos) << out;
    EXPECT_NE(out.find("* client_id id-1 (azure-vote)   [default]"), std::string::npos) << out;
    EXPECT_LT(out.find("1. first step"), out.find("2. second step")) << out;
    EXPECT_NE(out.find("default/sp via default/b: type 1"), std::string::npos) << out;
}

TEST(PodidctlRender, StatusWithAgentDownSaysFailClosed) {
    json pins = {{"bpffs", "/sys/fs/bpf/podid"},
                 {"present", 2},
                 {"expected", 2},
                 {"pins", json::array({{{"name", "link_connect4"},
                                        {"kind", "link"},
                                        {"present", true},
                                        {"attach_type", "cgroup/connect4"},
                                        {"cgroup", "/kubepods.slice"},
                                        {"attached", true},
                                        {"program", {{"name", "podid_connect4"}, {"id", 9}}}},
                                       {{"name", "sk_origin"},
                                        {"kind", "map"},
                                        {"present", true},
                                        {"map_type", "sk_storage"},
                                        {"max_entries", 0}}})}};
    std::string out = render_status(json{{"error", "cannot connect"}}, pins);
    EXPECT_NE(out.find("NOT REACHABLE: cannot connect"), std::string::npos) << out;
    EXPECT_NE(out.find("fail closed"), std::string::npos) << out;
    EXPECT_NE(out.find("link_connect4  cgroup/connect4  /kubepods.slice  podid_connect4  9"), std::string::npos) << out;
    json none = {{"bpffs", "/x"}, {"present", 0}, {"expected", 10}, {"pins", json::array()}};
    EXPECT_NE(render_status(json{{"error", "e"}}, none).find("pods reach 169.254.169.254 directly"), std::string::npos);
}

TEST(PodidctlRender, ConnsShowsUnattributedAsDenied) {
    json body = {
        {"total", 3},
        {"capacity", 1024},
        {"conns", json::array({{{"time", "2026-11-28T21:57:23.123Z"}, {"attributed", false}, {"peer", "1.2.3.4:5"}},
                               {{"time", "2026-11-28T21:57:24.000Z"},
                                {"attributed", true},
                                {"namespace", "ns"},
                                {"pod", "p"},
                                {"pid", 42},
                                {"comm", "curl"},
                                {"orig_dst", "169.254.169.254:80"},
                                {"redirected", true},
                                {"peer", "10.0.0.2:4000"},
                                {"cgroup", "/k"}}})}};
    std::string out = render_conns(body);
    EXPECT_NE(out.find("21:57:23.123  (no kernel record: denied)"), std::string::npos) << out;
    EXPECT_NE(out.find("ns/p"), std::string::npos) << out;
    EXPECT_NE(out.find("(2 shown of 3 since start; the agent keeps the last 1024)"), std::string::npos) << out;
}

}  // namespace
}  // namespace podid::ctl
