/* SPDX-License-Identifier: GPL-2.0-or-later */
/* env.h — the helpers a test build mocks (Cilium style: the real program, test defines).
 *
 * With -DRVS_TEST the clock, the random source and the packet mark come from the
 * rvs_test_env map, so the scheduler conformance test can replay time and scripted draws
 * exactly; everything else is the production code. */
#ifndef RVS_ENV_H
#define RVS_ENV_H

#include "maps.h"

#ifndef RVS_TEST
/* The clock as last read on this CPU, with the jiffy it was read in (rvs_now). Not
 * pinned: a cache, rebuilt by every program that loads. */
struct rvs_clock {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rvs_clock);
} rvs_clock SEC(".maps");
#endif

#ifdef RVS_TEST
__rvs_inline struct rvs_test_env *test_env(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&rvs_test_env, &zero);
}
#endif

/* Monotonic nanoseconds, coarse (CLOCK_MONOTONIC_COARSE, a few ms resolution): entry
 * timers count seconds, and the precise clock costs tens of ns per packet in a VM.
 * The coarse clock only moves at ticks, so it is read once per jiffy per CPU and reused
 * while bpf_jiffies64() — inlined by the verifier, a plain load — stays the same: the
 * helper is a call (two returns, each a mispredicted branch under the kernel's return
 * thunks). A reading taken between a tick's jiffies increment and its clock update is at
 * most one tick old for the rest of that jiffy. */
__rvs_inline __u64 rvs_now(void)
{
#ifdef RVS_TEST
	struct rvs_test_env *e = test_env();
	return e ? e->now_ns : 0;
#else
	__u32 zero = 0;
	struct rvs_clock *c = bpf_map_lookup_elem(&rvs_clock, &zero);
	__u64 j = bpf_jiffies64();
	if (c && c->jiffies == j)
		return c->ns;
	__u64 ns = bpf_ktime_get_coarse_ns();
	if (c) {
		c->jiffies = j;
		c->ns = ns;
	}
	return ns;
#endif
}

/* Uniform in [0, bound): the kernel's get_random_u32_below (multiply-shift). */
__rvs_inline __u32 rvs_random_below(__u32 bound)
{
#ifdef RVS_TEST
	struct rvs_test_env *e = test_env();
	if (!e)
		return 0;
	__u32 i = e->next_draw;
	if (i >= e->n_draws || i >= RVS_TEST_MAX_DRAWS) {
		e->bad_draws++;
		return 0;
	}
	e->bounds[i] = bound;
	e->next_draw = i + 1;
	return e->draws[i] < bound ? e->draws[i] : bound - 1;
#else
	return (__u32)(((__u64)bpf_get_prandom_u32() * bound) >> 32);
#endif
}

/* The packet's firewall mark. XDP runs before netfilter sets one: a frame rvsd runs
 * again for the netfilter program carries its mark as metadata (rvs_abi.h, "fwmark
 * services"); any other frame has none. The test build also takes it from the map. */
__rvs_inline __u32 rvs_pkt_mark(const struct xdp_md *ctx)
{
	const struct rvs_fwmark_meta *m = (const void *)(long)ctx->data_meta;
	if ((const void *)(m + 1) <= (const void *)(long)ctx->data && m->magic == RVS_FWMARK_MAGIC)
		return m->mark;
#ifdef RVS_TEST
	struct rvs_test_env *e = test_env();
	return e ? e->fwmark : 0;
#else
	return 0;
#endif
}

/* Records the outcome of a packet for the conformance test. */
__rvs_inline void rvs_test_record(int code, __u32 dest, __u32 created)
{
#ifdef RVS_TEST
	struct rvs_test_env *e = test_env();
	if (e) {
		e->last_code = code;
		e->last_dest = dest;
		e->last_created = created;
	}
#else
	(void)code;
	(void)dest;
	(void)created;
#endif
}

#endif

