/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sync.h — the master's side of connection sync in the packet path: which entries to send
 * and when (ip_vs_sync_conn and ip_vs_sync_conn_needed of ip_vs_sync.c; the same rule as
 * rvs_core::sync::sync_needed, held together by the sync conformance test), and the ring
 * buffer rvsd's sync master reads them from. Nothing here runs unless a master runs
 * (RVS_CFG_SYNC_MASTER): the packet path then counts inbound packets per entry and, on the
 * packets that may need a sync, calls rvs_sync_offer from the entry point. */
#ifndef RVS_SYNC_H
#define RVS_SYNC_H

#include "conn.h"

#define SYNC_TCP_STATES                                                                  \
	((1u << RVS_ST_ESTABLISHED) | (1u << RVS_ST_FIN_WAIT) | (1u << RVS_ST_CLOSE) |      \
	 (1u << RVS_ST_CLOSE_WAIT) | (1u << RVS_ST_TIME_WAIT))

/* A timeout in ms that fits 32 bits (the clock of sync_end wraps every 49 days; every
 * comparison below is wrap-safe). */
#define SYNC_MAX_TIMEOUT_MS 2000000000u

__rvs_inline int sync_master_on(const struct rvs_config *cfg)
{
	return (cfg->flags & RVS_CFG_SYNC_MASTER) != 0;
}

/* The kernel's state number of an entry: TCP as is, UDP 0 (NORMAL), templates NONE (0) or
 * ASSURED (1). */
__rvs_inline __u8 sync_kstate(__u32 sw)
{
	__u8 st = RVS_SW_STATE(sw);
	__u8 fl = RVS_SW_FLAGS(sw);
	if (fl & RVS_CF_TEMPLATE)
		return (fl & RVS_CF_ASSURED) ? 1 : 0;
	if (st == RVS_ST_UDP)
		return 0;
	return st;
}

/* Whether the pkts-th packet of an entry whose state did not change may need a sync:
 * the part of the rule a packet on the fast path can settle without a call. */
__rvs_inline int sync_due(const struct rvs_config *cfg, __u32 pkts)
{
	if (cfg->sync_refresh_ms)
		return 1;
	if (cfg->sync_period)
		return pkts % cfg->sync_period == cfg->sync_threshold;
	return pkts == cfg->sync_threshold;
}

/* ip_vs_sync_conn_needed, for an entry on its pkts-th inbound packet (templates: offer). */
__rvs_inline int sync_needed(const struct rvs_config *cfg, struct rvs_conn *c, __u32 pkts, __u8 proto,
			     __u64 now_ns)
{
	__u32 sw = *(volatile __u32 *)&c->sw;
	__u8 fl = RVS_SW_FLAGS(sw);
	int template = (fl & RVS_CF_TEMPLATE) != 0;
	__u8 ks = sync_kstate(sw);
	__u32 now = (__u32)(now_ns / 1000000);
	__u32 tmo = c->timeout_s >= SYNC_MAX_TIMEOUT_MS / 1000 ? SYNC_MAX_TIMEOUT_MS : c->timeout_s * 1000;
	__u32 orig = *(volatile __u32 *)&c->sync_end;
	__u32 n = (now + tmo) & ~3u;
	int force = 0;

	if (fl & RVS_CF_DEAD)
		return 0;
	if (!template) {
		if (cfg->sync_persist_mode && c->tpl != RVS_TPL_NONE)
			return 0;
		if (proto == IPPROTO_TCP) {
			if (ks >= 32 || !((1u << ks) & SYNC_TCP_STATES))
				return 0;
			force = ks != c->old_state;
			if (force && ks != RVS_ST_ESTABLISHED)
				goto set;
		}
	}
	__u32 refresh = cfg->sync_refresh_ms;
	if (refresh) {
		__s32 diff = (__s32)(n - orig);
		__u32 ad = diff < 0 ? (__u32)(-diff) : (__u32)diff;
		__u32 min_diff = tmo / 2 > 10000 ? tmo / 2 : 10000;
		if (ad < (refresh < min_diff ? refresh : min_diff)) {
			__u32 retries = orig & 3;
			if (retries >= cfg->sync_retries)
				return 0;
			if ((__s32)(now - (orig - tmo + (refresh >> 3))) < 0)
				return 0;
			n |= retries + 1;
		}
	}
	if (cfg->sync_period) {
		if (!template && pkts % cfg->sync_period != cfg->sync_threshold)
			return 0;
	} else if (!refresh && pkts != cfg->sync_threshold) {
		return 0;
	}
set:
	c->old_state = ks;
	/* another CPU that announced the same expiry meanwhile sent it already */
	return __sync_val_compare_and_swap(&c->sync_end, orig, n) == orig || force;
}

/* Puts an entry in the ring for rvsd's master. */
__rvs_inline void sync_emit(const struct rvs_conn *c, const union rvs_ckey *k, __u8 family)
{
	__u32 zero = 0;
	struct rvs_sync_count *cnt = bpf_map_lookup_elem(&rvs_sync_count, &zero);
	struct rvs_sync_event *ev = bpf_ringbuf_reserve(&rvs_sync_ring, sizeof(*ev), 0);
	if (!ev) {
		if (cnt)
			cnt->lost++;
		return;
	}
	__builtin_memcpy(&ev->key, k, sizeof(ev->key));
	__builtin_memcpy(&ev->conn, c, sizeof(ev->conn));
	ev->family = family;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	/* rvsd's reader looks every 20 ms (the kernel's master waits as long); a wakeup per
	 * record would cost more than the record. It is woken when the ring fills up. */
	__u64 queued = bpf_ringbuf_query(&rvs_sync_ring, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(ev, queued > RVS_SYNC_RING_BYTES / 2 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	if (cnt)
		cnt->events++;
}

/* The offer of an entry on its pkts-th packet, then of its template, whose own count goes
 * up by one with every offer (ip_vs_sync_conn's "control" loop). The packet path offers
 * only on the packets that may sync the entry (sync_due), on new entries and on state
 * changes; the kernel also offers the template on every other packet of its children,
 * which would cost a lookup and a ring record per packet here (docs/sync.md). */
__rvs_inline void sync_offer_entry(const struct rvs_config *cfg, struct rvs_conn *c,
				   const union rvs_ckey *k, __u8 family, __u32 pkts, __u8 proto,
				   const __u32 *caddr, const __u32 *vaddr, __u16 vport, __u64 now)
{
	if (sync_needed(cfg, c, pkts, proto, now))
		sync_emit(c, k, family);
	if (c->tpl == RVS_TPL_NONE)
		return;
	union rvs_ckey tk;
	tpl_key(&tk, family, c->tpl, c->tpl_mask, c->aux, caddr, vaddr, vport, proto);
	struct rvs_conn *t = conn_lookup(family, &tk);
	if (!t || t->gen != c->gen)
		return;
	__u32 tp = __sync_add_and_fetch(&t->in_pkts, 1);
	if (sync_needed(cfg, t, tp, proto, now))
		sync_emit(t, &tk, family);
}

#endif
