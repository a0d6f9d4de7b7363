/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ctl.h — control requests rvsd runs through BPF_PROG_TEST_RUN, for the changes that must
 * be atomic with the packet path. RVS_CTL_EXPIRE is the timer of ip_vs_conn_expire: rvsd's
 * sweeper finds entries that look due, and here an entry is either still alive (a packet
 * came meanwhile: its state word changed), re-armed (a template with live children), or
 * marked dead by compare-and-swap on the word the decision was taken on, uncounted and
 * deleted. */
#ifndef RVS_CTL_H
#define RVS_CTL_H

#include "release.h"

/* One record: the result of expiring one entry. */
__rvs_inline __u8 ctl_expire_one(struct rvs_ctl_expire *r, __u64 now)
{
	union rvs_ckey k;
	__u8 family = r->family == RVS_AF_INET ? RVS_AF_INET : RVS_AF_INET6;
	__builtin_memcpy(&k, &r->key, sizeof(k));
	struct rvs_conn *c = conn_lookup(family, &k);
	if (!c)
		return RVS_CTL_GONE;
	__u32 sw = *(volatile __u32 *)&c->sw;
	asm volatile("" ::: "memory"); /* the word before the time it guards */
	__u64 due = c->last_ns + (__u64)c->timeout_s * NS_PER_S;
	if (RVS_SW_FLAGS(sw) & RVS_CF_DEAD)
		return RVS_CTL_GONE;
	if (!r->forced && now < due)
		return RVS_CTL_ALIVE;
	if ((RVS_SW_FLAGS(sw) & RVS_CF_TEMPLATE) && *(volatile __u32 *)&c->aux > 0) {
		c->timeout_s = RVS_CONTROL_REARM_S;
		c->last_ns = now;
		return RVS_CTL_REARMED;
	}
	struct rvs_conn snap = {};
	if (!conn_kill(c, sw, &snap))
		return RVS_CTL_ALIVE; /* a packet (or a new child) came meanwhile */
	if (!r->forced && now < *(volatile __u64 *)&c->last_ns + (__u64)c->timeout_s * NS_PER_S) {
		/* a packet re-armed the timer (without touching the word) while we decided:
		 * the entry lives on, nothing was released yet */
		__sync_fetch_and_xor(&c->sw, (__u32)RVS_CF_DEAD << 8);
		return RVS_CTL_ALIVE;
	}
	conn_release(family, &k, &snap, r->forced);
	return RVS_CTL_EXPIRED;
}

struct ctl_ctx {
	struct xdp_md *ctx;
	__u32 count;
	__u64 now;
};

static long ctl_expire_cb(__u64 i, void *arg)
{
	struct ctl_ctx *c = arg;
	struct rvs_ctl_expire r;
	if (i >= c->count)
		return 1;
	__u32 off = sizeof(struct rvs_ctl_hdr) + (__u32)i * sizeof(r);
	if (bpf_xdp_load_bytes(c->ctx, off, &r, sizeof(r)) < 0)
		return 1;
	r.result = ctl_expire_one(&r, c->now);
	bpf_xdp_store_bytes(c->ctx, off, &r, sizeof(r));
	return 0;
}

__rvs_inline int ctl_run(struct xdp_md *ctx)
{
	struct rvs_ctl_hdr h;
	if (bpf_xdp_load_bytes(ctx, 0, &h, sizeof(h)) < 0)
		return -1;
	if (h.op != RVS_CTL_EXPIRE)
		return -2;
	struct ctl_ctx c = {
		.ctx = ctx,
		.count = h.count > RVS_CTL_MAX_RECORDS ? RVS_CTL_MAX_RECORDS : h.count,
		.now = rvs_now(),
	};
	bpf_loop(RVS_CTL_MAX_RECORDS, ctl_expire_cb, &c, 0);
	return 0;
}

#endif
