/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sched_lblc.h — lblc and lblcr: a cache from destination address to a server (lblc) or a
 * set of servers (lblcr), in BPF hash maps; rvsd runs their garbage collection with the
 * timing of ip_vs_lblc.c (crates/rvs-xdp/src/locality.rs). */
#ifndef RVS_SCHED_LBLC_H
#define RVS_SCHED_LBLC_H

#include "sched_least.h"

#define LBLCR_EXPIRATION_NS (24ULL * 3600 * NS_PER_S)

struct ovl_ctx {
	const struct rvs_service *svc;
	__u32 n;
	__u32 any_idle;
};

static long half_idle_cb(__u64 i, void *arg)
{
	struct ovl_ctx *c = arg;
	if (i >= c->n)
		return 1;
	struct dview v;
	if (dview_get(c->svc->slot, svc_dest(c->svc, i), &v) && (__u64)v.active * 2 < v.weight) {
		c->any_idle = 1;
		return 1;
	}
	return 0;
}

/* lblc's "overloaded": more active connections than its weight while another server of
 * the service is below half of its own. */
__rvs_inline int lblc_overloaded(const struct rvs_service *svc, __u32 active, __u32 weight)
{
	if (active <= weight)
		return 0;
	struct ovl_ctx c = { .svc = svc, .n = svc->n_dests };
	bpf_loop(RVS_MAX_SVC_DESTS, half_idle_cb, &c, 0);
	return c.any_idle;
}

__rvs_inline void lblc_key(struct rvs_lblc_key *k, const struct rvs_service *svc,
			   const struct rvs_pkt *in)
{
	k->svc = svc->slot;
	addr_copy(k->addr, in->daddr);
}

__rvs_inline __u32 sched_lblc(const struct rvs_service *svc, const struct rvs_pkt *in)
{
	struct rvs_lblc_key k = {};
	__u64 now = rvs_now();
	lblc_key(&k, svc, in);
	struct rvs_lblc *e = bpf_map_lookup_elem(&rvs_lblc, &k);
	if (e) {
		e->lastuse_ns = now;
		__u16 slot = e->dest;
		struct dview v;
		if (dview_get(svc->slot, slot, &v) && v.available && v.weight > 0 &&
		    !lblc_overloaded(svc, v.active, v.weight))
			return slot;
	}
	__u32 pick = rvs_pick_wlc(svc);
	if (pick == RVS_NO_DEST)
		return RVS_NO_DEST;
	e = bpf_map_lookup_elem(&rvs_lblc, &k);
	if (e) {
		e->dest = pick;
	} else {
		struct rvs_lblc ne = { .lastuse_ns = now, .dest = pick };
		bpf_map_update_elem(&rvs_lblc, &k, &ne, BPF_ANY);
	}
	return pick;
}

/* ---- lblcr ----------------------------------------------------------------------------- */

/* A destination set as a pick sees it: a copy of the cache entry's, plain data. */
struct lblcr_set {
	__u16 set[RVS_LBLCR_SET_MAX]; /* newest member first */
	__u32 count;
	__u32 pad;
	__u64 lastmod;
};

struct lblcr_ctx {
	const struct rvs_service *svc;
	struct lblcr_set *s;
	__u32 best;     /* set_min / set_max result */
	__u64 boh, bw;  /* its load and weight */
};

/* set_min: least overhead/weight member; OVERLOAD skipped; the first candidate must have
 * weight > 0 and be available, later ones available. */
static long set_min_cb(__u64 i, void *arg)
{
	struct lblcr_ctx *c = arg;
	if (i >= c->s->count)
		return 1;
	__u16 slot = c->s->set[i & (RVS_LBLCR_SET_MAX - 1)];
	struct dview v;
	if (!dview_get(c->svc->slot, slot, &v) || !v.exists || v.overloaded)
		return 0;
	__u64 oh = overhead(&v), w = v.weight;
	if (c->best == RVS_NO_DEST) {
		if (w > 0 && v.available) {
			c->best = slot;
			c->boh = oh;
			c->bw = w;
		}
	} else if (c->boh * w > oh * c->bw && v.available) {
		c->best = slot;
		c->boh = oh;
		c->bw = w;
	}
	return 0;
}

/* set_max: most overhead/weight member among those with weight > 0. */
static long set_max_cb(__u64 i, void *arg)
{
	struct lblcr_ctx *c = arg;
	if (i >= c->s->count)
		return 1;
	__u16 slot = c->s->set[i & (RVS_LBLCR_SET_MAX - 1)];
	struct dview v;
	if (!dview_get(c->svc->slot, slot, &v) || !v.exists || v.weight == 0)
		return 0;
	__u64 oh = overhead(&v), w = v.weight;
	if (c->best == RVS_NO_DEST || c->boh * w < oh * c->bw) {
		c->best = slot;
		c->boh = oh;
		c->bw = w;
	}
	return 0;
}

/* Set edits are small loops of their own (bpf_loop) to keep the stack and the verifier's
 * work small. */
struct set_edit {
	__u16 *set;
	__u32 count;
	__u32 j;
	__u16 slot;
	__u16 found;
};

static long set_remove_cb(__u64 i, void *arg)
{
	struct set_edit *e = arg;
	if (i >= e->count || i >= RVS_LBLCR_SET_MAX)
		return 1;
	__u16 v = e->set[i];
	if (v != e->slot) {
		__u32 j = e->j;
		if (j < RVS_LBLCR_SET_MAX)
			e->set[j] = v;
		e->j = j + 1;
	}
	return 0;
}

static long set_contains_cb(__u64 i, void *arg)
{
	struct set_edit *e = arg;
	if (i >= e->count || i >= RVS_LBLCR_SET_MAX)
		return 1;
	if (e->set[i] == e->slot) {
		e->found = 1;
		return 1;
	}
	return 0;
}

static long set_shift_cb(__u64 k, void *arg)
{
	struct set_edit *e = arg;
	__u32 i = RVS_LBLCR_SET_MAX - 1 - (__u32)k;
	if (i == 0 || i >= RVS_LBLCR_SET_MAX)
		return 1;
	e->set[i] = e->set[i - 1];
	return 0;
}

__rvs_inline void set_remove(struct lblcr_ctx *c, __u16 slot)
{
	struct set_edit e = { .set = c->s->set, .count = c->s->count, .slot = slot };
	bpf_loop(RVS_LBLCR_SET_MAX, set_remove_cb, &e, 0);
	c->s->count = e.j;
}

__rvs_inline int set_contains(struct lblcr_ctx *c, __u16 slot)
{
	struct set_edit e = { .set = c->s->set, .count = c->s->count, .slot = slot };
	bpf_loop(RVS_LBLCR_SET_MAX, set_contains_cb, &e, 0);
	return e.found;
}

/* Newest member first; a full set drops its oldest member (the kernel's is unbounded). */
__rvs_inline void set_push(struct lblcr_ctx *c, __u16 slot)
{
	struct set_edit e = { .set = c->s->set };
	bpf_loop(RVS_LBLCR_SET_MAX, set_shift_cb, &e, 0);
	c->s->set[0] = slot;
	if (c->s->count < RVS_LBLCR_SET_MAX)
		c->s->count++;
}

/* The decision on a cache hit; the set in c may change. */
__rvs_inline __u32 lblcr_hit(struct lblcr_ctx *c, const struct rvs_service *svc, __u64 now)
{
	__u64 *lastmod = &c->s->lastmod;
	c->best = RVS_NO_DEST;
	bpf_loop(RVS_LBLCR_SET_MAX, set_min_cb, c, 0);
	__u32 min = c->best;
	if (c->s->count > 1 && now > *lastmod + LBLCR_EXPIRATION_NS) {
		c->best = RVS_NO_DEST;
		bpf_loop(RVS_LBLCR_SET_MAX, set_max_cb, c, 0);
		if (c->best != RVS_NO_DEST) {
			set_remove(c, c->best);
			*lastmod = now;
		}
	}
	if (min != RVS_NO_DEST) {
		struct dview v;
		if (dview_get(svc->slot, min, &v) && !lblc_overloaded(svc, v.active, v.weight))
			return min;
	}
	__u32 pick = rvs_pick_wlc(svc);
	if (pick == RVS_NO_DEST)
		return RVS_NO_DEST;
	if (!set_contains(c, pick)) {
		set_push(c, pick);
		*lastmod = now;
	}
	return pick;
}

/* The decision on a cache hit, on a copy of the entry's set (which may change): a
 * function of its own, verified once. */
__rvs_sub __u32 rvs_lblcr_hit(const struct rvs_service *svc, struct lblcr_set *s, __u64 now)
{
	if (!svc || !s)
		return RVS_NO_DEST;
	struct lblcr_ctx c = { .svc = svc, .s = s };
	return lblcr_hit(&c, svc, now);
}

/* A new cache entry, in a frame of its own (the value is big). */
__rvs_sub int rvs_lblcr_new(const struct rvs_lblc_key *k, __u32 dest, __u64 now)
{
	struct rvs_lblcr ne = { .lastuse_ns = now, .lastmod_ns = now, .count = 1 };
	if (!k)
		return -1;
	ne.set[0] = dest;
	return bpf_map_update_elem(&rvs_lblcr, k, &ne, BPF_NOEXIST);
}

/* One optimistic pick on a cache entry: the set copied out under its lock, decided on
 * without it (helpers may not run under a lock), written back only if nobody changed the
 * entry meanwhile. */
struct lblcr_try {
	struct lblcr_set s;
	const struct rvs_service *svc;
	struct rvs_lblcr *e;
	__u64 now;
	__u32 pick;
};

static long lblcr_try_cb(__u64 i, void *arg)
{
	struct lblcr_try *t = arg;
	struct rvs_lblcr *e = t->e;
	(void)i;
	if (!e)
		return 1;
	bpf_spin_lock(&e->lock);
	__u32 ver = e->version;
	t->s.lastmod = e->lastmod_ns;
	t->s.count = e->count > RVS_LBLCR_SET_MAX ? RVS_LBLCR_SET_MAX : e->count;
	__builtin_memcpy(t->s.set, e->set, sizeof(t->s.set));
	bpf_spin_unlock(&e->lock);

	t->pick = rvs_lblcr_hit(t->svc, &t->s, t->now);
	int ok;
	bpf_spin_lock(&e->lock);
	ok = e->version == ver;
	if (ok) {
		e->version = ver + 1;
		e->lastuse_ns = t->now;
		e->lastmod_ns = t->s.lastmod;
		e->count = t->s.count;
		__builtin_memcpy(e->set, t->s.set, sizeof(t->s.set));
	}
	bpf_spin_unlock(&e->lock);
	return ok;
}

__rvs_inline __u32 sched_lblcr(const struct rvs_service *svc, const struct rvs_pkt *in)
{
	struct rvs_lblc_key k = {};
	struct lblcr_try t = { .svc = svc, .pick = RVS_NO_DEST };
	t.now = rvs_now();
	lblc_key(&k, svc, in);
	t.e = bpf_map_lookup_elem(&rvs_lblcr, &k);
	if (!t.e) {
		__u32 pick = rvs_pick_wlc(svc);
		if (pick != RVS_NO_DEST)
			rvs_lblcr_new(&k, pick, t.now);
		return pick;
	}
	bpf_loop(SCHED_RETRIES, lblcr_try_cb, &t, 0);
	return t.pick;
}

#endif
