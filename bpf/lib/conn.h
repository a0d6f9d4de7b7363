/* SPDX-License-Identifier: GPL-2.0-or-later */
/* conn.h — connection entries: keys and lookup, the per-server connection counters
 * (ip_vs_bind_dest / ip_vs_unbind_dest with the OVERLOAD hysteresis), traffic counters
 * (ip_vs_in_stats / ip_vs_out_stats), the state machine step (ip_vs_set_state), the
 * entry's state word (flags, touch, dead) and template keys. Releasing an entry is in
 * release.h, the NAT reply index in nat_reply.h. */
#ifndef RVS_CONN_H
#define RVS_CONN_H

#include "env.h"

#define TCP_FL_FIN 0x01
#define TCP_FL_SYN 0x02
#define TCP_FL_RST 0x04
#define TCP_FL_ACK 0x10

#define NS_PER_S 1000000000ULL

union rvs_ckey {
	struct rvs_conn_key4 k4;
	struct rvs_conn_key6 k6;
};

__rvs_inline void ckey_make(union rvs_ckey *k, __u8 family, const __u32 *caddr, __u16 cport,
			    const __u32 *vaddr, __u16 vport, __u8 proto, __u8 kind)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (family == RVS_AF_INET) {
		k->k4.caddr = caddr[0];
		k->k4.vaddr = vaddr[0];
		k->k4.cport = cport;
		k->k4.vport = vport;
		k->k4.proto = proto;
		k->k4.kind = kind;
	} else {
		addr_copy(k->k6.caddr, caddr);
		addr_copy(k->k6.vaddr, vaddr);
		k->k6.cport = cport;
		k->k6.vport = vport;
		k->k6.proto = proto;
		k->k6.kind = kind;
	}
}

/* XOR fold of the key, stored in the entry: a packet that raced with a delete and holds a
 * reused element sees a foreign check and backs off. */
__rvs_inline __u16 ckey_check(const union rvs_ckey *k, __u8 family)
{
	const __u32 *w = (const __u32 *)k;
	__u32 x = w[0] ^ w[1] ^ w[2] ^ w[3];
	if (family == RVS_AF_INET6)
		x ^= w[4] ^ w[5] ^ w[6] ^ w[7] ^ w[8] ^ w[9];
	return (__u16)(x ^ (x >> 16));
}

__rvs_inline struct rvs_conn *conn_lookup(__u8 family, union rvs_ckey *k)
{
	if (family == RVS_AF_INET)
		return rvs_map_lookup(&rvs_conns4, &k->k4);
	return rvs_map_lookup(&rvs_conns6, &k->k6);
}

__rvs_inline long conn_insert(__u8 family, union rvs_ckey *k, struct rvs_conn *v)
{
	if (family == RVS_AF_INET)
		return rvs_map_update(&rvs_conns4, &k->k4, v, BPF_NOEXIST);
	return rvs_map_update(&rvs_conns6, &k->k6, v, BPF_NOEXIST);
}

__rvs_inline long conn_delete(__u8 family, union rvs_ckey *k)
{
	if (family == RVS_AF_INET)
		return rvs_map_delete(&rvs_conns4, &k->k4);
	return rvs_map_delete(&rvs_conns6, &k->k6);
}

/* ---- per-server counters -------------------------------------------------------------- */

/* ip_vs_bind_dest: a new entry counts as inactive (or persistent); the upper threshold
 * sets OVERLOAD. */
__rvs_inline void dest_bind(__u32 slot, int template)
{
	struct rvs_dest_state *st = dest_state_get(slot);
	struct rvs_dest *d = dest_get(slot);
	if (!st || !d)
		return;
	if (template)
		__sync_fetch_and_add(&st->persist, 1);
	else
		__sync_fetch_and_add(&st->inactive, 1);
	__u32 total = *(volatile __u32 *)&st->active + *(volatile __u32 *)&st->inactive;
	if (d->u_threshold && total >= d->u_threshold)
		st->overloaded = 1;
}

/* ip_vs_unbind_dest: uncount, then clear OVERLOAD below the lower threshold, below 3/4 of
 * the upper one when there is no lower, or at once when there are no thresholds. */
__rvs_inline void dest_unbind(__u32 slot, int template, int inactive)
{
	struct rvs_dest_state *st = dest_state_get(slot);
	struct rvs_dest *d = dest_get(slot);
	if (!st || !d)
		return;
	if (template)
		__sync_fetch_and_sub(&st->persist, 1);
	else if (inactive)
		__sync_fetch_and_sub(&st->inactive, 1);
	else
		__sync_fetch_and_sub(&st->active, 1);
	__u64 total = (__u64)*(volatile __u32 *)&st->active + *(volatile __u32 *)&st->inactive;
	if (d->l_threshold) {
		if (total < d->l_threshold)
			st->overloaded = 0;
	} else if (d->u_threshold) {
		if (total * 4 < (__u64)d->u_threshold * 3)
			st->overloaded = 0;
	} else {
		st->overloaded = 0;
	}
}

/* An entry moved between inactive and active. */
__rvs_inline void dest_move(__u32 slot, int to_active)
{
	struct rvs_dest_state *st = dest_state_get(slot);
	if (!st)
		return;
	if (to_active) {
		__sync_fetch_and_add(&st->active, 1);
		__sync_fetch_and_sub(&st->inactive, 1);
	} else {
		__sync_fetch_and_sub(&st->active, 1);
		__sync_fetch_and_add(&st->inactive, 1);
	}
}

/* ---- traffic counters ------------------------------------------------------------------ */

__rvs_inline void stats_conn(__u32 slot)
{
	struct rvs_dest_stats *s = bpf_map_lookup_elem(&rvs_dest_stats, &slot);
	if (s)
		s->conns++;
}

/* ip_vs_in_stats / ip_vs_out_stats: only while the server is available. */
__rvs_inline void stats_packet_d(const struct rvs_dest *d, __u32 slot, int inbound, __u32 bytes)
{
	if (!d || !(d->flags & RVS_DF_AVAILABLE))
		return;
	struct rvs_dest_stats *s = bpf_map_lookup_elem(&rvs_dest_stats, &slot);
	if (!s)
		return;
	if (inbound) {
		s->inpkts++;
		s->inbytes += bytes;
	} else {
		s->outpkts++;
		s->outbytes += bytes;
	}
}

__rvs_inline void stats_packet(__u32 slot, int inbound, __u32 bytes)
{
	stats_packet_d(dest_get(slot), slot, inbound, bytes);
}

/* ---- state machine ------------------------------------------------------------------- */

enum { TCP_TABLE_INPUT = 0, TCP_TABLE_OUTPUT = 1, TCP_TABLE_INPUT_ONLY = 2 };

/* set_tcp_state: event by priority RST > SYN > FIN > ACK; no flag at all closes. */
__rvs_inline __u8 tcp_next_state(const struct rvs_config *cfg, __u8 cur, __u32 table, __u8 fl)
{
	__u32 ev;
	if (fl & TCP_FL_RST)
		ev = 3;
	else if (fl & TCP_FL_SYN)
		ev = 0;
	else if (fl & TCP_FL_FIN)
		ev = 1;
	else if (fl & TCP_FL_ACK)
		ev = 2;
	else
		return RVS_ST_CLOSE;
	__u32 secure = (cfg->flags & RVS_CFG_SECURE_TCP) ? 1 : 0;
	__u32 idx = ((secure * 3 + table) * 4 + ev) * RVS_TCP_NSTATES + cur;
	if (idx >= RVS_TCP_NEXT_SIZE)
		return cur;
	return cfg->tcp_next[idx];
}

__rvs_inline int state_active(const struct rvs_config *cfg, __u8 st)
{
	return st < RVS_TCP_NSTATES && (cfg->tcp_active & (1u << st));
}

__rvs_inline __u32 state_timeout(const struct rvs_config *cfg, __u8 st)
{
	if (st == RVS_ST_UDP)
		return cfg->udp_timeout;
	if (st < RVS_TCP_NSTATES)
		return cfg->tcp_timeout[st];
	return 2;
}

/* What a step did, for the work done after it was published. */
struct step_result {
	__u8 moved;        /* counters must move */
	__u8 to_active;
	__u8 established;  /* reached ESTABLISHED: assure the template */
	__u8 dead;
};

#define STEP_TRIES 4

/* The state word after one packet (ip_vs_set_state), from the word it read. */
__rvs_inline __u32 step_word(const struct rvs_config *cfg, __u32 old, int inbound, __u8 tcp_flags,
			     int is_tcp, struct step_result *r)
{
	__u8 cur = RVS_SW_STATE(old);
	__u8 fl = RVS_SW_FLAGS(old);
	__u8 next = cur;
	r->moved = 0;
	r->established = 0;
	if (is_tcp && cur < RVS_TCP_NSTATES) {
		__u32 table = TCP_TABLE_INPUT;
		if (fl & RVS_CF_NOOUTPUT) {
			if (inbound)
				table = TCP_TABLE_INPUT_ONLY;
			else
				fl &= ~RVS_CF_NOOUTPUT;
		}
		if (!inbound)
			table = TCP_TABLE_OUTPUT;
		next = tcp_next_state(cfg, cur, table, tcp_flags);
	}
	if (next != cur) {
		int active = state_active(cfg, next);
		if (!(fl & RVS_CF_INACTIVE) && !active) {
			fl |= RVS_CF_INACTIVE;
			r->moved = 1;
			r->to_active = 0;
		} else if ((fl & RVS_CF_INACTIVE) && active) {
			fl &= ~RVS_CF_INACTIVE;
			r->moved = 1;
			r->to_active = 1;
		}
		r->established = next == RVS_ST_ESTABLISHED;
	}
	return ((old & ~0xffffu) + RVS_SW_TOUCH) | ((__u32)fl << 8) | next;
}

/*
 * One packet through an entry: the timer is re-armed first, then a changed state is
 * published with compare-and-swap (retried if another packet won). A packet that changes
 * nothing but the timer — most of them — only re-arms it: the expiry checks the timer
 * again after marking an entry dead and revives it if a packet came (ctl.h). Returns 0,
 * or -1 if the entry died meanwhile (r->dead set). A function of its own: verified once,
 * not at each of its callers (`how` packs their constants: see conn_step).
 */
__rvs_sub int rvs_conn_step(const struct rvs_config *cfg, struct rvs_conn *c, struct step_result *r,
			    __u64 now, __u32 how)
{
	int inbound = how & 1, is_tcp = (how >> 1) & 1;
	__u8 tcp_flags = how >> 8;
	if (!cfg || !c || !r)
		return -1;
	for (int i = 0; i < STEP_TRIES; i++) {
		__u32 old = *(volatile __u32 *)&c->sw;
		if (RVS_SW_FLAGS(old) & RVS_CF_DEAD) {
			r->dead = 1;
			return -1;
		}
		__u32 nw = step_word(cfg, old, inbound, tcp_flags, is_tcp, r);
		__u32 tmo = state_timeout(cfg, RVS_SW_STATE(nw));
		if ((nw & 0xffff) == (old & 0xffff)) {
			/* same state and flags: the timer only */
			c->last_ns = now;
			if (c->timeout_s != tmo)
				c->timeout_s = tmo;
			return 0;
		}
		/* re-arm before publishing: an expiry that reads the old word fails its swap,
		 * one that reads the new word sees the new time */
		c->last_ns = now;
		c->timeout_s = tmo;
		if (__sync_val_compare_and_swap(&c->sw, old, nw) == old)
			return 0;
	}
	r->dead = 1; /* hopelessly contended: treat as a race */
	return -1;
}

__rvs_inline int conn_step(const struct rvs_config *cfg, struct rvs_conn *c, int inbound, __u8 tcp_flags,
			   int is_tcp, __u64 now, struct step_result *r)
{
	return rvs_conn_step(cfg, c, r, now, (inbound ? 1 : 0) | (is_tcp ? 2 : 0) | ((__u32)tcp_flags << 8));
}

/* Sets flag bits in an entry's word (templates: ASSURED); 0 if it is dead. */
__rvs_inline int conn_set_flags(struct rvs_conn *c, __u8 bits)
{
	for (int i = 0; i < STEP_TRIES; i++) {
		__u32 old = *(volatile __u32 *)&c->sw;
		if (RVS_SW_FLAGS(old) & RVS_CF_DEAD)
			return 0;
		__u32 nw = (old + RVS_SW_TOUCH) | ((__u32)bits << 8);
		if (__sync_val_compare_and_swap(&c->sw, old, nw) == old)
			return 1;
	}
	return 0;
}

/* Bumps the touch counter (a template taken by a new child must not expire now); 0 if
 * the entry is dead. */
__rvs_inline int conn_touch(struct rvs_conn *c)
{
	return conn_set_flags(c, 0);
}

__rvs_inline int conn_dead(const struct rvs_conn *c)
{
	return (RVS_SW_FLAGS(*(volatile __u32 *)&c->sw) & RVS_CF_DEAD) != 0;
}

/* ---- templates --------------------------------------------------------------------------- */

/* The address a fwmark template carries as its virtual address (mark 1 = 0.0.0.1). */
__rvs_inline void fwmark_addr(__u8 family, __u32 mark, __u32 *a)
{
	a[0] = 0;
	a[1] = 0;
	a[2] = 0;
	a[3] = 0;
	if (family == RVS_AF_INET)
		a[0] = bpf_htonl(mark);
	else
		a[3] = bpf_htonl(mark);
}

/* The template key of a child (or of a new connection): table of semantics.md §4. */
__rvs_inline void tpl_key(union rvs_ckey *tk, __u8 family, __u8 tpl, __u8 mask, __u32 mark,
			  const __u32 *caddr, const __u32 *vaddr, __u16 vport, __u8 proto)
{
	__u32 snet[4], va[4];
	addr_copy(snet, caddr);
	addr_mask(family, snet, mask);
	if (tpl == RVS_TPL_FWMARK) {
		fwmark_addr(family, mark, va);
		ckey_make(tk, family, snet, 0, va, 0, 0, RVS_KEY_TEMPLATE);
	} else {
		ckey_make(tk, family, snet, 0, vaddr, tpl == RVS_TPL_PORT ? vport : 0, proto,
			  RVS_KEY_TEMPLATE);
	}
}

#endif
