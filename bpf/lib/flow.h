/* SPDX-License-Identifier: GPL-2.0-or-later */
/* flow.h — the IPVS packet path up to the forwarding decision (ip_vs_in_hook,
 * ip_vs_out_hook): the entry of a known flow, NAT replies, and new flows with service
 * lookup, persistence templates and scheduling (ip_vs_schedule, ip_vs_sched_persist). */
#ifndef RVS_FLOW_H
#define RVS_FLOW_H

#include "nat_reply.h"
#include "parse.h"
#include "release.h"
#include "sched.h"
#include "sync.h"

/* What kind of decision a struct rvs_flow holds. */
enum { FLOW_NONE = 0, FLOW_IN, FLOW_REPLY, FLOW_ICMP_IN, FLOW_ICMP_NAT_IN, FLOW_ICMP_NAT_OUT };

/* Where a packet goes: filled by the flow functions, carried out by the forwarding ones.
 * For a new flow it also carries the service and the persistence state between the three
 * steps (begin, schedule, commit), which run one after the other from the entry point so
 * that no call chain gets deep (the stacks of nested calls add up to 512 bytes at most). */
struct rvs_flow {
	__u16 dest;     /* dest slot, RVS_NO_DEST while undecided */
	__u16 dport;    /* real port, network order */
	__u8 kind;
	__u8 created;
	__u8 tpl;       /* new flow: template kind, RVS_TPL_NONE when not persistent */
	__u8 tpl_new;   /* new flow: the template is to be created */
	__u16 gen;      /* new flow: the template's generation */
	__u8 sync;      /* sync master: this packet may need a sync (rvs_sync_offer) */
	__u8 pad;
	union {
		struct {
			__u32 vaddr[4]; /* NAT replies: the virtual address and port to put back */
			__u16 vport;
		};
		struct rvs_svc_key svc; /* new flow: the service */
	};
};

__rvs_inline void pkt_in_key(const struct rvs_pkt *p, union rvs_ckey *k)
{
	ckey_make(k, p->family, p->saddr, p->sport, p->daddr, p->dport, p->proto, RVS_KEY_CONN);
}

/* Counter moves decided by a published step, and the template it may assure. */
__rvs_inline void step_apply(__u8 family, const union rvs_ckey *k, const struct rvs_conn *c,
			     const struct step_result *r)
{
	if (r->moved)
		dest_move(c->dest, r->to_active);
	if (r->established && c->tpl != RVS_TPL_NONE) {
		/* the controlling template becomes ASSURED */
		struct rvs_conn snap = { .tpl = c->tpl, .tpl_mask = c->tpl_mask, .aux = c->aux };
		union rvs_ckey tk;
		__u32 ca[4] = {}, va[4] = {};
		__u16 vport;
		__u8 proto;
		if (family == RVS_AF_INET) {
			ca[0] = k->k4.caddr;
			va[0] = k->k4.vaddr;
			vport = k->k4.vport;
			proto = k->k4.proto;
		} else {
			addr_copy(ca, k->k6.caddr);
			addr_copy(va, k->k6.vaddr);
			vport = k->k6.vport;
			proto = k->k6.proto;
		}
		tpl_key(&tk, family, snap.tpl, snap.tpl_mask, snap.aux, ca, va, vport, proto);
		struct rvs_conn *t = conn_lookup(family, &tk);
		if (t && t->gen == c->gen)
			conn_set_flags(t, RVS_CF_ASSURED);
	}
}

/* A SYN that hits an old entry re-schedules instead of reusing it (conn_reuse_mode;
 * expire_nodest_conn with a quiesced server). */
__rvs_inline int should_reschedule(const struct rvs_config *cfg, const struct rvs_pkt *p,
				   const struct rvs_conn *c, __u32 sw, const struct rvs_dest *d)
{
	__u8 state = RVS_SW_STATE(sw);
	int is_new = p->proto == IPPROTO_TCP && (p->tcp_flags & TCP_FL_SYN) &&
		     !(p->tcp_flags & TCP_FL_RST);
	if (!is_new || cfg->conn_reuse_mode == 0)
		return 0;
	if ((cfg->flags & RVS_CFG_EXPIRE_NODEST_CONN) && d->weight == 0)
		return 1;
	if (c->tpl != RVS_TPL_NONE)
		return 0;
	if (state == RVS_ST_TIME_WAIT || state == RVS_ST_CLOSE)
		return 1;
	if (state == RVS_ST_FIN_WAIT)
		return (cfg->conn_reuse_mode & 2) && (RVS_SW_FLAGS(sw) & RVS_CF_NOOUTPUT);
	return 0;
}

enum { ENTRY_USE = 0, ENTRY_RACE, ENTRY_RESCHEDULE, ENTRY_NODEST };

/*
 * A packet of a known inbound entry. Returns RVS_CONTINUE with f filled, RVS_CONTINUE
 * with f->dest == RVS_NO_DEST when the entry was expired and the packet must be treated
 * as new, or an outcome code.
 */
__rvs_sub int rvs_conn_in(struct rvs_pkt *p, struct rvs_flow *f)
{
	union rvs_ckey k;
	if (!p || !f)
		return RVS_R_NO_CONFIG;
	f->dest = RVS_NO_DEST;
	pkt_in_key(p, &k);
	struct rvs_conn *c = conn_lookup(p->family, &k);
	if (!c)
		return RVS_CONTINUE;
	struct rvs_config *cfg = config_get();
	if (!cfg)
		return RVS_R_NO_CONFIG;
	__u16 check = ckey_check(&k, p->family);
	__u32 slot = c->dest;
	struct rvs_dest *d = dest_get(slot);
	if (!d)
		return RVS_R_CONN_RACE;
	struct step_result r = {};
	__u32 sw = *(volatile __u32 *)&c->sw;
	int what = ENTRY_USE;
	if ((RVS_SW_FLAGS(sw) & RVS_CF_DEAD) || c->check != check)
		what = ENTRY_RACE;
	else if (should_reschedule(cfg, p, c, sw, d))
		what = ENTRY_RESCHEDULE;
	else if (!(d->flags & RVS_DF_AVAILABLE))
		what = ENTRY_NODEST;
	else if (conn_step(cfg, c, 1, p->tcp_flags, p->proto == IPPROTO_TCP, p->now, &r))
		what = ENTRY_RACE;

	if (what == ENTRY_RACE)
		return RVS_R_CONN_RACE;
	if (what == ENTRY_NODEST && !(cfg->flags & RVS_CFG_EXPIRE_NODEST_CONN))
		return RVS_R_DEST_UNAVAILABLE;
	if (what != ENTRY_USE) {
		struct rvs_conn snap = {};
		if (conn_kill(c, 0, &snap))
			conn_release(p->family, &k, &snap, 1);
		return RVS_CONTINUE; /* scheduled again as a new flow, if it opens one */
	}
	__u16 dport = c->dport;
	step_apply(p->family, &k, c, &r);
	stats_packet_d(d, slot, 1, p->l3_len);
	if (sync_master_on(cfg)) {
		c->in_pkts++;
		f->sync = 1; /* a state may have changed: always offered */
	}
	f->dest = slot;
	f->dport = dport;
	return RVS_CONTINUE;
}

/* What the established-flow fast path found besides a decision. */
#define FAST_MISS 65 /* no inbound entry: a NAT reply or a new flow, maybe */
#define FAST_SLOW 66 /* an entry that needs rvs_conn_in: state change, SYN, race, no dest */

/*
 * The packet of an established inbound flow, inlined into the entry point: an entry that
 * is alive, whose server is available, and whose state this packet does not change (every
 * packet but a handful per connection) only re-arms the timer and counts the packet —
 * what rvs_conn_in does for it, without its calls. Anything else is decided before any
 * side effect and left to rvs_conn_in (FAST_SLOW), which looks the entry up again.
 */
__rvs_inline int conn_in_fast(struct rvs_pkt *p, struct rvs_flow *f)
{
	union rvs_ckey k;
	pkt_in_key(p, &k);
	struct rvs_conn *c = conn_lookup(p->family, &k);
	if (!c)
		return FAST_MISS;
	struct rvs_config *cfg = config_get();
	if (!cfg)
		return FAST_SLOW;
	__u32 slot = c->dest;
	struct rvs_dest *d = dest_get(slot);
	if (!d)
		return FAST_SLOW;
	__u32 sw = *(volatile __u32 *)&c->sw;
	int is_tcp = p->proto == IPPROTO_TCP;
	if ((RVS_SW_FLAGS(sw) & RVS_CF_DEAD) || c->check != ckey_check(&k, p->family))
		return FAST_SLOW;
	/* a SYN may re-schedule (should_reschedule) */
	if (is_tcp && (p->tcp_flags & (TCP_FL_SYN | TCP_FL_RST)) == TCP_FL_SYN)
		return FAST_SLOW;
	if (!(d->flags & RVS_DF_AVAILABLE))
		return FAST_SLOW;
	struct step_result r;
	__u32 nw = step_word(cfg, sw, 1, p->tcp_flags, is_tcp, &r);
	if ((nw & 0xffff) != (sw & 0xffff))
		return FAST_SLOW;
	/* the timer only (conn_step); a store that changes nothing is left out */
	__u64 now = p->now;
	if (c->last_ns != now)
		c->last_ns = now;
	/* state_timeout, on a register the verifier can bound (clang would index with a
	 * copy whose bound it does not know) */
	__u32 st = RVS_SW_STATE(sw);
	asm volatile("" : "+r"(st));
	__u32 tmo = 2;
	if (st == RVS_ST_UDP)
		tmo = cfg->udp_timeout;
	else if (st < RVS_TCP_NSTATES)
		tmo = cfg->tcp_timeout[st];
	if (c->timeout_s != tmo)
		c->timeout_s = tmo;
	f->dport = c->dport;
	f->dest = slot;
	stats_packet_d(d, slot, 1, p->l3_len);
	if (unlikely(sync_master_on(cfg))) {
		/* the count of ip_vs_in_hook; a call only on the packets that may sync */
		__u32 pkts = ++c->in_pkts;
		f->sync = sync_due(cfg, pkts);
	}
	return RVS_CONTINUE;
}

/* Whether the NAT reply index has the packet (rvs_conn_out then finds it again): most
 * packets without an inbound entry are no NAT reply, and this spares them a call. */
__rvs_inline int out_known(const struct rvs_pkt *p)
{
	union rvs_okey ok;
	okey_make(&ok, p->family, p->saddr, p->sport, p->daddr, p->dport, p->proto);
	if (p->family == RVS_AF_INET)
		return rvs_map_lookup(&rvs_out4, &ok.k4) != 0;
	return rvs_map_lookup(&rvs_out6, &ok.k6) != 0;
}

/* A reply from a NAT real server (ip_vs_out_hook): RVS_CONTINUE if it is none. */
__rvs_sub int rvs_conn_out(struct rvs_pkt *p, struct rvs_flow *f)
{
	union rvs_okey ok;
	union rvs_ckey k;
	if (!p || !f)
		return RVS_R_NO_CONFIG;
	f->dest = RVS_NO_DEST;
	okey_make(&ok, p->family, p->saddr, p->sport, p->daddr, p->dport, p->proto);
	if (!out_lookup(p->family, &ok, f->vaddr, &f->vport))
		return RVS_CONTINUE;
	ckey_make(&k, p->family, p->daddr, p->dport, f->vaddr, f->vport, p->proto, RVS_KEY_CONN);
	struct rvs_conn *c = conn_lookup(p->family, &k);
	struct rvs_config *cfg = config_get();
	if (!c || !cfg)
		return RVS_CONTINUE;
	__u16 check = ckey_check(&k, p->family);
	struct step_result r = {};
	if (c->check != check ||
	    conn_step(cfg, c, 0, p->tcp_flags, p->proto == IPPROTO_TCP, p->now, &r))
		return RVS_R_CONN_RACE;
	step_apply(p->family, &k, c, &r);
	stats_packet(c->dest, 0, p->l3_len);
	f->dest = c->dest;
	return RVS_CONTINUE;
}

/* ---- new flows ------------------------------------------------------------------------- */

/* ip_vs_service_find: fwmark (only with a mark, i.e. only in the test build), the exact
 * (protocol, VIP, port), then a port-0 service of the VIP. k ends up as the key found. */
__rvs_inline struct rvs_service *svc_find(const struct rvs_pkt *p, struct rvs_svc_key *k)
{
	struct rvs_service *s;
	__u32 mark = rvs_pkt_mark();
	__builtin_memset(k, 0, sizeof(*k));
	if (mark) {
		k->addr[0] = mark;
		k->family = p->family;
		s = bpf_map_lookup_elem(&rvs_services, k);
		if (s)
			return s;
	}
	addr_copy(k->addr, p->daddr);
	k->port = p->dport;
	k->proto = p->proto;
	k->family = p->family;
	s = bpf_map_lookup_elem(&rvs_services, k);
	if (s)
		return s;
	k->port = 0;
	return bpf_map_lookup_elem(&rvs_services, k);
}

__rvs_inline int opens_conn(const struct rvs_config *cfg, const struct rvs_pkt *p)
{
	if (p->proto == IPPROTO_TCP)
		return !(p->tcp_flags & TCP_FL_RST) &&
		       ((p->tcp_flags & TCP_FL_SYN) || (cfg->flags & RVS_CFG_SLOPPY_TCP));
	return p->proto == IPPROTO_UDP;
}

__rvs_inline __u16 gen_next(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&rvs_gen, &zero);
	if (!g)
		return 1;
	*g += 1;
	/* CPU number in the low bits keeps generations of different CPUs apart */
	return (__u16)((*g << 4) | (bpf_get_smp_processor_id() & 0xf)) | 1;
}

/* The template key case of a new connection (semantics.md §4). */
__rvs_inline __u8 tpl_kind(const struct rvs_service *svc, const struct rvs_pkt *p)
{
	if (svc->flags & RVS_SF_FWMARK)
		return RVS_TPL_FWMARK;
	if (p->dport == svc->port && svc->port != bpf_htons(21))
		return RVS_TPL_PORT;
	return RVS_TPL_PORT0;
}

__rvs_inline int template_valid(const struct rvs_config *cfg, __u32 slot)
{
	struct rvs_dest *d = dest_get(slot);
	if (!d || !(d->flags & RVS_DF_AVAILABLE))
		return 0;
	return !((cfg->flags & RVS_CFG_EXPIRE_QUIESCENT_TEMPLATE) && d->weight == 0);
}

/* An existing, valid template: take a child reference (so it cannot expire under us) and
 * re-arm it. Returns 1 if it was used. */
__rvs_inline int template_take(const struct rvs_config *cfg, union rvs_ckey *tk, __u8 family,
			       struct rvs_conn *t, struct rvs_flow *f, __u64 now)
{
	__u32 slot = t->dest;
	int state; /* 0 = dead, 1 = used, 2 = invalid */
	if (conn_dead(t)) {
		state = 0;
	} else if (!template_valid(cfg, slot)) {
		state = 2;
	} else {
		/* a child reference first, then the touch: an expiry racing with us either
		 * sees the child or fails its swap */
		__sync_fetch_and_add(&t->aux, 1);
		t->last_ns = now;
		state = conn_touch(t) ? 1 : 0;
		if (!state)
			__sync_fetch_and_sub(&t->aux, 1);
		f->gen = t->gen;
	}
	if (state == 2) {
		/* the kernel unhashes it and lets it die with its children; here it goes now,
		 * and its children find a foreign generation when they end */
		template_drop(family, tk, t);
		return 0;
	}
	if (state == 1)
		f->dest = slot;
	return state == 1;
}

/* Gives back the child reference a new flow holds on its template, when no child came of
 * it. */
__rvs_inline void persist_abort(const struct rvs_service *svc, const struct rvs_pkt *p,
				const struct rvs_flow *f)
{
	struct rvs_conn snap = {
		.tpl = f->tpl,
		.tpl_mask = svc->netmask,
		.aux = svc->fwmark,
		.gen = f->gen,
	};
	union rvs_ckey k;
	pkt_in_key(p, &k);
	template_unlink(p->family, &k, &snap, 0);
}

/*
 * Step 1 of a new flow: the service, and for a persistent one its template (ip_vs_service_find,
 * the first half of ip_vs_sched_persist). RVS_CONTINUE with f->dest set when a template
 * decided, RVS_NO_DEST when the scheduler must.
 */
__rvs_sub int rvs_flow_begin(struct rvs_pkt *p, struct rvs_flow *f)
{
	if (!p || !f)
		return RVS_R_NO_CONFIG;
	f->dest = RVS_NO_DEST;
	f->tpl = RVS_TPL_NONE;
	f->tpl_new = 0;
	struct rvs_config *cfg = config_get();
	if (!cfg)
		return RVS_R_NO_CONFIG;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return RVS_R_UNKNOWN_PROTO;
	struct rvs_service *svc = svc_find(p, &f->svc);
	if (!svc)
		return RVS_R_NO_SERVICE;
	if (!opens_conn(cfg, p))
		return RVS_R_NO_CONN;
	if (!(svc->flags & RVS_SF_PERSISTENT))
		return RVS_CONTINUE;
	if (svc->flags & RVS_SF_PE)
		return RVS_R_NO_PE_DATA;
	union rvs_ckey tk;
	__u8 kind = tpl_kind(svc, p);
	tpl_key(&tk, p->family, kind, svc->netmask, svc->fwmark, p->saddr, p->daddr, p->dport,
		p->proto);
	f->tpl = kind;
	struct rvs_conn *t = conn_lookup(p->family, &tk);
	if (t && template_take(cfg, &tk, p->family, t, f, p->now))
		return RVS_CONTINUE;
	f->tpl_new = 1;
	return RVS_CONTINUE;
}

/* Step 2: the scheduler (one of the 14), for a flow that no template decided. */
__rvs_sub __u32 rvs_flow_schedule(const struct rvs_pkt *p, struct rvs_flow *f)
{
	if (!p || !f)
		return RVS_NO_DEST;
	struct rvs_service *svc = bpf_map_lookup_elem(&rvs_services, &f->svc);
	if (!svc)
		return RVS_NO_DEST;
	switch (svc->sched) {
	case RVS_SCHED_RR:
		return rvs_sched_rr(svc, p);
	case RVS_SCHED_WRR:
		return rvs_sched_wrr(svc, p);
	case RVS_SCHED_LC:
	case RVS_SCHED_WLC:
	case RVS_SCHED_SED:
	case RVS_SCHED_NQ:
	case RVS_SCHED_FO:
	case RVS_SCHED_OVF:
		return rvs_sched_least(svc, p);
	case RVS_SCHED_TWOS:
		return rvs_sched_twos(svc, p);
	case RVS_SCHED_DH:
		return rvs_sched_dh(svc, p);
	case RVS_SCHED_SH:
		return rvs_sched_sh(svc, p);
	case RVS_SCHED_MH:
		return rvs_sched_mh(svc, p);
	case RVS_SCHED_LBLC:
		return rvs_sched_lblc(svc, p);
	case RVS_SCHED_LBLCR:
		return rvs_sched_lblcr(svc, p);
	default:
		return RVS_NO_DEST; /* `none`: only existing entries are served */
	}
}

/* A new template pointing at the server the scheduler chose; it already counts the child
 * about to be created. */
__rvs_inline int template_create(const struct rvs_service *svc, const struct rvs_pkt *p,
				 struct rvs_flow *f, __u64 now)
{
	union rvs_ckey tk;
	struct rvs_dest *d = dest_get(f->dest);
	if (!d)
		return RVS_R_NO_DEST;
	tpl_key(&tk, p->family, f->tpl, svc->netmask, svc->fwmark, p->saddr, p->daddr, p->dport,
		p->proto);
	struct rvs_conn nt = {
		.sw = RVS_ST_TEMPLATE | ((__u32)RVS_CF_TEMPLATE << 8),
		.dport = f->tpl == RVS_TPL_PORT ? d->port : 0,
		.dest = f->dest,
		.timeout_s = svc->timeout,
		.last_ns = now,
		.aux = 1,
		.gen = gen_next(),
		.check = ckey_check(&tk, p->family),
	};
	long err = conn_insert(p->family, &tk, &nt);
	if (err == -17 /* EEXIST: another CPU made it */)
		return RVS_R_CONN_RACE;
	if (err)
		return RVS_R_CONN_TABLE_FULL;
	dest_bind(f->dest, 1);
	f->gen = nt.gen;
	f->tpl_new = 0;
	return RVS_CONTINUE;
}

/* The port the new connection is sent to. */
__rvs_inline __u16 new_dport(const struct rvs_service *svc, const struct rvs_pkt *p,
			     const struct rvs_dest *d)
{
	if (d->port == 0)
		return p->dport;
	if ((svc->flags & RVS_SF_PERSISTENT) && p->dport != svc->port)
		return p->dport;
	return d->port;
}

/* Creates, counts and steps the entry of a new connection (ip_vs_conn_new, then the
 * first ip_vs_set_state). */
__rvs_inline int conn_create(const struct rvs_config *cfg, const struct rvs_service *svc,
			     struct rvs_pkt *p, struct rvs_flow *f, __u64 now)
{
	__u32 slot = f->dest;
	struct rvs_dest *d = dest_get(slot);
	if (!d)
		return RVS_R_NO_DEST;
	int nat = d->fwd == RVS_FWD_MASQ;
	int one_packet = (svc->flags & RVS_SF_OPS) && p->proto == IPPROTO_UDP;
	__u16 dport = new_dport(svc, p, d);
	union rvs_ckey k;
	pkt_in_key(p, &k);
	f->dport = dport;
	if (one_packet) {
		/* one-packet scheduling: bound and released around this packet only */
		dest_bind(slot, 0);
		stats_conn(slot);
		stats_packet(slot, 1, p->l3_len);
		dest_unbind(slot, 0, 1);
		if (f->tpl != RVS_TPL_NONE)
			persist_abort(svc, p, f);
		return RVS_CONTINUE;
	}
	__u8 st0 = p->proto == IPPROTO_TCP ? RVS_ST_NONE : RVS_ST_UDP;
	__u8 fl0 = RVS_CF_INACTIVE | (nat ? RVS_CF_NAT : RVS_CF_NOOUTPUT);
	struct rvs_conn c = {
		.sw = st0 | ((__u32)fl0 << 8),
		.dport = dport,
		.dest = slot,
		.tpl = f->tpl,
		.tpl_mask = svc->netmask,
		.timeout_s = RVS_INITIAL_TIMEOUT_S,
		.last_ns = now,
		.aux = (svc->flags & RVS_SF_FWMARK) ? svc->fwmark : 0,
		.gen = f->gen,
		.check = ckey_check(&k, p->family),
	};
	long err = conn_insert(p->family, &k, &c);
	if (err) {
		if (f->tpl != RVS_TPL_NONE)
			persist_abort(svc, p, f);
		return err == -17 ? RVS_R_CONN_RACE : RVS_R_CONN_TABLE_FULL;
	}
	if (nat) {
		union rvs_okey ok;
		okey_make(&ok, p->family, d->addr, dport, p->saddr, p->sport, p->proto);
		out_insert(p->family, &ok, p->daddr, p->dport);
	}
	dest_bind(slot, 0);
	stats_conn(slot);
	f->created = 1;

	/* the first packet steps the state machine like any other */
	struct rvs_conn *e = conn_lookup(p->family, &k);
	if (!e)
		return RVS_R_CONN_RACE;
	struct step_result r = {};
	if (conn_step(cfg, e, 1, p->tcp_flags, p->proto == IPPROTO_TCP, now, &r))
		return RVS_R_CONN_RACE;
	step_apply(p->family, &k, e, &r);
	stats_packet(slot, 1, p->l3_len);
	if (sync_master_on(cfg)) {
		e->in_pkts++;
		f->sync = 1;
	}
	return RVS_CONTINUE;
}

/* ip_vs_sync_conn for the inbound packet p of the entry the decision f found or made (its
 * packet count already includes p), then for its template. Called from the entry point
 * after the decision, so its stack does not add to theirs. */
__rvs_sub int rvs_sync_offer(struct rvs_pkt *p, struct rvs_flow *f)
{
	if (!p || !f)
		return 0;
	struct rvs_config *cfg = config_get();
	if (!cfg || !sync_master_on(cfg))
		return 0;
	union rvs_ckey k;
	pkt_in_key(p, &k);
	struct rvs_conn *c = conn_lookup(p->family, &k);
	if (!c || c->check != ckey_check(&k, p->family))
		return 0;
	sync_offer_entry(cfg, c, &k, p->family, c->in_pkts, p->proto, p->saddr, p->daddr,
			 p->dport, p->now);
	return 0;
}

/* Step 3: the template (if new) and the connection entry. */
__rvs_sub int rvs_flow_commit(struct rvs_pkt *p, struct rvs_flow *f)
{
	if (!p || !f)
		return RVS_R_NO_CONFIG;
	struct rvs_config *cfg = config_get();
	struct rvs_service *svc = bpf_map_lookup_elem(&rvs_services, &f->svc);
	if (!cfg || !svc)
		return RVS_R_NO_SERVICE;
	__u64 now = p->now;
	if (f->tpl != RVS_TPL_NONE && f->tpl_new) {
		int rc = template_create(svc, p, f, now);
		if (rc != RVS_CONTINUE)
			return rc;
	}
	return conn_create(cfg, svc, p, f, now);
}

#endif
