/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sched_hash.h — dh, sh and mh: lookups in a table rvsd builds with rvs-core's own code
 * whenever the server list changes (as the kernel builds it on update); the packet path
 * only hashes and probes. */
#ifndef RVS_SCHED_HASH_H
#define RVS_SCHED_HASH_H

#include "sched_common.h"
#include "siphash.h"

#define GOLDEN_RATIO_32 0x61C88647u
#define MH_KEY1 2654435761ULL
#define MH_KEY2 2654446892ULL

__rvs_inline __u32 hash_32(__u32 val, __u32 bits)
{
	return (val * GOLDEN_RATIO_32) >> (32 - bits);
}

__rvs_inline struct rvs_lut *lut_get(const struct rvs_service *svc)
{
	__u32 key = svc->lut;
	return bpf_map_lookup_elem(&rvs_luts, &key);
}

/* dh: bucket of the destination address; no fallback. */
__rvs_inline __u32 sched_dh(const struct rvs_service *svc, const struct rvs_pkt *in)
{
	struct rvs_lut *t = lut_get(svc);
	if (!t)
		return RVS_NO_DEST;
	__u32 b = hash_32(addr_fold(in->family, in->daddr), 8);
	__u16 slot = t->ent[rvs_mask(b, RVS_HASH_TAB_SIZE - 1)];
	return slot_state(svc->slot, slot) == SLOT_USABLE ? slot : RVS_NO_DEST;
}

struct probe_ctx {
	const struct rvs_service *svc;
	struct rvs_lut *t;
	__u32 base;     /* sh: h; mh: first slot index */
	__u32 v;        /* mh: port + fold(addr) */
	__u32 pick;
	__u32 ended;
};

/* sh-fallback: buckets (2h + k) mod 256 — the kernel adds the start bucket twice. */
static long sh_probe_cb(__u64 k, void *arg)
{
	struct probe_ctx *c = arg;
	__u32 b = (((__u32)k + c->base) % RVS_HASH_TAB_SIZE + c->base) % RVS_HASH_TAB_SIZE;
	__u16 slot = c->t->ent[rvs_mask(b, RVS_LUT_SIZE - 1)];
	int s = slot_state(c->svc->slot, slot);
	if (s == SLOT_EMPTY)
		return 1;
	if (s == SLOT_USABLE) {
		c->pick = slot;
		return 1;
	}
	return 0;
}

__rvs_inline __u32 sh_port(const struct rvs_service *svc, const struct rvs_pkt *in)
{
	int l4 = in->proto == IPPROTO_TCP || in->proto == IPPROTO_UDP;
	return (l4 && (svc->flags & RVS_SF_SCHED2)) ? bpf_ntohs(in->sport) : 0;
}

/* sh: bucket of port + source address; sh-fallback probes on. */
__rvs_inline __u32 sched_sh(const struct rvs_service *svc, const struct rvs_pkt *in)
{
	struct rvs_lut *t = lut_get(svc);
	if (!t)
		return RVS_NO_DEST;
	__u32 h = rvs_mask(hash_32(sh_port(svc, in) + addr_fold(in->family, in->saddr), 8),
			   RVS_HASH_TAB_SIZE - 1);
	__u16 slot = t->ent[h];
	int s = slot_state(svc->slot, slot);
	if (s == SLOT_USABLE)
		return slot;
	if (s == SLOT_EMPTY || !(svc->flags & RVS_SF_SCHED1))
		return RVS_NO_DEST;
	struct probe_ctx c = { .svc = svc, .t = t, .base = h, .pick = RVS_NO_DEST };
	bpf_loop(RVS_HASH_TAB_SIZE, sh_probe_cb, &c, 0);
	return c.pick;
}

/* mh-fallback: slots h1(k' + v) % M with k' = (k + first) mod M. */
static long mh_probe_cb(__u64 k, void *arg)
{
	struct probe_ctx *c = arg;
	__u32 off = ((__u32)k + c->base) % RVS_MH_TAB_SIZE;
	__u32 i = hsiphash_u32(c->v + off, MH_KEY1) % RVS_MH_TAB_SIZE;
	__u16 slot = c->t->ent[rvs_mask(i, RVS_LUT_SIZE - 1)];
	int s = slot_state(c->svc->slot, slot);
	if (s == SLOT_EMPTY)
		return 1;
	if (s == SLOT_USABLE) {
		c->pick = slot;
		return 1;
	}
	return 0;
}

/* mh: Maglev slot of port + source address; mh-fallback probes on. */
__rvs_inline __u32 sched_mh(const struct rvs_service *svc, const struct rvs_pkt *in)
{
	struct rvs_lut *t = lut_get(svc);
	if (!t)
		return RVS_NO_DEST;
	__u32 v = sh_port(svc, in) + addr_fold(in->family, in->saddr);
	__u32 first = hsiphash_u32(v, MH_KEY1) % RVS_MH_TAB_SIZE;
	__u16 slot = t->ent[rvs_mask(first, RVS_LUT_SIZE - 1)];
	int s = slot_state(svc->slot, slot);
	if (s == SLOT_USABLE)
		return slot;
	if (s == SLOT_EMPTY || !(svc->flags & RVS_SF_SCHED1))
		return RVS_NO_DEST;
	struct probe_ctx c = { .svc = svc, .t = t, .base = first, .v = v, .pick = RVS_NO_DEST };
	bpf_loop(RVS_MH_TAB_SIZE, mh_probe_cb, &c, 0);
	return c.pick;
}

#endif
