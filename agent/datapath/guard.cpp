#include "datapath/guard.h"

#include <fnmatch.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>

#include <boost/asio/posix/stream_descriptor.hpp>

#include "common/fd.h"
#include "common/log.h"
#include "datapath/bpffs.h"
#include "podid_guard.skel.h"

namespace podid {

namespace {

constexpr const char* kStatsPin = "guard_stats";

Error errno_error(const std::string& what, int err) { return make_error(what + ": " + std::strerror(err), err); }

bpf_tc_hook ingress_hook(int ifindex) {
    bpf_tc_hook hook{};
    hook.sz = sizeof(hook);
    hook.ifindex = ifindex;
    hook.attach_point = BPF_TC_INGRESS;
    return hook;
}

bpf_tc_opts our_filter(int prog_fd) {
    bpf_tc_opts opts{};
    opts.sz = sizeof(opts);
    opts.handle = PODID_GUARD_TC_HANDLE;
    opts.priority = PODID_GUARD_TC_PRIORITY;
    opts.prog_fd = prog_fd;
    return opts;
}

}  // namespace

const char* guard_counter_name(int slot) {
    switch (slot) {
    case PODID_GUARD_DROP_V4: return "drop_ipv4";
    case PODID_GUARD_DROP_V6: return "drop_ipv6";
    default: return nullptr;
    }
}

bool GuardSelector::matches(const std::string& name, const std::string& kind) const {
    if (all_veth && kind == "veth")
        return true;
    return std::any_of(globs.begin(), globs.end(),
                       [&](const std::string& g) { return ::fnmatch(g.c_str(), name.c_str(), 0) == 0; });
}

Result<GuardSelector> parse_guard_selector(const std::string& text) {
    GuardSelector s;
    s.all_veth = false;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (item.empty())
            return make_error("--guard-interfaces: empty entry in '" + text + "' (give veth, none or name globs)",
                              EINVAL);
        if (item == "veth")
            s.all_veth = true;
        else
            s.globs.push_back(item);
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return s;
}

InterfaceGuard::~InterfaceGuard() { stop(); }

Result<std::unique_ptr<InterfaceGuard>> InterfaceGuard::load(const std::string& pin_dir, GuardSelector selector) {
    std::unique_ptr<InterfaceGuard> g(new InterfaceGuard());
    g->selector_ = std::move(selector);
    g->ncpus_ = std::max(libbpf_num_possible_cpus(), 1);
    g->skel_ = {podid_guard_bpf::open(), podid_guard_bpf::destroy};
    if (!g->skel_)
        return errno_error("cannot open the guard program", errno);
    if (auto r = ensure_pin_dir(pin_dir); !r)
        return r.error();
    const std::string pin = pin_dir + "/" + kStatsPin;
    Fd pinned(bpf_obj_get(pin.c_str()));
    if (pinned.valid() && bpf_map__reuse_fd(g->skel_->maps.guard_stats, pinned.get()) != 0) {
        // A map of another shape (an older layout): start counting afresh.
        ::unlink(pin.c_str());
        pinned.reset();
    }
    if (int err = podid_guard_bpf::load(g->skel_.get()); err != 0)
        return errno_error("cannot load the guard program", -err);
    if (!pinned.valid())
        if (int err = bpf_map__pin(g->skel_->maps.guard_stats, pin.c_str()); err != 0)
            return errno_error("cannot pin " + pin, -err);
    return g;
}

Result<void> InterfaceGuard::attach(int ifindex, const std::string& name) {
    bpf_tc_hook hook = ingress_hook(ifindex);
    int err = bpf_tc_hook_create(&hook);  // the clsact qdisc; already there is fine
    if (err != 0 && err != -EEXIST)
        return errno_error("cannot add a clsact qdisc to " + name, -err);
    bpf_tc_opts opts = our_filter(bpf_program__fd(skel_->progs.podid_guard));
    opts.flags = BPF_TC_F_REPLACE;
    if (err = bpf_tc_attach(&hook, &opts); err != 0)
        return errno_error("cannot attach the guard to " + name, -err);
    std::lock_guard lock(mu_);
    guarded_[ifindex] = name;
    return {};
}

Result<size_t> InterfaceGuard::attach_existing() {
    auto links = list_links();
    if (!links)
        return links.error();
    size_t n = 0;
    std::string failures;
    for (const auto& l : *links) {
        if (!selector_.matches(l.name, l.kind))
            continue;
        if (auto r = attach(l.ifindex, l.name); !r)
            failures += (failures.empty() ? "" : "; ") + r.error().message;
        else
            ++n;
    }
    if (!failures.empty())
        return make_error(failures, EIO);
    return n;
}

void InterfaceGuard::on_event(const LinkEvent& e) {
    if (e.removed) {
        std::lock_guard lock(mu_);
        guarded_.erase(e.ifindex);  // the filter went with the interface
        return;
    }
    if (!selector_.matches(e.name, e.kind))
        return;
    {
        std::lock_guard lock(mu_);
        if (guarded_.count(e.ifindex))
            return;  // RTM_NEWLINK also reports state changes of known links
    }
    if (auto r = attach(e.ifindex, e.name); !r)
        log_error("interface guard: cannot guard a new interface",
                  kv("interface", e.name) + kv("reason", r.error().message));
    else
        log_info("interface guard attached", kv("interface", e.name));
}

struct InterfaceGuard::Watcher {
    explicit Watcher(boost::asio::io_context& io) : stream(io) {}
    boost::asio::posix::stream_descriptor stream;
    std::vector<char> buf = std::vector<char>(1 << 16);
    std::function<void()> read;  // captures only a weak_ptr to this watcher
};

Result<void> InterfaceGuard::watch(boost::asio::io_context& io) {
    Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
    if (!fd.valid())
        return errno_error("netlink socket", errno);
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = RTMGRP_LINK;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
        return errno_error("netlink bind RTMGRP_LINK", errno);
    auto w = std::make_shared<Watcher>(io);
    w->stream.assign(fd.release());
    watcher_ = w;
    // Subscribed first, then the dump: an interface created in between is seen by one or the other.
    if (auto r = attach_existing(); !r)
        log_error("interface guard: some interfaces are not guarded", kv("reason", r.error().message));
    std::weak_ptr<Watcher> weak = w;
    w->read = [this, weak] {
        auto w = weak.lock();
        if (!w)
            return;
        w->stream.async_read_some(
            boost::asio::buffer(w->buf), [this, weak](const boost::system::error_code& ec, std::size_t n) {
                auto w = weak.lock();
                if (!w || ec == boost::asio::error::operation_aborted)
                    return;
                if (ec == boost::asio::error::no_buffer_space) {
                    // ENOBUFS: the kernel dropped events; find out what changed by dumping again.
                    log_warn("interface guard: netlink overrun, rescanning interfaces");
                    if (auto r = attach_existing(); !r)
                        log_error("interface guard: rescan failed", kv("reason", r.error().message));
                } else if (ec) {
                    log_error("interface guard: netlink watch stopped", kv("reason", ec.message()));
                    return;
                } else {
                    for (const auto& e : parse_link_messages(w->buf.data(), n).events)
                        on_event(e);
                }
                w->read();
            });
    };
    w->read();
    return {};
}

void InterfaceGuard::stop() {
    if (watcher_) {
        boost::system::error_code ec;
        watcher_->stream.close(ec);
        watcher_.reset();
    }
}

std::vector<std::string> InterfaceGuard::guarded() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [i, name] : guarded_)
        out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
}

namespace {

GuardCounters sum_counters(int map_fd, int ncpus) {
    GuardCounters total{};
    std::vector<uint64_t> values(static_cast<size_t>(ncpus));
    for (uint32_t slot = 0; slot < PODID_GUARD_CTR_MAX; ++slot)
        if (bpf_map_lookup_elem(map_fd, &slot, values.data()) == 0)
            for (uint64_t v : values)
                total[slot] += v;
    return total;
}

}  // namespace

GuardCounters InterfaceGuard::counters() const { return sum_counters(bpf_map__fd(skel_->maps.guard_stats), ncpus_); }

Result<GuardCounters> InterfaceGuard::read_pinned_counters(const std::string& pin_dir) {
    const std::string pin = pin_dir + "/" + kStatsPin;
    Fd fd(bpf_obj_get(pin.c_str()));
    if (!fd.valid())
        return errno_error("cannot open " + pin, errno);
    return sum_counters(fd.get(), std::max(libbpf_num_possible_cpus(), 1));
}

Result<size_t> InterfaceGuard::uninstall(const std::string& pin_dir) {
    auto links = list_links();
    if (!links)
        return links.error();
    size_t removed = 0;
    for (const auto& l : *links) {
        bpf_tc_hook hook = ingress_hook(l.ifindex);
        bpf_tc_opts opts = our_filter(0);
        if (bpf_tc_detach(&hook, &opts) == 0)
            ++removed;
    }
    const std::string pin = pin_dir + "/" + kStatsPin;
    if (::unlink(pin.c_str()) != 0 && errno != ENOENT)
        return errno_error("cannot remove " + pin, errno);
    return removed;
}

}  // namespace podid
