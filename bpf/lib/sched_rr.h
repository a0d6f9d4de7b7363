/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sched_rr.h — rr and wrr, the two schedulers with a cursor. The cursor lives in
 * rvs_sched_state under a spin lock; a pick reads it, walks the list without the lock
 * (helpers may not run under it) and writes it back only if nobody moved it meanwhile
 * (version check), else it walks again: every pick sees the cursor of the previous one,
 * as under the kernel's sched_lock. */
#ifndef RVS_SCHED_RR_H
#define RVS_SCHED_RR_H

#include "sched_common.h"

struct rr_ctx {
	const struct rvs_service *svc;
	__u32 n;
	__u32 start;
	__u32 cursor;
	__u32 pick;
	__u32 at;
};

static long rr_find_cb(__u64 i, void *arg)
{
	struct rr_ctx *c = arg;
	if (i >= c->n)
		return 1;
	if (svc_dest(c->svc, i) == c->cursor) {
		c->start = i + 1;
		return 1;
	}
	return 0;
}

static long rr_walk_cb(__u64 k, void *arg)
{
	struct rr_ctx *c = arg;
	if (k >= c->n)
		return 1;
	__u32 at = (c->start + (__u32)k) % c->n;
	__u32 slot = svc_dest(c->svc, at);
	struct dview v;
	if (dview_get(c->svc->slot, slot, &v) && eligible(&v)) {
		c->pick = slot;
		c->at = at;
		return 1;
	}
	return 0;
}

/* One rr walk from the cursor: one full turn, ending with the cursor's own server. */
__rvs_inline void rr_walk(const struct rvs_service *svc, __u16 cursor, __u16 hint, struct rr_ctx *c)
{
	c->svc = svc;
	c->n = svc->n_dests;
	c->start = 0;
	c->cursor = cursor;
	c->pick = RVS_NO_DEST;
	if (c->n == 0)
		return;
	if (cursor != RVS_NO_DEST) {
		if (hint < c->n && svc_dest(svc, hint) == cursor)
			c->start = hint + 1;
		else
			bpf_loop(RVS_MAX_SVC_DESTS, rr_find_cb, c, 0);
	}
	bpf_loop(RVS_MAX_SVC_DESTS, rr_walk_cb, c, 0);
}

__rvs_inline __u32 sched_rr(const struct rvs_service *svc)
{
	__u32 key = svc->slot;
	struct rvs_sched_state *st = bpf_map_lookup_elem(&rvs_sched_state, &key);
	struct rr_ctx c = {};
	if (!st)
		return RVS_NO_DEST;
	for (int attempt = 0; attempt < SCHED_RETRIES; attempt++) {
		bpf_spin_lock(&st->lock);
		__u16 cursor = st->rr_cursor;
		__u16 hint = st->rr_hint;
		__u32 ver = st->version;
		bpf_spin_unlock(&st->lock);

		rr_walk(svc, cursor, hint, &c);
		if (c.pick == RVS_NO_DEST)
			return RVS_NO_DEST;
		int ok;
		bpf_spin_lock(&st->lock);
		ok = st->version == ver;
		if (ok) {
			st->rr_cursor = c.pick;
			st->rr_hint = c.at;
			st->version = ver + 1;
		}
		bpf_spin_unlock(&st->lock);
		if (ok)
			break;
	}
	return c.pick;
}

/* ---- wrr ------------------------------------------------------------------------------ */

struct wrr_ctx {
	const struct rvs_service *svc;
	__u32 n;
	__s32 cw;
	__s32 stop;     /* list index where the final cw = 1 sweep began, -1 = none */
	__u32 pos;
	__s32 found;    /* index where the scan ended, -1 = end of list */
	__u32 match;    /* the scan ended on a server that takes the connection */
	__u32 maxw;     /* largest weight of a server that is not OVERLOAD */
	/* the sweep loop (wrr_sweep_cb) */
	__s32 mw;
	__s32 di;
	__s32 floor;    /* max(maxw, di): the bar is skipped down to it */
	__s32 cl;       /* the cursor: list index of the last pick, -1 = none */
	__s32 last;     /* the cursor where the pick began */
	__u32 last_pass;
	__u32 restarted;
	__u32 pick;
};

static long wrr_max_cb(__u64 i, void *arg)
{
	struct wrr_ctx *c = arg;
	if (i >= c->n)
		return 1;
	struct dview v;
	if (dview_get(c->svc->slot, svc_dest(c->svc, i), &v) && !v.overloaded && v.weight > c->maxw)
		c->maxw = v.weight;
	return 0;
}

/* From pos: the first server with weight >= cw, or the stop index, whichever comes first. */
static long wrr_scan_cb(__u64 k, void *arg)
{
	struct wrr_ctx *c = arg;
	__u32 i = c->pos + (__u32)k;
	if (i >= c->n)
		return 1;
	struct dview v;
	if (dview_get(c->svc->slot, svc_dest(c->svc, i), &v) && !v.overloaded &&
	    (__s64)v.weight >= c->cw) {
		c->found = i;
		c->match = 1;
		return 1;
	}
	if ((__s32)i == c->stop) {
		c->found = i;
		c->match = 0;
		return 1;
	}
	return 0;
}

/* One sweep of the list at bar cw, then the bar lowered for the next: 1 ends the pick
 * (c->pick set, RVS_NO_DEST if none). A callback, so the verifier sees one sweep however
 * many the pick takes. */
static long wrr_sweep_cb(__u64 iter, void *arg)
{
	struct wrr_ctx *c = arg;
	(void)iter;
	c->found = -1;
	c->match = 0;
	bpf_loop(RVS_MAX_SVC_DESTS, wrr_scan_cb, c, 0);
	if (c->found >= 0) {
		/* a match, or back at stop: nothing is eligible */
		if (c->match) {
			c->cl = c->found;
			c->pick = svc_dest(c->svc, (__u32)c->found);
		}
		return 1;
	}
	c->cw -= c->di;
	if (c->cw <= 0) {
		c->cw = c->mw;
		if (c->last_pass || c->last < 0) {
			c->cl = -1;
			return 1;
		}
		c->restarted = 1;
	}
	if (c->stop < 0 && c->cw > c->floor) {
		__u32 k = (__u32)(c->cw - c->floor + c->di - 1) / (__u32)c->di;
		c->cw -= (__s32)(k * (__u32)c->di);
	}
	c->last_pass = c->cw <= c->di;
	if (c->last_pass && c->restarted && c->last >= 0)
		c->stop = c->last;
	c->pos = 0;
	return 0;
}

/*
 * ip_vs_wrr_schedule, with the kernel's bookkeeping for failure (last_pass, restarted,
 * stop). Sweeps that cannot match — the bar is above every usable weight — are skipped in
 * one step instead of walked one by one: they would fail entirely and change nothing but
 * cw, and the bar stays positive while it is above max(usable weight, di), so a pick
 * takes at most a few sweeps (8 bound it). A function of its own, verified once rather
 * than in each of sched_wrr's retries.
 */
__rvs_sub __u32 rvs_wrr_pick(const struct rvs_service *svc, __s32 *cl, __s32 *cw)
{
	if (!svc || !cl || !cw)
		return RVS_NO_DEST;
	struct wrr_ctx c = {
		.svc = svc,
		.n = svc->n_dests,
		.stop = -1,
		.mw = (__s32)svc->wrr_mw,
		.di = (__s32)svc->wrr_di,
		.pick = RVS_NO_DEST,
	};
	if (c.mw <= 0 || c.di <= 0 || c.n == 0)
		return RVS_NO_DEST;
	c.last = (*cl >= 0 && *cl < (__s32)c.n) ? *cl : -1;
	c.cl = *cl;
	c.cw = *cw;
	bpf_loop(RVS_MAX_SVC_DESTS, wrr_max_cb, &c, 0);
	c.floor = (__s32)c.maxw > c.di ? (__s32)c.maxw : c.di;
	c.pos = (__u32)(c.last + 1);
	bpf_loop(8, wrr_sweep_cb, &c, 0);
	*cl = c.cl;
	*cw = c.cw;
	return c.pick;
}

__rvs_inline __u32 sched_wrr(const struct rvs_service *svc)
{
	__u32 key = svc->slot;
	struct rvs_sched_state *st = bpf_map_lookup_elem(&rvs_sched_state, &key);
	__u32 pick = RVS_NO_DEST;
	if (!st)
		return RVS_NO_DEST;
	for (int attempt = 0; attempt < SCHED_RETRIES; attempt++) {
		bpf_spin_lock(&st->lock);
		__s32 cl = st->wrr_cl;
		__s32 cw = st->wrr_cw;
		__u32 ver = st->version;
		bpf_spin_unlock(&st->lock);

		pick = rvs_wrr_pick(svc, &cl, &cw);
		int ok;
		bpf_spin_lock(&st->lock);
		ok = st->version == ver;
		if (ok) {
			st->wrr_cl = cl;
			st->wrr_cw = cw;
			st->version = ver + 1;
		}
		bpf_spin_unlock(&st->lock);
		if (ok)
			break;
	}
	return pick;
}

#endif
