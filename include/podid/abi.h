/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one ABI shared by the BPF programs (bpf/podid.bpf.c) and the agent.
 * Only fixed-width kernel types here; the C++ side checks the layout with static_asserts
 * (agent/datapath/abi_check.cpp). Reason and counter numbers are append-only: a retired
 * number keeps its slot, because metrics, audit lines and docs refer to them by number.
 */
#ifndef PODID_ABI_H
#define PODID_ABI_H

#include <linux/types.h>

#define PODID_COMM_LEN 16

/* Well-known addresses, network byte order is applied where they are used. */
#define PODID_METADATA_IP4_HOST 0xA9FEA9FEu /* 169.254.169.254 */
#define PODID_METADATA_PORT 80
#define PODID_DEFAULT_AGENT_PORT 2579

/* Flags in podid_origin.flags. */
enum podid_origin_flags {
    PODID_ORIGIN_REDIRECTED = 1u << 0,  /* destination was 169.254.169.254:80, rewritten to the agent */
    PODID_ORIGIN_DIRECT = 1u << 1,      /* connected straight to the agent's endpoint */
    PODID_ORIGIN_V4_MAPPED = 1u << 2,   /* came through connect6 with ::ffff:a.b.c.d */
};

/*
 * Who made a connection, taken in the connect hook where "current" is the connecting task.
 * Stored in socket storage (per socket) and copied by sockops into the 4-tuple map.
 */
struct podid_origin {
    __u64 cgroup_id;      /* cgroup v2 id (inode) of the connecting task */
    __u64 connect_ns;     /* bpf_ktime_get_ns() at connect */
    __u32 tgid;           /* process id */
    __u32 pid;            /* thread id */
    __u8 comm[PODID_COMM_LEN];
    __u32 orig_dst_ip4;   /* network order: the destination the application asked for */
    __u16 orig_dst_port;  /* network order */
    __u16 flags;          /* enum podid_origin_flags */
};

/*
 * Key of the 4-tuple map, as the agent sees the accepted connection:
 * peer = the pod's address, local = the agent's address. All network order.
 */
struct podid_tuple {
    __u32 peer_ip4;
    __u32 local_ip4;
    __u16 peer_port;
    __u16 local_port;
    __u32 pad; /* always zero */
};

/*
 * Per-cgroup counters (one slot per enum podid_counter). Stored per CPU; the agent sums.
 * Every decision a program takes counts in exactly one slot.
 */
enum podid_counter {
    PODID_CTR_REDIRECT4 = 0,        /* connect4 rewritten to the agent */
    PODID_CTR_REDIRECT6 = 1,        /* connect6 (v4-mapped) rewritten to the agent */
    PODID_CTR_AGENT_DIRECT = 2,     /* connect straight to the agent endpoint, recorded */
    PODID_CTR_DENY_PORT = 3,        /* connect to 169.254.169.254 on a port other than 80: refused */
    PODID_CTR_DROP_TCP = 4,         /* TCP packet to 169.254.169.254 that no connect hook saw (raw socket) */
    PODID_CTR_DROP_UDP = 5,         /* UDP to 169.254.169.254 */
    PODID_CTR_DROP_ICMP = 6,        /* ICMP to 169.254.169.254 */
    PODID_CTR_DROP_OTHER = 7,       /* any other protocol to 169.254.169.254 */
    PODID_CTR_DROP_RAW_AGENT = 8,   /* packet to the agent endpoint from a socket without an origin (raw) */
    PODID_CTR_DROP_V6 = 9,          /* IPv6 packet to ::ffff:169.254.169.254 */
    PODID_CTR_NO_STORAGE = 10,      /* connect seen but socket storage could not be allocated: refused */
    /* 11: reserved (an AF_PACKET refusal slot; cgroup sock hooks never see AF_PACKET sockets) */
    PODID_CTR_MAX = 16,             /* room to grow without changing the value size */
};

struct podid_counters {
    __u64 count[PODID_CTR_MAX];
};

/*
 * Interface guard (bpf/podid_guard.bpf.c, tc ingress on pods' host-side interfaces): node-wide counters,
 * one slot each in a per-CPU array. Append-only like podid_counter.
 */
enum podid_guard_counter {
    PODID_GUARD_DROP_V4 = 0,  /* frame to 169.254.169.254 arriving from a pod interface (AF_PACKET bypass) */
    PODID_GUARD_DROP_V6 = 1,  /* IPv6 frame to ::ffff:169.254.169.254 from a pod interface */
    PODID_GUARD_CTR_MAX = 4,
};

/* tc filter identity of the guard on each interface: fixed, so a restarted agent replaces its own filter
 * and uninstall removes exactly it. */
#define PODID_GUARD_TC_HANDLE 0x7064u /* "pd" */
#define PODID_GUARD_TC_PRIORITY 1u

/* Map sizes: the LRU tuple map holds connections between connect and the agent's accept. */
#define PODID_TUPLE_MAP_SIZE 65536
#define PODID_COUNTER_MAP_SIZE 65536
#define PODID_EXEMPT_MAP_SIZE 1024

#endif /* PODID_ABI_H */
