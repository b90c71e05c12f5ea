#include "datapath/netlink_links.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/fd.h"

namespace podid {

namespace {

// IFLA_LINKINFO is nested; only its IFLA_INFO_KIND matters here.
std::string link_kind(const rtattr* info, int len) {
    for (const rtattr* a = static_cast<const rtattr*>(RTA_DATA(info)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_INFO_KIND) {
            const char* s = static_cast<const char*>(RTA_DATA(a));
            return std::string(s, strnlen(s, RTA_PAYLOAD(a)));
        }
    }
    return "";
}

}  // namespace

LinkParse parse_link_messages(const void* data, std::size_t len) {
    LinkParse out;
    int remaining = static_cast<int>(len);
    for (const nlmsghdr* h = static_cast<const nlmsghdr*>(data); NLMSG_OK(h, remaining); h = NLMSG_NEXT(h, remaining)) {
        if (h->nlmsg_type == NLMSG_DONE) {
            out.done = true;
            break;
        }
        if (h->nlmsg_type == NLMSG_ERROR) {
            if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
                const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
                out.error = e->error < 0 ? -e->error : e->error;
            } else {
                out.error = EPROTO;
            }
            break;
        }
        if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK)
            continue;
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg)))
            continue;
        const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
        LinkEvent ev;
        ev.removed = h->nlmsg_type == RTM_DELLINK;
        ev.ifindex = ifi->ifi_index;
        int alen = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
        for (const rtattr* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
            if (a->rta_type == IFLA_IFNAME) {
                const char* s = static_cast<const char*>(RTA_DATA(a));
                ev.name.assign(s, strnlen(s, RTA_PAYLOAD(a)));
            } else if (a->rta_type == IFLA_LINKINFO) {
                ev.kind = link_kind(a, static_cast<int>(RTA_PAYLOAD(a)));
            }
        }
        if (ev.ifindex > 0 && !ev.name.empty())
            out.events.push_back(std::move(ev));
    }
    return out;
}

Result<std::vector<LinkEvent>> list_links() {
    Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd.valid())
        return make_error(std::string("netlink socket: ") + std::strerror(errno), errno);
    struct {
        nlmsghdr h;
        ifinfomsg i;
    } req{};
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
    req.h.nlmsg_type = RTM_GETLINK;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = 1;
    req.i.ifi_family = AF_UNSPEC;
    if (::send(fd.get(), &req, req.h.nlmsg_len, 0) < 0)
        return make_error(std::string("netlink RTM_GETLINK: ") + std::strerror(errno), errno);
    std::vector<LinkEvent> links;
    std::vector<char> buf(1 << 16);
    for (;;) {
        ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return make_error(std::string("netlink recv: ") + std::strerror(errno), errno);
        }
        LinkParse p = parse_link_messages(buf.data(), static_cast<std::size_t>(n));
        if (p.error != 0)
            return make_error(std::string("netlink RTM_GETLINK: ") + std::strerror(p.error), p.error);
        for (auto& e : p.events)
            links.push_back(std::move(e));
        if (p.done || n == 0)
            break;
    }
    return links;
}

}  // namespace podid
