/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sched_least.h — the one-pass schedulers: lc, wlc, sed, nq, fo, ovf (a running best
 * under a strict comparison, so ties keep the newer server) and twos. */
#ifndef RVS_SCHED_LEAST_H
#define RVS_SCHED_LEAST_H

#include "sched_common.h"

struct least_ctx {
	const struct rvs_service *svc;
	__u32 n;
	__u32 mode;     /* enum rvs_sched */
	__u32 best;
	__u64 boh;      /* best's load numerator */
	__u64 bw;       /* best's weight */
	__u32 done;     /* nq found an idle server */
};

/* Load numerator and weight a server is compared with, per scheduler; 0 = skip it.
 * Candidate b replaces best a when a.oh * b.w > b.oh * a.w (all schedulers reduce to it:
 * lc weighs 1, fo/ovf have constant load so the heavier wins). */
__rvs_inline int least_key(__u32 mode, const struct dview *v, __u64 *oh, __u64 *w)
{
	if (!eligible(v))
		return 0;
	switch (mode) {
	case RVS_SCHED_LC:
		*oh = overhead(v);
		*w = 1;
		return 1;
	case RVS_SCHED_WLC:
		*oh = overhead(v);
		*w = v->weight;
		return 1;
	case RVS_SCHED_SED:
	case RVS_SCHED_NQ:
		*oh = (__u64)v->active + 1;
		*w = v->weight;
		return 1;
	case RVS_SCHED_OVF:
		if (v->active > v->weight)
			return 0;
		/* fallthrough */
	case RVS_SCHED_FO:
		*oh = 1;
		*w = v->weight;
		return 1;
	}
	return 0;
}

static long least_cb(__u64 i, void *arg)
{
	struct least_ctx *c = arg;
	if (i >= c->n)
		return 1;
	__u32 slot = svc_dest(c->svc, i);
	struct dview v;
	__u64 oh, w;
	if (!dview_get(c->svc->slot, slot, &v) || !least_key(c->mode, &v, &oh, &w))
		return 0;
	if (c->mode == RVS_SCHED_NQ && v.active == 0) {
		c->best = slot;
		c->done = 1;
		return 1;
	}
	if (c->best == RVS_NO_DEST || c->boh * w > oh * c->bw) {
		c->best = slot;
		c->boh = oh;
		c->bw = w;
	}
	return 0;
}

/* lc, wlc, sed, nq, fo, ovf. */
__rvs_inline __u32 sched_least(const struct rvs_service *svc, __u32 mode)
{
	struct least_ctx c = {
		.svc = svc,
		.n = svc->n_dests,
		.mode = mode,
		.best = RVS_NO_DEST,
	};
	bpf_loop(RVS_MAX_SVC_DESTS, least_cb, &c, 0);
	return c.best;
}

/* The wlc rule, shared by lblc and lblcr: a function of its own, verified once rather
 * than at every place those two fall back to it. */
__rvs_sub __u32 rvs_pick_wlc(const struct rvs_service *svc)
{
	if (!svc)
		return RVS_NO_DEST;
	return sched_least(svc, RVS_SCHED_WLC);
}

/* ---- twos ---------------------------------------------------------------------------- */

struct twos_ctx {
	const struct rvs_service *svc;
	__u32 n;
	__s32 total;     /* pass 1: sum of eligible weights (C int) */
	__u32 any;
	__s32 r1, r2;    /* pass 2: the draws being walked down */
	__u32 c1, c2;
	__s32 w1, w2, oh1, oh2;
	__u32 last;
};

__rvs_inline __s32 overhead_i32(const struct dview *v)
{
	return (__s32)((__u32)v->active << 8) + (__s32)v->inactive;
}

static long twos_sum_cb(__u64 i, void *arg)
{
	struct twos_ctx *c = arg;
	if (i >= c->n)
		return 1;
	struct dview v;
	if (dview_get(c->svc->slot, svc_dest(c->svc, i), &v) && eligible(&v)) {
		c->total = (__s32)((__u32)c->total + v.weight);
		c->any = 1;
	}
	return 0;
}

static long twos_walk_cb(__u64 i, void *arg)
{
	struct twos_ctx *c = arg;
	if (i >= c->n)
		return 1;
	__u32 slot = svc_dest(c->svc, i);
	struct dview v;
	if (!dview_get(c->svc->slot, slot, &v) || !eligible(&v))
		return 0;
	__s32 w = (__s32)v.weight;
	c->last = slot;
	c->r1 = (__s32)((__u32)c->r1 - (__u32)w);
	c->r2 = (__s32)((__u32)c->r2 - (__u32)w);
	if (c->r1 <= 0 && c->c1 == RVS_NO_DEST) {
		c->c1 = slot;
		c->w1 = w;
		c->oh1 = overhead_i32(&v);
	}
	if (c->r2 <= 0 && c->c2 == RVS_NO_DEST) {
		c->c2 = slot;
		c->w2 = w;
		c->oh2 = overhead_i32(&v);
	}
	return c->c1 != RVS_NO_DEST && c->c2 != RVS_NO_DEST;
}

/* twos: two weighted draws in [0, W], the less loaded of the two (ip_vs_twos.c). */
__rvs_inline __u32 sched_twos(const struct rvs_service *svc)
{
	struct twos_ctx c = {
		.svc = svc,
		.n = svc->n_dests,
		.c1 = RVS_NO_DEST,
		.c2 = RVS_NO_DEST,
		.last = RVS_NO_DEST,
	};
	bpf_loop(RVS_MAX_SVC_DESTS, twos_sum_cb, &c, 0);
	if (!c.any)
		return RVS_NO_DEST;
	__u32 bound = (__u32)c.total + 1;
	c.r1 = (__s32)rvs_random_below(bound);
	c.r2 = (__s32)rvs_random_below(bound);
	bpf_loop(RVS_MAX_SVC_DESTS, twos_walk_cb, &c, 0);
	if (c.c1 == RVS_NO_DEST) {
		/* only if the int sum wrapped: the kernel's defaults */
		c.c1 = c.last;
		c.w1 = -1;
		c.oh1 = 0;
	}
	if (c.c2 != RVS_NO_DEST &&
	    (__s32)((__u32)c.w2 * (__u32)c.oh1) > (__s32)((__u32)c.w1 * (__u32)c.oh2))
		return c.c2;
	return c.c1;
}

#endif
