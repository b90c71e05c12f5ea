// IPv4 text both ways (common/ip_text.h): format_ip4 is on every accepted connection's path, parse_ip4 reads
// --node-ip. Each row goes through both.
#include <arpa/inet.h>

#include <gtest/gtest.h>

#include "common/ip_text.h"

namespace podid {
namespace {

TEST(Ip4Text, FormatsAndParsesBack) {
    const char* rows[] = {"0.0.0.0", "255.255.255.255", "10.77.0.1", "169.254.169.254", "1.2.3.4", "100.64.10.200"};
    for (const char* text : rows) {
        in_addr expected{};
        ASSERT_EQ(::inet_pton(AF_INET, text, &expected), 1) << text;
        EXPECT_EQ(format_ip4(expected.s_addr), text);
        auto parsed = parse_ip4(text);
        ASSERT_TRUE(parsed.ok()) << text;
        EXPECT_EQ(*parsed, expected.s_addr) << text;
    }
}

TEST(Ip4Text, RejectsWhatIsNotAnAddress) {
    for (const char* text : {"", "10.77.0", "10.77.0.256", "a.b.c.d", "10.77.0.1 ", "::1"})
        EXPECT_FALSE(parse_ip4(text).ok()) << "'" << text << "'";
}

}  // namespace
}  // namespace podid
