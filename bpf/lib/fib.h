/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fib.h — next hop of a packet leaving the director: the kernel's FIB and neighbour
 * table through bpf_fib_lookup, then MACs written and TX (same interface) or redirect. */
#ifndef RVS_FIB_H
#define RVS_FIB_H

#include "common.h"
#include "maps.h"

/* Outcome of a lookup beyond the plain codes. */
#define FIB_FRAG_NEEDED 1

/* Asks rvsd to resolve a next hop the neighbour table does not know (yet). */
__rvs_inline void neigh_request(__u8 family, const struct bpf_fib_lookup *f)
{
	struct rvs_vip_key k = { .family = family };
	if (family == RVS_AF_INET)
		k.addr[0] = f->ipv4_dst;
	else
		addr_copy(k.addr, f->ipv6_dst);
	bpf_map_push_elem(&rvs_neigh_req, &k, BPF_EXIST);
}

/*
 * Route to dst as a forwarded packet would take it (policy routing by ingress interface
 * included). The kernel answers only where IP forwarding is on for the ingress interface
 * (rvsd turns it on for the interfaces it attaches to). tot_len != 0 also checks the path
 * MTU. Returns 0, FIB_FRAG_NEEDED (f->mtu_result set) or an outcome code.
 */
__rvs_inline int rvs_fib(struct xdp_md *ctx, __u8 family, const __u32 *dst, __u16 tot_len,
			 __u32 flags, struct bpf_fib_lookup *f)
{
	__builtin_memset(f, 0, sizeof(*f));
	f->family = family;
	f->ifindex = ctx->ingress_ifindex;
	f->tot_len = tot_len;
	if (family == RVS_AF_INET)
		f->ipv4_dst = dst[0];
	else
		addr_copy(f->ipv6_dst, dst);
	long rc = bpf_fib_lookup(ctx, f, sizeof(*f), flags);
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		return 0;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return FIB_FRAG_NEEDED;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		neigh_request(family, f);
		return RVS_R_NO_NEIGH;
	case BPF_FIB_LKUP_RET_FWD_DISABLED:
		return RVS_R_FWD_DISABLED;
	default:
		return RVS_R_FIB;
	}
}

/* The next hop is the destination itself (DR needs its server on the same link). */
__rvs_inline int fib_onlink(__u8 family, const struct bpf_fib_lookup *f, const __u32 *dst)
{
	if (family == RVS_AF_INET)
		return f->ipv4_dst == dst[0];
	return addr_eq(f->ipv6_dst, dst);
}

/*
 * The next hop of each real server, per CPU, re-checked against the FIB every
 * NH_TTL_NS: the per-packet path then costs an array read instead of a FIB and neighbour
 * lookup. A neighbour that changes MAC, or a route that moves, is seen within that time;
 * the entry also remembers the server address, so a reused slot never inherits it.
 */
#define NH_TTL_NS (1000ULL * 1000 * 1000)

struct rvs_nh {
	__u64 expires_ns;
	__u32 addr[4];   /* the server it was looked up for */
	__u32 src[4];    /* source address towards it (tunnels) */
	__u32 ifindex;
	__u16 mtu;       /* path MTU */
	__u8 onlink;     /* the server is the next hop itself */
	__u8 family;
	__u8 dmac[6];
	__u8 smac[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_MAX_DESTS);
	__type(key, __u32);
	__type(value, struct rvs_nh);
} rvs_nh_cache SEC(".maps");

/* A cached next hop still valid for the server at addr. */
__rvs_inline int nh_fresh(const struct rvs_nh *nh, __u8 family, const __u32 *addr, __u64 now)
{
	return nh->expires_ns > now && nh->family == family && addr_eq(nh->addr, addr);
}

/* The next hop of real server `slot` at `addr`: cached, or looked up (and cached).
 * Returns 0 with *out set, or an outcome code. */
__rvs_inline int nh_get(struct xdp_md *ctx, __u32 slot, __u8 family, const __u32 *addr, __u64 now,
			struct rvs_nh **out)
{
	struct rvs_nh *nh = bpf_map_lookup_elem(&rvs_nh_cache, &slot);
	struct bpf_fib_lookup f;
	if (!nh)
		return RVS_R_FIB;
	if (nh_fresh(nh, family, addr, now)) {
		*out = nh;
		return 0;
	}
	/* the path MTU first (a lookup that must fail the MTU check reports it) */
	int rc = rvs_fib(ctx, family, addr, 0xffff, 0, &f);
	__u16 mtu = rc == FIB_FRAG_NEEDED ? f.mtu_result : 0xffff;
	if (rc && rc != FIB_FRAG_NEEDED)
		return rc;
	rc = rvs_fib(ctx, family, addr, 0, BPF_FIB_LOOKUP_SRC, &f);
	if (rc)
		return rc == FIB_FRAG_NEEDED ? RVS_R_FIB : rc;
	nh->ifindex = f.ifindex;
	nh->mtu = mtu;
	nh->family = family;
	nh->onlink = fib_onlink(family, &f, addr);
	__builtin_memcpy(nh->dmac, f.dmac, ETH_ALEN);
	__builtin_memcpy(nh->smac, f.smac, ETH_ALEN);
	addr_copy(nh->addr, addr);
	if (family == RVS_AF_INET) {
		nh->src[0] = f.ipv4_src;
		nh->src[1] = nh->src[2] = nh->src[3] = 0;
	} else {
		addr_copy(nh->src, f.ipv6_src);
	}
	nh->expires_ns = now + NH_TTL_NS;
	*out = nh;
	return 0;
}

/* A MAC address copied as three 16-bit words: every MAC here (frame, next-hop cache,
 * FIB answer) is 2-byte aligned, and __builtin_memcpy would copy byte by byte (BPF
 * assumes strict alignment). */
__rvs_inline void mac_copy(__u8 *dst, const __u8 *src)
{
	__u16 *d = (__u16 *)(void *)dst;
	const __u16 *s = (const __u16 *)(const void *)src;
	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
}

/* Writes the Ethernet header of a frame leaving for dmac. */
__rvs_inline int l2_write(struct xdp_md *ctx, const __u8 *dmac, const __u8 *smac, __u16 proto)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return RVS_R_TRUNCATED;
	mac_copy(eth->h_dest, dmac);
	mac_copy(eth->h_source, smac);
	eth->h_proto = proto;
	return 0;
}

/* XDP_TX on the ingress interface, else a redirect. */
__rvs_inline int l2_send(struct xdp_md *ctx, __u32 ifindex)
{
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

/*
 * A packet (l3_len bytes) that exceeds the MTU of another egress interface can only be a
 * GRO/GSO aggregate of generic mode here (oversized packets were answered with ICMP
 * before). The kernel drops such a redirect silently (xdp_ok_fwd_dev), so it is dropped
 * and counted instead; on the ingress interface XDP_TX hands the aggregate to the
 * driver, which segments it.
 */
__rvs_inline int nh_oversize(struct xdp_md *ctx, const struct rvs_nh *nh, __u32 l3_len)
{
	return nh->ifindex != ctx->ingress_ifindex && l3_len > nh->mtu;
}

/* Sends an IP packet of l3_len bytes to a cached next hop (its path MTU is known). */
__rvs_inline int nh_emit(struct xdp_md *ctx, const struct rvs_nh *nh, __u16 proto, __u32 l3_len)
{
	if (nh_oversize(ctx, nh, l3_len))
		return RVS_R_OVERSIZE;
	int rc = l2_write(ctx, nh->dmac, nh->smac, proto);
	if (rc)
		return rc;
	return l2_send(ctx, nh->ifindex);
}

/* Sends an IP packet of l3_len bytes to a looked-up next hop; the egress MTU is asked
 * only when the frame leaves by another interface (see nh_oversize). */
__rvs_inline int l2_emit(struct xdp_md *ctx, const struct bpf_fib_lookup *f, __u16 proto, __u32 l3_len)
{
	__u32 len = l3_len;
	if (f->ifindex != ctx->ingress_ifindex &&
	    bpf_check_mtu(ctx, f->ifindex, &len, 0, 0) == BPF_MTU_CHK_RET_FRAG_NEEDED)
		return RVS_R_OVERSIZE;
	int rc = l2_write(ctx, f->dmac, f->smac, proto);
	if (rc)
		return rc;
	return l2_send(ctx, f->ifindex);
}

#endif
