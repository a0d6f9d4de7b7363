/* SPDX-License-Identifier: GPL-2.0-or-later */
/* reasons.h — outcome codes: count them per CPU and turn them into XDP verdicts.
 * The verdict of every code is fixed here and documented in docs/xdp.md. */
#ifndef RVS_REASONS_H
#define RVS_REASONS_H

#include "maps.h"

/* The verdict a code stands for, when the handler did not already pick one. */
__rvs_inline int reason_verdict(int code)
{
	switch (code) {
	case RVS_R_NOT_IP:
	case RVS_R_NOT_VIP:
	case RVS_R_UNKNOWN_PROTO:
	case RVS_R_NO_SERVICE:
	case RVS_R_NO_CONN:
	case RVS_R_LOCAL:
	case RVS_R_ICMP_NO_CONN:
	case RVS_R_IPV6_EXT:
	case RVS_R_NO_CONFIG:
	case RVS_R_VLAN:
	case RVS_R_OTHER_HOST:
		return XDP_PASS;
	default:
		return XDP_DROP;
	}
}

__rvs_inline void reason_count(int code, __u32 bytes)
{
	__u32 idx = (__u32)(-code - RVS_REASON_BASE);
	if (idx >= RVS_REASON_COUNT)
		return;
	struct rvs_reason_count *c = bpf_map_lookup_elem(&rvs_reasons, &idx);
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* An ICMP error the director generated itself. */
__rvs_inline void reason_count_sent(void)
{
	reason_count(RVS_R_ICMP_SENT, 0);
}

#endif
