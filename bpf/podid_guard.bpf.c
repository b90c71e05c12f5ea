// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * podid interface guard: a tc ingress filter on the host side of pod interfaces (veths) that drops every
 * frame addressed to 169.254.169.254 (IPv4, or ::ffff:169.254.169.254 in IPv6), with or without one VLAN tag.
 *
 * Why: the cgroup programs in podid.bpf.c see every inet socket of a pod, but an AF_PACKET socket writes
 * Ethernet frames below the IP layer, where no cgroup hook runs; a pod with CAP_NET_RAW (granted by default by
 * most container runtimes) could hand-craft a TCP exchange with the node's IMDS. Those frames still arrive on
 * the pod's host-side interface, and nothing legitimate from a pod is addressed to 169.254.169.254 there: the
 * connect hooks have already rewritten every real connection to the agent's node IP.
 *
 * The filter needs no socket or cgroup (at veth ingress the skb has crossed namespaces and carries neither),
 * only the headers. tc filters live with the interface's qdisc, not with the agent process, so the guard stays
 * in force while the agent is down or restarting (fail closed), like the pinned cgroup links.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "podid/abi.h"

#define PODID_ETH_P_8021Q 0x8100
#define PODID_ETH_P_8021AD 0x88A8

struct vlan_tag {
    __be16 tci;
    __be16 inner_proto;
};

/* Slots of guard_stats (enum podid_guard_counter in abi.h): dropped IPv4 / IPv6 frames, frames inspected. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, PODID_GUARD_CTR_MAX);
    __type(key, __u32);
    __type(value, __u64);
} guard_stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
    __u64 *v = bpf_map_lookup_elem(&guard_stats, &slot);
    if (v)
        *v += 1;
}

SEC("tc")
int podid_guard(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return TC_ACT_OK;
    __be16 proto = eth->h_proto;
    void *l3 = eth + 1;
    if (proto == bpf_htons(PODID_ETH_P_8021Q) || proto == bpf_htons(PODID_ETH_P_8021AD)) {
        struct vlan_tag *tag = l3;
        if ((void *)(tag + 1) > end)
            return TC_ACT_OK;
        proto = tag->inner_proto;
        l3 = tag + 1;
    }
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = l3;
        if ((void *)(ip + 1) > end)
            return TC_ACT_OK;
        if (ip->daddr == bpf_htonl(PODID_METADATA_IP4_HOST)) {
            count(PODID_GUARD_DROP_V4);
            return TC_ACT_SHOT;
        }
    } else if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = l3;
        if ((void *)(ip6 + 1) > end)
            return TC_ACT_OK;
        const __u32 *w = ip6->daddr.in6_u.u6_addr32;
        if (w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000FFFF) && w[3] == bpf_htonl(PODID_METADATA_IP4_HOST)) {
            count(PODID_GUARD_DROP_V6);
            return TC_ACT_SHOT;
        }
    }
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
