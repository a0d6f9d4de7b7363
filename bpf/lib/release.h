/* SPDX-License-Identifier: GPL-2.0-or-later */
/* release.h — taking entries out: marking an entry dead under its state word, uncounting
 * it, dropping its NAT reply index entry and unlinking it from its template
 * (ip_vs_conn_expire and, with `forced`, ip_vs_conn_expire_now). */
#ifndef RVS_RELEASE_H
#define RVS_RELEASE_H

#include "conn.h"
#include "nat_reply.h"

/* Marks an entry dead and copies it out; 0 if it already was (someone else releases it).
 * `expect` is the state word the decision was taken on (0 = any): a packet that bumped
 * the word meanwhile makes the kill fail. */
__rvs_inline int conn_kill(struct rvs_conn *c, __u32 expect, struct rvs_conn *snap)
{
	for (int i = 0; i < STEP_TRIES; i++) {
		__u32 old = *(volatile __u32 *)&c->sw;
		if (RVS_SW_FLAGS(old) & RVS_CF_DEAD)
			return 0;
		if (expect && old != expect)
			return 0;
		__u32 nw = old | ((__u32)RVS_CF_DEAD << 8);
		if (__sync_val_compare_and_swap(&c->sw, old, nw) == old) {
			snap->sw = old;
			snap->dport = c->dport;
			snap->dest = c->dest;
			snap->tpl = c->tpl;
			snap->tpl_mask = c->tpl_mask;
			snap->aux = c->aux;
			snap->gen = c->gen;
			return 1;
		}
		if (expect)
			return 0;
	}
	return 0;
}

/* Uncounts and deletes a template nobody references any more. */
__rvs_inline void template_drop(__u8 family, union rvs_ckey *tk, struct rvs_conn *t)
{
	struct rvs_conn snap = {};
	if (!conn_kill(t, 0, &snap))
		return;
	dest_unbind(snap.dest, 1, 0);
	conn_delete(family, tk);
}

/* A child leaves its template: one child fewer; a forced expiry takes an unassured
 * template along when this was its last child. */
__rvs_inline void template_unlink(__u8 family, const union rvs_ckey *key, const struct rvs_conn *snap,
				  int forced)
{
	union rvs_ckey tk;
	const __u32 *caddr = family == RVS_AF_INET ? &key->k4.caddr : key->k6.caddr;
	const __u32 *vaddr = family == RVS_AF_INET ? &key->k4.vaddr : key->k6.vaddr;
	__u32 ca[4] = {}, va[4] = {};
	__u16 vport = family == RVS_AF_INET ? key->k4.vport : key->k6.vport;
	__u8 proto = family == RVS_AF_INET ? key->k4.proto : key->k6.proto;

	if (family == RVS_AF_INET) {
		ca[0] = caddr[0];
		va[0] = vaddr[0];
	} else {
		addr_copy(ca, caddr);
		addr_copy(va, vaddr);
	}
	tpl_key(&tk, family, snap->tpl, snap->tpl_mask, snap->aux, ca, va, vport, proto);
	struct rvs_conn *t = conn_lookup(family, &tk);
	if (!t)
		return;
	if (conn_dead(t) || t->gen != snap->gen)
		return;
	__u32 left = __sync_fetch_and_sub(&t->aux, 1) - 1;
	if (forced && left == 0 && !(RVS_SW_FLAGS(t->sw) & RVS_CF_ASSURED))
		template_drop(family, &tk, t);
}

/* Everything ip_vs_conn_expire does once an entry is dead: NAT index, server counters,
 * template link, and the entry itself. */
__rvs_inline void conn_release(__u8 family, union rvs_ckey *key, const struct rvs_conn *snap,
			       int forced)
{
	__u8 flags = RVS_SW_FLAGS(snap->sw);
	int template = (flags & RVS_CF_TEMPLATE) != 0;

	if (flags & RVS_CF_NAT) {
		struct rvs_dest *d = dest_get(snap->dest);
		if (d) {
			union rvs_okey ok;
			const __u32 *caddr = family == RVS_AF_INET ? &key->k4.caddr : key->k6.caddr;
			__u32 ca[4] = {};
			if (family == RVS_AF_INET)
				ca[0] = caddr[0];
			else
				addr_copy(ca, caddr);
			__u16 cport = family == RVS_AF_INET ? key->k4.cport : key->k6.cport;
			__u8 proto = family == RVS_AF_INET ? key->k4.proto : key->k6.proto;
			okey_make(&ok, family, d->addr, snap->dport, ca, cport, proto);
			out_delete(family, &ok);
		}
	}
	dest_unbind(snap->dest, template, (flags & RVS_CF_INACTIVE) != 0);
	if (!template && snap->tpl != RVS_TPL_NONE)
		template_unlink(family, key, snap, forced);
	conn_delete(family, key);
}

#endif
