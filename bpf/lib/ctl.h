/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ctl.h — control requests rvsd runs through BPF_PROG_TEST_RUN, for the changes that must
 * be atomic with the packet path. RVS_CTL_EXPIRE is the timer of ip_vs_conn_expire: rvsd's
 * sweeper finds entries that look due, and here an entry is either still alive (a packet
 * came meanwhile: its state word changed), re-armed (a template with live children), or
 * marked dead by compare-and-swap on the word the decision was taken on, uncounted and
 * deleted. RVS_CTL_INSTALL is the backup's ip_vs_proc_conn: an entry received from a sync
 * master is created or updated here, counted on its server, NAT entries with their reply
 * index. */
#ifndef RVS_CTL_H
#define RVS_CTL_H

#include "flow.h" /* release.h, sync.h, gen_next */

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
		/* a template kept alive by its children is synced (ip_vs_conn_expire) */
		struct rvs_config *cfg = config_get();
		if (cfg && sync_master_on(cfg)) {
			__u8 proto = family == RVS_AF_INET ? k.k4.proto : k.k6.proto;
			if (sync_needed(cfg, c, cfg->sync_threshold, proto, now))
				sync_emit(c, &k, family);
		}
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

/* The flags an installed entry starts with: a template (assured or not), or a connection
 * counted active or inactive, NAT with its reply index, DR/TUN without replies. */
__rvs_inline __u8 install_flags(const struct rvs_ctl_install *r, const struct rvs_dest *d)
{
	if (r->flags & RVS_CF_TEMPLATE)
		return RVS_CF_TEMPLATE | (r->flags & RVS_CF_ASSURED);
	return (r->flags & RVS_CF_INACTIVE) | (d->fwd == RVS_FWD_MASQ ? RVS_CF_NAT : RVS_CF_NOOUTPUT);
}

/* An existing entry of the same server takes the received INACTIVE (templates: ASSURED)
 * bit and state, with the server's counters moved; the timer is re-armed with the received
 * timeout. */
__rvs_inline __u8 install_update(const struct rvs_ctl_install *r, struct rvs_conn *c, __u8 fl, __u64 now)
{
	int template = (fl & RVS_CF_TEMPLATE) != 0;
	__u8 keep = template ? (__u8)~RVS_CF_ASSURED : (__u8)~RVS_CF_INACTIVE;
	for (int i = 0; i < STEP_TRIES; i++) {
		__u32 old = *(volatile __u32 *)&c->sw;
		__u8 ofl = RVS_SW_FLAGS(old);
		if (ofl & RVS_CF_DEAD)
			return RVS_INST_RACE;
		__u8 nfl = (ofl & keep) | (fl & ~keep);
		__u32 nw = ((old & ~0xffffu) + RVS_SW_TOUCH) | ((__u32)nfl << 8) | r->state;
		c->last_ns = now;
		c->timeout_s = r->timeout_s;
		if (__sync_val_compare_and_swap(&c->sw, old, nw) != old)
			continue;
		if (!template && ((ofl ^ nfl) & RVS_CF_INACTIVE))
			dest_move(c->dest, !(nfl & RVS_CF_INACTIVE));
		c->in_pkts = r->in_pkts;
		c->old_state = r->old_state;
		return RVS_INST_UPDATED;
	}
	return RVS_INST_RACE;
}

/* One received entry (ip_vs_proc_conn). */
__rvs_inline __u8 ctl_install_one(struct rvs_ctl_install *r, __u64 now)
{
	union rvs_ckey k;
	__u8 family = r->family == RVS_AF_INET ? RVS_AF_INET : RVS_AF_INET6;
	__builtin_memcpy(&k, &r->key, sizeof(k));
	struct rvs_dest *d = dest_get(r->dest);
	if (!d || !(d->flags & RVS_DF_AVAILABLE))
		return RVS_INST_NO_DEST;
	__u8 fl = install_flags(r, d);
	int template = (fl & RVS_CF_TEMPLATE) != 0;
	struct rvs_conn *c = conn_lookup(family, &k);
	if (c) {
		if (c->check != ckey_check(&k, family) || conn_dead(c))
			return RVS_INST_RACE;
		if (template || (c->dest == r->dest && c->dport == r->dport))
			return install_update(r, c, fl, now);
		/* the connection moved to another server on the master */
		if (fl & RVS_CF_INACTIVE)
			return RVS_INST_STALE;
		struct rvs_conn snap = {};
		if (!conn_kill(c, 0, &snap))
			return RVS_INST_RACE;
		conn_release(family, &k, &snap, 1);
	}
	struct rvs_conn n = {
		.sw = r->state | ((__u32)fl << 8),
		.dport = r->dport,
		.dest = r->dest,
		.tpl = RVS_TPL_NONE, /* synced entries are linked to no template */
		.timeout_s = r->timeout_s,
		.last_ns = now,
		.aux = template ? 0 : r->aux,
		.gen = template ? gen_next() : 0,
		.check = ckey_check(&k, family),
		.old_state = r->old_state,
		.in_pkts = r->in_pkts,
	};
	long err = conn_insert(family, &k, &n);
	if (err == -17 /* EEXIST: a packet made it meanwhile */)
		return RVS_INST_RACE;
	if (err)
		return RVS_INST_FULL;
	if (fl & RVS_CF_NAT) {
		union rvs_okey ok;
		__u32 ca[4] = {}, va[4] = {};
		__u16 cport, vport;
		__u8 proto;
		if (family == RVS_AF_INET) {
			ca[0] = k.k4.caddr;
			va[0] = k.k4.vaddr;
			cport = k.k4.cport;
			vport = k.k4.vport;
			proto = k.k4.proto;
		} else {
			addr_copy(ca, k.k6.caddr);
			addr_copy(va, k.k6.vaddr);
			cport = k.k6.cport;
			vport = k.k6.vport;
			proto = k.k6.proto;
		}
		okey_make(&ok, family, d->addr, r->dport, ca, cport, proto);
		out_insert(family, &ok, va, vport);
	}
	dest_bind(r->dest, template);
	if (!template && !(fl & RVS_CF_INACTIVE))
		dest_move(r->dest, 1);
	return RVS_INST_CREATED;
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

static long ctl_install_cb(__u64 i, void *arg)
{
	struct ctl_ctx *c = arg;
	struct rvs_ctl_install r;
	if (i >= c->count)
		return 1;
	__u32 off = sizeof(struct rvs_ctl_hdr) + (__u32)i * sizeof(r);
	if (bpf_xdp_load_bytes(c->ctx, off, &r, sizeof(r)) < 0)
		return 1;
	r.result = ctl_install_one(&r, c->now);
	bpf_xdp_store_bytes(c->ctx, off, &r, sizeof(r));
	return 0;
}

__rvs_inline int ctl_run(struct xdp_md *ctx)
{
	struct rvs_ctl_hdr h;
	if (bpf_xdp_load_bytes(ctx, 0, &h, sizeof(h)) < 0)
		return -1;
	struct ctl_ctx c = {
		.ctx = ctx,
		.count = h.count > RVS_CTL_MAX_RECORDS ? RVS_CTL_MAX_RECORDS : h.count,
		.now = rvs_now(),
	};
	switch (h.op) {
	case RVS_CTL_EXPIRE:
		bpf_loop(RVS_CTL_MAX_RECORDS, ctl_expire_cb, &c, 0);
		return 0;
	case RVS_CTL_INSTALL:
		bpf_loop(RVS_CTL_MAX_RECORDS, ctl_install_cb, &c, 0);
		return 0;
	default:
		return -2;
	}
}

#endif
