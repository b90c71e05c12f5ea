// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * podid kernel programs, attached at the kubepods cgroup (every pod, present and future):
 *
 *   connect4 / connect6     a TCP connect to 169.254.169.254:80 (or ::ffff:169.254.169.254) is rewritten
 *                           to the agent's node-ip:port. Connects straight to the agent get an origin record
 *                           (cgroup id, pid, comm, destination) in socket storage; redirected ones too on
 *                           kernels where sockops cannot read the connecting task (see below).
 *   getpeername4 / 6        the application still sees 169.254.169.254:80 as its peer.
 *   sockops                 at TCP connect, writes the origin to a 4-tuple map the agent reads on accept.
 *                           Two variants, one loaded (cfg chosen by the agent from a helper probe):
 *                           podid_sockops_task takes the origin from the connecting task itself, as the
 *                           connect hook would (sockops runs in the connect() call), on kernels that allow
 *                           bpf_get_current_cgroup_id, _pid_tgid and _comm in sockops (6.18 does; 6.12
 *                           refuses comm). podid_sockops copies the record the connect hook kept in socket
 *                           storage (5.10+), which costs an allocation and a free per connection
 *                           (docs/benchmarks.md has the figures).
 *   cgroup_skb/egress       drops what got past the connect hooks: raw sockets, UDP, ICMP, other ports to
 *                           169.254.169.254, and hand-made TCP to the agent endpoint.
 *
 * Not covered by any cgroup hook: AF_PACKET sockets (they write frames below the IP layer, and the
 * kernel runs cgroup sock hooks only for inet sockets). See docs/security.md for the mitigation.
 *
 * Configuration is load-time rodata (cfg_*), set by the agent between open and load.
 * Only UAPI context structs and packet headers are used, so no vmlinux.h/CO-RE is needed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "podid/abi.h"

/* sys/socket.h is not usable for the BPF target. */
#define PODID_AF_INET 2
#define PODID_AF_INET6 10
#define PODID_SOCK_STREAM 1

const volatile __u32 cfg_agent_ip4 = 0;                         /* network order: the node IP the agent listens on */
const volatile __u16 cfg_agent_port = PODID_DEFAULT_AGENT_PORT; /* host order */
const volatile __u32 cfg_metadata_ip4 = __bpf_constant_htonl(PODID_METADATA_IP4_HOST);
/* 1: podid_sockops_task is loaded and records redirected connections, so the connect hooks keep no
 * socket storage for them. 0: podid_sockops copies what the connect hooks kept. */
const volatile __u8 cfg_origin_from_task = 0;

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Origin of a socket, from its connect hook until the socket goes away. */
struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct podid_origin);
} sk_origin SEC(".maps");

/*
 * Origin by 4-tuple as the agent sees the accepted connection; the agent deletes what it read. LRU so that
 * records nobody reads (connections refused while the agent is down) cannot fill it; per-CPU LRU lists
 * (BPF_F_NO_COMMON_LRU) because the common list's global lock made each update cost ~0.8 us on the connect path.
 */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(map_flags, BPF_F_NO_COMMON_LRU);
    __uint(max_entries, PODID_TUPLE_MAP_SIZE);
    __type(key, struct podid_tuple);
    __type(value, struct podid_origin);
} conn_origin SEC(".maps");

/* Decisions per cgroup, per CPU (no atomics on the connect path). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
    __uint(max_entries, PODID_COUNTER_MAP_SIZE);
    __type(key, __u64);
    __type(value, struct podid_counters);
} cgroup_stats SEC(".maps");

/* Cgroups the programs leave alone (the agent's own, so its upstream calls reach the real IMDS). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, PODID_EXEMPT_MAP_SIZE);
    __type(key, __u64);
    __type(value, __u8);
} exempt_cgroups SEC(".maps");

static __always_inline void count(__u64 cgroup_id, __u32 slot)
{
    struct podid_counters *c = bpf_map_lookup_elem(&cgroup_stats, &cgroup_id);
    if (!c) {
        struct podid_counters zero = {};
        bpf_map_update_elem(&cgroup_stats, &cgroup_id, &zero, BPF_NOEXIST);
        c = bpf_map_lookup_elem(&cgroup_stats, &cgroup_id);
        if (!c)
            return;
    }
    if (slot < PODID_CTR_MAX)
        c->count[slot]++;
}

static __always_inline int is_exempt(__u64 cgroup_id)
{
    return bpf_map_lookup_elem(&exempt_cgroups, &cgroup_id) != 0;
}

static __always_inline int is_agent_endpoint(__u32 ip4, __u16 port_host)
{
    if (port_host != cfg_agent_port)
        return 0;
    /* The node IP, or loopback for hostNetwork pods calling the agent's 127.0.0.1 listener. */
    return ip4 == cfg_agent_ip4 || (bpf_ntohl(ip4) >> 24) == 127;
}

/* The record of who connected, taken where "current" is the connecting task. dst_port is network order. */
static __always_inline void fill_origin(struct podid_origin *o, __u64 cgroup_id, __u32 dst_ip4, __u16 dst_port,
                                        __u16 flags)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    o->cgroup_id = cgroup_id;
    o->connect_ns = bpf_ktime_get_ns();
    o->tgid = pid_tgid >> 32;
    o->pid = (__u32)pid_tgid;
    bpf_get_current_comm(o->comm, sizeof(o->comm));
    o->orig_dst_ip4 = dst_ip4;
    o->orig_dst_port = dst_port;
    o->flags = flags;
}

/*
 * Common connect decision. Returns 1 to allow, 0 to refuse (EPERM). On a redirect, *rewrite is set
 * and the caller writes the agent's address in its own family's fields.
 */
static __always_inline int on_connect(struct bpf_sock_addr *ctx, __u32 dst_ip4, __u32 user_port, __u16 flags,
                                      int *rewrite)
{
    __u16 port_host = bpf_ntohs((__u16)user_port);
    int to_metadata = dst_ip4 == cfg_metadata_ip4;

    *rewrite = 0;
    if (!to_metadata && !is_agent_endpoint(dst_ip4, port_host))
        return 1;

    __u64 cgroup_id = bpf_get_current_cgroup_id();
    if (is_exempt(cgroup_id))
        return 1;

    if (to_metadata && port_host != PODID_METADATA_PORT) {
        count(cgroup_id, PODID_CTR_DENY_PORT);
        return 0;
    }

    /* With task recording, podid_sockops_task records a redirect at TCP connect, from this same task. */
    if (!to_metadata || !cfg_origin_from_task) {
        struct podid_origin *o = bpf_sk_storage_get(&sk_origin, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
        if (!o) {
            /* Without a record the agent could not attribute the connection: refuse rather than guess. */
            count(cgroup_id, PODID_CTR_NO_STORAGE);
            return 0;
        }
        fill_origin(o, cgroup_id, dst_ip4, (__u16)user_port,
                    flags | (to_metadata ? PODID_ORIGIN_REDIRECTED : PODID_ORIGIN_DIRECT));
    }

    if (to_metadata) {
        *rewrite = 1;
        count(cgroup_id, (flags & PODID_ORIGIN_V4_MAPPED) ? PODID_CTR_REDIRECT6 : PODID_CTR_REDIRECT4);
    } else {
        count(cgroup_id, PODID_CTR_AGENT_DIRECT);
    }
    return 1;
}

SEC("cgroup/connect4")
int podid_connect4(struct bpf_sock_addr *ctx)
{
    int rewrite;

    if (ctx->type != PODID_SOCK_STREAM)
        return 1; /* UDP and friends are handled by the egress filter */
    if (!on_connect(ctx, ctx->user_ip4, ctx->user_port, 0, &rewrite))
        return 0;
    if (rewrite) {
        ctx->user_ip4 = cfg_agent_ip4;
        ctx->user_port = bpf_htons(cfg_agent_port);
    }
    return 1;
}

static __always_inline int is_v4_mapped(__u32 w0, __u32 w1, __u32 w2)
{
    return w0 == 0 && w1 == 0 && w2 == bpf_htonl(0x0000ffff);
}

/* A dual-stack socket connecting to ::ffff:169.254.169.254 runs connect6, not connect4. */
SEC("cgroup/connect6")
int podid_connect6(struct bpf_sock_addr *ctx)
{
    int rewrite;

    if (ctx->type != PODID_SOCK_STREAM)
        return 1;
    if (!is_v4_mapped(ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2]))
        return 1;
    if (!on_connect(ctx, ctx->user_ip6[3], ctx->user_port, PODID_ORIGIN_V4_MAPPED, &rewrite))
        return 0;
    if (rewrite) {
        ctx->user_ip6[3] = cfg_agent_ip4;
        ctx->user_port = bpf_htons(cfg_agent_port);
    }
    return 1;
}

/*
 * Whether a socket whose peer is peer_ip4:port was redirected, so getpeername must show 169.254.169.254:80.
 * A record in socket storage decides when there is one (connects straight to the agent always have one).
 * Without one, and with the origin taken from the task, every connection from a pod to the agent's node IP
 * endpoint is a redirect, except the exempt cgroups' (the connect hook let those through untouched).
 */
static __always_inline int was_redirected(struct bpf_sock_addr *ctx, __u32 peer_ip4)
{
    if (peer_ip4 != cfg_agent_ip4 || bpf_ntohs((__u16)ctx->user_port) != cfg_agent_port)
        return 0;
    struct podid_origin *o = bpf_sk_storage_get(&sk_origin, ctx->sk, 0, 0);
    if (o)
        return (o->flags & PODID_ORIGIN_REDIRECTED) != 0;
    return cfg_origin_from_task && !is_exempt(bpf_get_current_cgroup_id());
}

SEC("cgroup/getpeername4")
int podid_getpeername4(struct bpf_sock_addr *ctx)
{
    if (was_redirected(ctx, ctx->user_ip4)) {
        ctx->user_ip4 = cfg_metadata_ip4;
        ctx->user_port = bpf_htons(PODID_METADATA_PORT);
    }
    return 1;
}

SEC("cgroup/getpeername6")
int podid_getpeername6(struct bpf_sock_addr *ctx)
{
    if (!is_v4_mapped(ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2]))
        return 1;
    if (was_redirected(ctx, ctx->user_ip6[3])) {
        ctx->user_ip6[3] = cfg_metadata_ip4;
        ctx->user_port = bpf_htons(PODID_METADATA_PORT);
    }
    return 1;
}

/*
 * Reads one 32-bit sock_ops field. The volatile load keeps clang from merging two adjacent
 * 32-bit context loads into one 64-bit load, which the verifier rejects ("invalid bpf_context access").
 */
#define SKOPS_FIELD(skops, field) (*(volatile __u32 *)&(skops)->field)

/*
 * The 4-tuple of a connecting socket as the agent will see it after accept (peer = the pod's end, local =
 * the agent's). Returns 1 for AF_INET, and for AF_INET6 when the remote end is v4-mapped (the only IPv6
 * sockets podid redirects); 0 otherwise. The caller zeroes the key (its padding is part of the hash key).
 */
static __always_inline int tuple_of(struct bpf_sock_ops *skops, struct podid_tuple *key)
{
    /* Every field is read unconditionally, straight from ctx: clang otherwise shares one computed
     * ctx pointer between the branches, and the verifier refuses a modified ctx pointer. */
    __u32 family = SKOPS_FIELD(skops, family);
    __u32 local4 = SKOPS_FIELD(skops, local_ip4);
    __u32 remote4 = SKOPS_FIELD(skops, remote_ip4);
    __u32 local6 = SKOPS_FIELD(skops, local_ip6[3]);
    __u32 remote6_0 = SKOPS_FIELD(skops, remote_ip6[0]);
    __u32 remote6_1 = SKOPS_FIELD(skops, remote_ip6[1]);
    __u32 remote6_2 = SKOPS_FIELD(skops, remote_ip6[2]);
    __u32 remote6 = SKOPS_FIELD(skops, remote_ip6[3]);
    __u32 local_port = SKOPS_FIELD(skops, local_port);
    __u32 remote_port = SKOPS_FIELD(skops, remote_port);

    if (family == PODID_AF_INET) {
        key->peer_ip4 = local4;
        key->local_ip4 = remote4;
    } else if (family == PODID_AF_INET6 && is_v4_mapped(remote6_0, remote6_1, remote6_2)) {
        key->peer_ip4 = local6;
        key->local_ip4 = remote6;
    } else {
        return 0;
    }
    /* local_port is host order; remote_port holds the network-order port in its upper 16 bits
     * on little-endian (the kernel shifts sk_dport left by 16). Normalise both to network order. */
    key->peer_port = bpf_htons((__u16)local_port);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    key->local_port = (__u16)(remote_port >> 16);
#else
    key->local_port = (__u16)remote_port;
#endif
    return 1;
}

/* Kernels without the task helpers in sockops (6.12 and older): copies the record the connect hook kept in
 * socket storage. */
SEC("sockops")
int podid_sockops(struct bpf_sock_ops *skops)
{
    if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
        return 1;
    struct bpf_sock *sk = skops->sk;
    if (!sk)
        return 1;
    struct podid_origin *o = bpf_sk_storage_get(&sk_origin, sk, 0, 0);
    if (!o)
        return 1;
    struct podid_tuple key = {};
    if (!tuple_of(skops, &key))
        return 1;
    bpf_map_update_elem(&conn_origin, &key, o, BPF_ANY);
    return 1;
}

/*
 * Kernels with bpf_get_current_cgroup_id/_pid_tgid/_comm in sockops (6.18; not 6.12): TCP_CONNECT_CB runs
 * inside the connect() (or sendmsg(MSG_FASTOPEN)) call, so the current task is the one the connect hook saw.
 * A connection to the agent's node-IP endpoint without a socket-storage record is a redirect (the connect hook
 * keeps a record for every connect straight to the agent, and lets exempt cgroups through untouched).
 */
SEC("sockops")
int podid_sockops_task(struct bpf_sock_ops *skops)
{
    if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
        return 1;
    struct podid_tuple key = {};
    if (!tuple_of(skops, &key))
        return 1;
    if (!is_agent_endpoint(key.local_ip4, bpf_ntohs(key.local_port)))
        return 1;
    struct bpf_sock *sk = skops->sk;
    if (sk) {
        struct podid_origin *o = bpf_sk_storage_get(&sk_origin, sk, 0, 0);
        if (o) {
            bpf_map_update_elem(&conn_origin, &key, o, BPF_ANY);
            return 1;
        }
    }
    if (key.local_ip4 != cfg_agent_ip4)
        return 1; /* loopback: only connects straight to the agent go there, and they carry a record */
    __u64 cgroup_id = bpf_get_current_cgroup_id();
    if (is_exempt(cgroup_id))
        return 1;

    struct podid_origin o = {};
    fill_origin(&o, cgroup_id, cfg_metadata_ip4, bpf_htons(PODID_METADATA_PORT),
                PODID_ORIGIN_REDIRECTED | (SKOPS_FIELD(skops, family) == PODID_AF_INET6 ? PODID_ORIGIN_V4_MAPPED : 0));
    bpf_map_update_elem(&conn_origin, &key, &o, BPF_ANY);
    return 1;
}

static __always_inline __u32 drop_slot_for(__u8 protocol)
{
    switch (protocol) {
    case IPPROTO_TCP:
        return PODID_CTR_DROP_TCP;
    case IPPROTO_UDP:
        return PODID_CTR_DROP_UDP;
    case IPPROTO_ICMP:
        return PODID_CTR_DROP_ICMP;
    default:
        return PODID_CTR_DROP_OTHER;
    }
}

/*
 * The network header (cgroup_skb data starts there) read in place, or copied to `copy` when it is not in the
 * linear part (never seen for locally generated headers, handled all the same); NULL for a shorter packet.
 */
static __always_inline void *network_header(struct __sk_buff *skb, void *copy, __u32 len)
{
    void *data = (void *)(long)skb->data;
    if (data + len <= (void *)(long)skb->data_end)
        return data;
    return bpf_skb_load_bytes(skb, 0, copy, len) ? 0 : copy;
}

/* Runs for every packet every pod sends: the common case (any other destination) is one in-place read. */
SEC("cgroup_skb/egress")
int podid_egress(struct __sk_buff *skb)
{
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        struct iphdr copy;
        struct iphdr *ip = network_header(skb, &copy, sizeof(copy));
        if (!ip)
            return 1;
        __u32 daddr = ip->daddr;
        if (daddr == cfg_metadata_ip4) {
            /* A TCP connect to :80 was rewritten, so anything still addressed here slipped past. */
            __u64 cgroup_id = bpf_skb_cgroup_id(skb);
            if (is_exempt(cgroup_id))
                return 1;
            count(cgroup_id, drop_slot_for(ip->protocol));
            return 0;
        }
        if (daddr == cfg_agent_ip4 && ip->protocol == IPPROTO_TCP) {
            /* Hand-made TCP to the agent (raw socket, spoofed tuple) must not reach it: only real
             * stream sockets, whose connect hook recorded an origin, may talk to the agent. A stream
             * socket's packets (every packet of a redirected connection) are let through first, without
             * reading the TCP header. */
            struct bpf_sock *sk = skb->sk;
            if (!sk)
                return 1;
            sk = bpf_sk_fullsock(sk);
            if (!sk || sk->type == PODID_SOCK_STREAM)
                return 1;
            struct tcphdr tcp;
            __u32 off = (__u32)ip->ihl * 4;
            if (bpf_skb_load_bytes(skb, off, &tcp, sizeof(tcp)))
                return 1;
            if (bpf_ntohs(tcp.dest) != cfg_agent_port)
                return 1;
            __u64 cgroup_id = bpf_skb_cgroup_id(skb);
            if (is_exempt(cgroup_id))
                return 1;
            count(cgroup_id, PODID_CTR_DROP_RAW_AGENT);
            return 0;
        }
        return 1;
    }
    if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr copy;
        struct ipv6hdr *ip6 = network_header(skb, &copy, sizeof(copy));
        if (!ip6)
            return 1;
        if (is_v4_mapped(ip6->daddr.in6_u.u6_addr32[0], ip6->daddr.in6_u.u6_addr32[1], ip6->daddr.in6_u.u6_addr32[2]) &&
            ip6->daddr.in6_u.u6_addr32[3] == cfg_metadata_ip4) {
            __u64 cgroup_id = bpf_skb_cgroup_id(skb);
            if (is_exempt(cgroup_id))
                return 1;
            count(cgroup_id, PODID_CTR_DROP_V6);
            return 0;
        }
    }
    return 1;
}
