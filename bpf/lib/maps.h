/* SPDX-License-Identifier: GPL-2.0-or-later */
/* maps.h — every map of the director, pinned by name under rvsd's pin directory so a
 * restarted rvsd adopts them (connections, templates, counters and caches survive). */
#ifndef RVS_MAPS_H
#define RVS_MAPS_H

#include "common.h"

#define LIBBPF_PIN_BY_NAME 1

/* Connections and templates. Plain (not LRU) hash: an established flow is never evicted
 * to make room; a full table refuses new flows with RVS_R_CONN_TABLE_FULL. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_CONN_MAX_DEFAULT);
	__type(key, struct rvs_conn_key4);
	__type(value, struct rvs_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_conns4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_CONN_MAX_DEFAULT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rvs_conn_key6);
	__type(value, struct rvs_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_conns6 SEC(".maps");

/* NAT replies: real server + client -> virtual address of the entry. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_CONN_MAX_DEFAULT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rvs_out_key4);
	__type(value, struct rvs_out_val4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_out4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_CONN_MAX_DEFAULT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rvs_out_key6);
	__type(value, struct rvs_out_val6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_out6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_MAX_SERVICES);
	__type(key, struct rvs_svc_key);
	__type(value, struct rvs_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_MAX_SERVICES);
	__type(key, struct rvs_vip_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rvs_dest);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_dests SEC(".maps");

/* Shared with rvsd through mmap: both sides use atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_DESTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct rvs_dest_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_dest_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rvs_dest_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_dest_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_REASON_COUNT);
	__type(key, __u32);
	__type(value, struct rvs_reason_count);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RVS_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct rvs_sched_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_sched_state SEC(".maps");

/* dh/sh/mh tables, two per service slot (key slot * 2 + generation): rvsd writes the idle
 * one and then flips rvs_service.lut, so a lookup never sees a half-written table. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_MAX_SERVICES * 2);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct rvs_lut);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_luts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_LBLC_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rvs_lblc_key);
	__type(value, struct rvs_lblc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_lblc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_LBLC_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rvs_lblc_key);
	__type(value, struct rvs_lblcr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_lblcr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_config SEC(".maps");

/* Next hops whose MAC was missing: rvsd drains this and makes the kernel resolve them. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 256);
	__type(value, struct rvs_vip_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_neigh_req SEC(".maps");

/* Entries the sync master sends (lib/sync.h), read by rvsd while a master runs. Not pinned:
 * every rvsd brings its own ring with the program it loads. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RVS_SYNC_RING_BYTES);
} rvs_sync_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_sync_count);
} rvs_sync_count SEC(".maps");

/* Template generations, per CPU so no two CPUs hand out the same one at once. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rvs_gen SEC(".maps");

#ifdef RVS_TEST
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_test_env);
} rvs_test_env SEC(".maps");
#endif

__rvs_inline struct rvs_config *config_get(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&rvs_config, &zero);
}

__rvs_inline struct rvs_dest *dest_get(__u32 slot)
{
	return bpf_map_lookup_elem(&rvs_dests, &slot);
}

__rvs_inline struct rvs_dest_state *dest_state_get(__u32 slot)
{
	return bpf_map_lookup_elem(&rvs_dest_state, &slot);
}

#endif
