// Network interfaces from rtnetlink: a one-time dump (RTM_GETLINK) and the parsing of link messages, which the
// interface guard also reads from its RTMGRP_LINK subscription to see pods' veths come and go.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/result.h"

namespace podid {

struct LinkEvent {
    bool removed = false;  // RTM_DELLINK
    int ifindex = 0;
    std::string name;  // IFLA_IFNAME
    std::string kind;  // IFLA_LINKINFO / IFLA_INFO_KIND: "veth", "bridge", ...; "" for physical devices
};

// Parses a buffer of netlink messages (as read from a NETLINK_ROUTE socket). Messages that are not
// RTM_NEWLINK/RTM_DELLINK, and malformed ones, are skipped; `done` is set on NLMSG_DONE, `error` on NLMSG_ERROR.
struct LinkParse {
    std::vector<LinkEvent> events;
    bool done = false;
    int error = 0;  // positive errno from NLMSG_ERROR
};
LinkParse parse_link_messages(const void* data, std::size_t len);

// Every interface in the caller's network namespace.
Result<std::vector<LinkEvent>> list_links();

}  // namespace podid
