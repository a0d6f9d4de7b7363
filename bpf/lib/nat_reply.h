/* SPDX-License-Identifier: GPL-2.0-or-later */
/* nat_reply.h — the NAT reply index (rvs_out4, rvs_out6): a reply's (real server
 * address:port, client address:port, protocol) -> the virtual address and port it is
 * rewritten to (what IPVS finds with ip_vs_conn_out_get). Written when a NAT connection
 * is created, deleted when it is released (release.h). */
#ifndef RVS_NAT_REPLY_H
#define RVS_NAT_REPLY_H

#include "env.h"

union rvs_okey {
	struct rvs_out_key4 k4;
	struct rvs_out_key6 k6;
};

union rvs_oval {
	struct rvs_out_val4 v4;
	struct rvs_out_val6 v6;
};

__rvs_inline void okey_make(union rvs_okey *k, __u8 family, const __u32 *daddr, __u16 dport,
			    const __u32 *caddr, __u16 cport, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (family == RVS_AF_INET) {
		k->k4.daddr = daddr[0];
		k->k4.caddr = caddr[0];
		k->k4.dport = dport;
		k->k4.cport = cport;
		k->k4.proto = proto;
	} else {
		addr_copy(k->k6.daddr, daddr);
		addr_copy(k->k6.caddr, caddr);
		k->k6.dport = dport;
		k->k6.cport = cport;
		k->k6.proto = proto;
	}
}

__rvs_inline long out_insert(__u8 family, union rvs_okey *k, const __u32 *vaddr, __u16 vport)
{
	union rvs_oval v;
	__builtin_memset(&v, 0, sizeof(v));
	if (family == RVS_AF_INET) {
		v.v4.vaddr = vaddr[0];
		v.v4.vport = vport;
		return rvs_map_update(&rvs_out4, &k->k4, &v.v4, BPF_ANY);
	}
	addr_copy(v.v6.vaddr, vaddr);
	v.v6.vport = vport;
	return rvs_map_update(&rvs_out6, &k->k6, &v.v6, BPF_ANY);
}

/* The virtual address and port of a NAT reply, 0 when there is none. */
__rvs_inline int out_lookup(__u8 family, union rvs_okey *k, __u32 *vaddr, __u16 *vport)
{
	if (family == RVS_AF_INET) {
		struct rvs_out_val4 *v = rvs_map_lookup(&rvs_out4, &k->k4);
		if (!v)
			return 0;
		vaddr[0] = v->vaddr;
		vaddr[1] = vaddr[2] = vaddr[3] = 0;
		*vport = v->vport;
		return 1;
	}
	struct rvs_out_val6 *v = rvs_map_lookup(&rvs_out6, &k->k6);
	if (!v)
		return 0;
	addr_copy(vaddr, v->vaddr);
	*vport = v->vport;
	return 1;
}

__rvs_inline void out_delete(__u8 family, union rvs_okey *k)
{
	if (family == RVS_AF_INET)
		rvs_map_delete(&rvs_out4, &k->k4);
	else
		rvs_map_delete(&rvs_out6, &k->k6);
}

#endif
