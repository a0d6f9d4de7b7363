/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sched.h — the 14 schedulers behind one dispatcher. */
#ifndef RVS_SCHED_H
#define RVS_SCHED_H

#include "sched_least.h"
#include "sched_rr.h"
#include "sched_hash.h"
#include "sched_lblc.h"

/* Each scheduler is a global function: verified once, on its own. */
#define RVS_SCHED_FN(name, expr)                                                           \
	__rvs_sub __u32 rvs_sched_##name(const struct rvs_service *svc,                    \
					 const struct rvs_pkt *in)                        \
	{                                                                                  \
		if (!svc || !in)                                                           \
			return RVS_NO_DEST;                                                \
		return expr;                                                               \
	}

RVS_SCHED_FN(rr, sched_rr(svc))
RVS_SCHED_FN(wrr, sched_wrr(svc))
RVS_SCHED_FN(least, sched_least(svc, svc->sched))
RVS_SCHED_FN(twos, sched_twos(svc))
RVS_SCHED_FN(dh, sched_dh(svc, in))
RVS_SCHED_FN(sh, sched_sh(svc, in))
RVS_SCHED_FN(mh, sched_mh(svc, in))
RVS_SCHED_FN(lblc, sched_lblc(svc, in))
RVS_SCHED_FN(lblcr, sched_lblcr(svc, in))

#endif
