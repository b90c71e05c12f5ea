// The interface guard's pure parts: which interfaces --guard-interfaces selects, and rtnetlink link messages.
#include <gtest/gtest.h>

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstring>

#include "datapath/guard.h"
#include "datapath/netlink_links.h"

namespace podid {
namespace {

TEST(GuardSelector, Table) {
    struct Row {
        std::string text;
        bool ok;
        std::string name, kind;
        bool matches;
    };
    const std::vector<Row> rows = {
        {"veth", true, "azv1234", "veth", true},  {"veth", true, "eth0", "", false},
        {"veth", true, "br0", "bridge", false},   {"azv*", true, "azv1234", "veth", true},
        {"azv*", true, "vethabc", "veth", false}, {"azv*,cali*", true, "cali12", "veth", true},
        {"veth,tap*", true, "tap0", "tun", true}, {"", false, "", "", false},
        {"azv*,", false, "", "", false},          {",veth", false, "", "", false},
    };
    for (const auto& row : rows) {
        auto s = parse_guard_selector(row.text);
        ASSERT_EQ(s.ok(), row.ok) << row.text;
        if (s.ok()) {
            EXPECT_EQ(s->matches(row.name, row.kind), row.matches) << row.text << " " << row.name;
        }
    }
}

// Appends one attribute (and returns where its payload starts).
size_t put_attr(std::vector<char>& buf, unsigned short type, const void* data, size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    size_t at = buf.size();
    buf.resize(at + RTA_SPACE(len));
    std::memcpy(buf.data() + at, &a, sizeof(a));
    if (data)
        std::memcpy(buf.data() + at + RTA_LENGTH(0), data, len);
    return at;
}

std::vector<char> link_message(unsigned short type, int ifindex, const char* name, const char* kind) {
    std::vector<char> body(NLMSG_ALIGN(sizeof(ifinfomsg)));
    ifinfomsg ifi{};
    ifi.ifi_index = ifindex;
    std::memcpy(body.data(), &ifi, sizeof(ifi));
    put_attr(body, IFLA_IFNAME, name, std::strlen(name) + 1);
    if (kind) {
        std::vector<char> nested;
        put_attr(nested, IFLA_INFO_KIND, kind, std::strlen(kind));
        put_attr(body, IFLA_LINKINFO, nested.data(), nested.size());
    }
    std::vector<char> msg(NLMSG_HDRLEN);
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_len = static_cast<unsigned>(NLMSG_HDRLEN + body.size());
    std::memcpy(msg.data(), &h, sizeof(h));
    msg.insert(msg.end(), body.begin(), body.end());
    msg.resize(NLMSG_ALIGN(msg.size()));
    return msg;
}

TEST(NetlinkLinks, ParsesNewAndDeletedLinksWithTheirKind) {
    std::vector<char> buf;
    for (auto m : {link_message(RTM_NEWLINK, 7, "azv12ab", "veth"), link_message(RTM_NEWLINK, 2, "eth0", nullptr),
                   link_message(RTM_DELLINK, 7, "azv12ab", "veth"), link_message(RTM_NEWADDR, 9, "x", nullptr)})
        buf.insert(buf.end(), m.begin(), m.end());
    nlmsghdr done{};
    done.nlmsg_type = NLMSG_DONE;
    done.nlmsg_len = NLMSG_LENGTH(sizeof(int));
    std::vector<char> d(NLMSG_SPACE(sizeof(int)));
    std::memcpy(d.data(), &done, sizeof(done));
    buf.insert(buf.end(), d.begin(), d.end());

    LinkParse p = parse_link_messages(buf.data(), buf.size());
    ASSERT_EQ(p.events.size(), 3u);
    EXPECT_TRUE(p.done);
    EXPECT_EQ(p.events[0].name, "azv12ab");
    EXPECT_EQ(p.events[0].kind, "veth");
    EXPECT_EQ(p.events[0].ifindex, 7);
    EXPECT_FALSE(p.events[0].removed);
    EXPECT_EQ(p.events[1].kind, "");
    EXPECT_TRUE(p.events[2].removed);
}

TEST(NetlinkLinks, TruncatedAndErrorMessages) {
    auto m = link_message(RTM_NEWLINK, 3, "veth0", "veth");
    LinkParse cut = parse_link_messages(m.data(), m.size() / 2);
    EXPECT_TRUE(cut.events.empty());
    std::vector<char> err(NLMSG_SPACE(sizeof(nlmsgerr)));
    nlmsghdr h{};
    h.nlmsg_type = NLMSG_ERROR;
    h.nlmsg_len = NLMSG_LENGTH(sizeof(nlmsgerr));
    nlmsgerr e{};
    e.error = -EPERM;
    std::memcpy(err.data(), &h, sizeof(h));
    std::memcpy(err.data() + NLMSG_HDRLEN, &e, sizeof(e));
    EXPECT_EQ(parse_link_messages(err.data(), err.size()).error, EPERM);
}

}  // namespace
}  // namespace podid
