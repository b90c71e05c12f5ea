// Layout checks for the ABI shared with the BPF programs: a change on one side that the other
// does not make fails the build here rather than corrupting records at run time.
#include <cstddef>

#include "podid/abi.h"

static_assert(sizeof(podid_origin) == 48);
static_assert(offsetof(podid_origin, cgroup_id) == 0);
static_assert(offsetof(podid_origin, connect_ns) == 8);
static_assert(offsetof(podid_origin, tgid) == 16);
static_assert(offsetof(podid_origin, pid) == 20);
static_assert(offsetof(podid_origin, comm) == 24);
static_assert(offsetof(podid_origin, orig_dst_ip4) == 40);
static_assert(offsetof(podid_origin, orig_dst_port) == 44);
static_assert(offsetof(podid_origin, flags) == 46);

static_assert(sizeof(podid_tuple) == 16);
static_assert(offsetof(podid_tuple, peer_ip4) == 0);
static_assert(offsetof(podid_tuple, local_ip4) == 4);
static_assert(offsetof(podid_tuple, peer_port) == 8);
static_assert(offsetof(podid_tuple, local_port) == 10);

static_assert(sizeof(podid_counters) == 8 * PODID_CTR_MAX);
static_assert(PODID_CTR_NO_STORAGE < PODID_CTR_MAX);
