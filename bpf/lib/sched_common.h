/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sched_common.h — what every scheduler looks at: the service's list (newest first) and,
 * per server, its weight, connection counts and OVERLOAD flag. Semantics of each
 * scheduler: shared/reference/schedulers.md and crates/rvs-core/src/sched/. */
#ifndef RVS_SCHED_COMMON_H
#define RVS_SCHED_COMMON_H

#include "env.h"
#include "parse.h"

/* How often a scheduler with shared state (rr, wrr, lblcr) retries an optimistic pick
 * that raced with another CPU's. */
#define SCHED_RETRIES 4

/* One server as a scheduler sees it. */
struct dview {
	__u32 weight;
	__u32 active;
	__u32 inactive;
	__u8 overloaded;
	__u8 available;   /* a live member of this service (not deleted) */
	__u8 exists;      /* this service's server, live or deleted but still referenced */
	__u8 pad;
};

__rvs_inline __u32 svc_dest(const struct rvs_service *svc, __u32 i)
{
	return svc->dests[rvs_mask(i, RVS_MAX_SVC_DESTS - 1)];
}

__rvs_inline int dview_get(__u32 svc_slot, __u32 slot, struct dview *v)
{
	struct rvs_dest *d = dest_get(slot);
	struct rvs_dest_state *st = dest_state_get(slot);
	if (!d || !st)
		return 0;
	v->weight = d->weight;
	v->active = *(volatile __u32 *)&st->active;
	v->inactive = *(volatile __u32 *)&st->inactive;
	v->overloaded = *(volatile __u32 *)&st->overloaded != 0;
	v->exists = d->svc == svc_slot;
	v->available = v->exists && (d->flags & RVS_DF_AVAILABLE);
	return 1;
}

/* Usable by the common rule: weight > 0 and not OVERLOAD. */
__rvs_inline int eligible(const struct dview *v)
{
	return v->weight > 0 && !v->overloaded;
}

/* ip_vs_dest_conn_overhead of Linux 6.12.8: 256 * active + inactive. */
__rvs_inline __u64 overhead(const struct dview *v)
{
	return ((__u64)v->active << 8) + v->inactive;
}

/* A hash scheduler's slot: usable server, unusable (quiesced/overloaded/gone), empty. */
enum { SLOT_EMPTY = 0, SLOT_UNUSABLE = 1, SLOT_USABLE = 2 };

__rvs_inline int slot_state(__u32 svc_slot, __u16 slot)
{
	struct dview v;
	if (slot == RVS_NO_DEST)
		return SLOT_EMPTY;
	if (!dview_get(svc_slot, slot, &v))
		return SLOT_UNUSABLE;
	return v.available && eligible(&v) ? SLOT_USABLE : SLOT_UNUSABLE;
}

#endif
