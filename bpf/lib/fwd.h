/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fwd.h — carrying out a decision: DR (new MACs), NAT (addresses, ports and checksums
 * rewritten) and TUN (IPIP / IPv6-in-IPv6 / GUE / GRE encapsulation), plus the ICMP
 * errors the director itself sends (port unreachable, fragmentation needed). */
#ifndef RVS_FWD_H
#define RVS_FWD_H

#include "csum.h"
#include "fib.h"
#include "parse.h"
#include "reasons.h"

#define ETH_HLEN_ 14
#define GUE_HLEN 4
#define GRE_HLEN 4

/* ---- NAT ------------------------------------------------------------------------------- */

/* Rewrites the destination (inbound) or source (reply) address and port, with the IP and
 * transport checksums updated incrementally. A UDP checksum of zero (IPv4: none) stays
 * zero; a computed zero is sent as 0xffff (RFC 768). */
__rvs_inline int nat_rewrite(struct xdp_md *ctx, const struct rvs_pkt *p, int dst_side,
			     const __u32 *naddr, __u16 nport)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 oaddr[4] = {};
	__u16 *ports;
	__u16 *check;

	if (p->family == RVS_AF_INET) {
		struct iphdr *ip = data + ETH_HLEN_;
		if ((void *)(ip + 1) > end)
			return RVS_R_TRUNCATED;
		__u32 *a = dst_side ? &ip->daddr : &ip->saddr;
		oaddr[0] = *a;
		ip->check = csum_replace4(ip->check, oaddr[0], naddr[0]);
		*a = naddr[0];
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN_;
		if ((void *)(ip6 + 1) > end)
			return RVS_R_TRUNCATED;
		__u32 *a = dst_side ? (__u32 *)&ip6->daddr : (__u32 *)&ip6->saddr;
		addr_copy(oaddr, a);
		addr_copy(a, naddr);
	}
	__u16 off = p->l4_off;
	if (off > 1024)
		return RVS_R_TRUNCATED;
	void *l4 = data + off;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > end)
			return RVS_R_TRUNCATED;
		ports = dst_side ? &th->dest : &th->source;
		check = &th->check;
	} else {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > end)
			return RVS_R_TRUNCATED;
		ports = dst_side ? &uh->dest : &uh->source;
		check = &uh->check;
		if (uh->check == 0) {
			*ports = nport;
			return 0;
		}
	}
	__u16 sum = csum_replace_addr(*check, p->family, oaddr, naddr);
	sum = csum_replace2(sum, *ports, nport);
	if (p->proto == IPPROTO_UDP && sum == 0)
		sum = 0xffff;
	*check = sum;
	*ports = nport;
	return 0;
}

/* ---- ICMP errors sent by the director ----------------------------------------------------- */

/* Sum of n bytes at packet offset off (n a multiple of 4, at most 128). */
__rvs_inline __u32 csum_bytes(struct xdp_md *ctx, __u32 off, __u32 n, __u32 seed)
{
	__u32 buf[32];
	n &= 0x7c;
	if (n == 0 || bpf_xdp_load_bytes(ctx, off, buf, n) < 0)
		return seed;
	return (__u32)bpf_csum_diff(0, 0, buf, n, seed);
}

/*
 * Turns the packet into an ICMP error back to its sender (icmp_send / icmpv6_send): the
 * frame keeps the original IP header and the first 8 bytes of its payload as the quote,
 * a new IP and ICMP header go in front, and it leaves through the interface it came in.
 * type/code per family; `info` is the MTU for frag-needed / packet-too-big.
 */
__rvs_sub int rvs_icmp_send(struct xdp_md *ctx, const struct rvs_pkt *p, __u32 type, __u32 code,
			    __u32 info)
{
	if (!p)
		return RVS_R_NO_CONFIG;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr eth;
	int v4 = p->family == RVS_AF_INET;
	__u32 iphl = v4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	__u32 quote = (__u32)(p->l4_off - ETH_HLEN_) + 8;
	__u32 head = iphl + 8;

	if (quote > 68 || (void *)((struct ethhdr *)data + 1) > end)
		return RVS_R_TRUNCATED;
	if ((__u32)(end - data) < ETH_HLEN_ + quote)
		return RVS_R_TRUNCATED;
	__builtin_memcpy(&eth, data, sizeof(eth));
	/* cut to the quote, then open room for the new headers */
	int shrink = (int)(end - data) - (int)(ETH_HLEN_ + quote);
	if (shrink > 0 && bpf_xdp_adjust_tail(ctx, -shrink))
		return RVS_R_XDP_ADJUST;
	if (bpf_xdp_adjust_head(ctx, -(int)head))
		return RVS_R_XDP_ADJUST;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *neth = data;
	if ((void *)(neth + 1) > end)
		return RVS_R_XDP_ADJUST;
	__builtin_memcpy(neth->h_dest, eth.h_source, ETH_ALEN);
	__builtin_memcpy(neth->h_source, eth.h_dest, ETH_ALEN);
	neth->h_proto = eth.h_proto;
	__u16 icmp_len = 8 + quote;

	if (v4) {
		struct iphdr *ip = data + ETH_HLEN_;
		__u8 *ih = (void *)(ip + 1);
		if ((void *)(ih + 8) > end)
			return RVS_R_XDP_ADJUST;
		ip->version = 4;
		ip->ihl = 5;
		ip->tos = 0xc0;
		ip->tot_len = bpf_htons(sizeof(*ip) + icmp_len);
		ip->id = 0;
		ip->frag_off = bpf_htons(IP_DF);
		ip->ttl = 64;
		ip->protocol = IPPROTO_ICMP;
		ip->saddr = p->daddr[0];
		ip->daddr = p->saddr[0];
		ip->check = 0;
		ip->check = ipv4_csum(ip);
		ih[0] = type;
		ih[1] = code;
		*(__u16 *)(ih + 2) = 0;
		*(__u32 *)(ih + 4) = bpf_htonl(info & 0xffff);
		__u32 s = csum_bytes(ctx, ETH_HLEN_ + sizeof(*ip), icmp_len, 0);
		*(__u16 *)(ih + 2) = ~csum_fold(s);
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN_;
		__u8 *ih = (void *)(ip6 + 1);
		if ((void *)(ih + 8) > end)
			return RVS_R_XDP_ADJUST;
		*(__u32 *)ip6 = bpf_htonl(0x60000000);
		ip6->payload_len = bpf_htons(icmp_len);
		ip6->nexthdr = IPPROTO_ICMPV6;
		ip6->hop_limit = 64;
		addr_copy((__u32 *)&ip6->saddr, p->daddr);
		addr_copy((__u32 *)&ip6->daddr, p->saddr);
		ih[0] = type;
		ih[1] = code;
		*(__u16 *)(ih + 2) = 0;
		*(__u32 *)(ih + 4) = bpf_htonl(info);
		/* pseudo-header: addresses, upper-layer length, next header */
		__u32 s = csum_bytes(ctx, ETH_HLEN_ + 8, 32, 0);
		s = csum_add(s, bpf_htonl(icmp_len));
		s = csum_add(s, bpf_htonl(IPPROTO_ICMPV6));
		s = csum_bytes(ctx, ETH_HLEN_ + sizeof(*ip6), icmp_len, s);
		*(__u16 *)(ih + 2) = ~csum_fold(s);
	}
	return XDP_TX;
}

/* Too big for the path: with DF (IPv6 always) the entry point answers with
 * frag-needed / packet-too-big carrying mtu; without DF XDP cannot fragment: drop. */
__rvs_inline int too_big(struct rvs_pkt *p, __u32 mtu)
{
	if (!p->df)
		return RVS_R_TOO_BIG;
	p->mtu = mtu;
	return RVS_R_FRAG_NEEDED;
}

/* A packet larger than the interface it came in on cannot have arrived as one frame: it
 * is a GRO/GSO aggregate (generic XDP) that the kernel splits on the way out, segment by
 * segment, so no ICMP is due (IPVS likewise exempts GSO packets from its MTU check). Only
 * XDP_TX can send it, though: see l2_send(). */
__rvs_inline int is_aggregate(struct xdp_md *ctx, const struct rvs_pkt *p)
{
	__u32 len = p->l3_len;
	return bpf_check_mtu(ctx, 0, &len, 0, 0) == BPF_MTU_CHK_RET_FRAG_NEEDED;
}

/* ---- DR ------------------------------------------------------------------------------- */

__rvs_sub int rvs_fwd_dr(struct xdp_md *ctx, struct rvs_pkt *p, __u32 slot, __u32 check_mtu)
{
	struct rvs_nh *nh;
	struct rvs_dest *d = dest_get(slot);
	if (!p || !d)
		return RVS_R_DEST_UNAVAILABLE;
	int rc = nh_get(ctx, slot, d->family, d->addr, p->now, &nh);
	if (rc)
		return rc;
	if (!nh->onlink)
		return RVS_R_DR_NOT_ONLINK;
	if (check_mtu && p->l3_len > nh->mtu && !is_aggregate(ctx, p))
		return too_big(p, nh->mtu);
	return nh_emit(ctx, nh, p->family == RVS_AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6),
		       p->l3_len);
}

/* ---- NAT ----------------------------------------------------------------------------- */

__rvs_sub int rvs_fwd_nat_in(struct xdp_md *ctx, struct rvs_pkt *p, __u32 slot, __u32 dport)
{
	struct rvs_nh *nh;
	struct rvs_dest *d = dest_get(slot);
	if (!p || !d)
		return RVS_R_DEST_UNAVAILABLE;
	int rc = nh_get(ctx, slot, d->family, d->addr, p->now, &nh);
	if (rc)
		return rc;
	if (p->l3_len > nh->mtu && !is_aggregate(ctx, p))
		return too_big(p, nh->mtu);
	if (nh_oversize(ctx, nh, p->l3_len))
		return RVS_R_OVERSIZE; /* before the rewrite: the frame stays as it came */
	__u32 daddr[4];
	addr_copy(daddr, d->addr);
	rc = nat_rewrite(ctx, p, 1, daddr, (__u16)dport);
	if (rc)
		return rc;
	return nh_emit(ctx, nh, p->family == RVS_AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6),
		       p->l3_len);
}

/* A reply of a NAT entry: from the real server back to the client, as the VIP. */
struct rvs_vaddr {
	__u32 addr[4];
	__u32 port;
};

__rvs_sub int rvs_fwd_nat_out(struct xdp_md *ctx, struct rvs_pkt *p, const struct rvs_vaddr *va)
{
	struct bpf_fib_lookup f;
	if (!p || !va)
		return RVS_R_NO_CONFIG;
	int rc = rvs_fib(ctx, p->family, p->daddr, 0, 0, &f);
	if (rc)
		return rc == FIB_FRAG_NEEDED ? RVS_R_FIB : rc;
	rc = nat_rewrite(ctx, p, 0, va->addr, (__u16)va->port);
	if (rc)
		return rc;
	return l2_emit(ctx, &f, p->family == RVS_AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6),
		       p->l3_len);
}

/* ---- TUN ------------------------------------------------------------------------------ */

__rvs_inline __u32 tun_overhead(const struct rvs_dest *d)
{
	__u32 ip = d->family == RVS_AF_INET ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	if (d->tun_type == RVS_TUN_GUE)
		return ip + sizeof(struct udphdr) + GUE_HLEN;
	if (d->tun_type == RVS_TUN_GRE)
		return ip + GRE_HLEN;
	return ip;
}

/* What the outer header copies from the inner one. */
struct inner_hdr {
	__u8 tos;   /* TOS / traffic class */
	__u8 ttl;   /* TTL / hop limit */
	__u16 id;   /* outer IPv4 ID without DF: the inner ID (IPv4) or a flow hash (IPv6) */
};

__rvs_inline int inner_hdr(struct xdp_md *ctx, const struct rvs_pkt *p, struct inner_hdr *h)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (p->family == RVS_AF_INET) {
		struct iphdr *ip = data + ETH_HLEN_;
		if ((void *)(ip + 1) > end)
			return RVS_R_TRUNCATED;
		h->tos = ip->tos;
		h->ttl = ip->ttl;
		h->id = ip->id;
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN_;
		if ((void *)(ip6 + 1) > end)
			return RVS_R_TRUNCATED;
		h->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		h->ttl = ip6->hop_limit;
		h->id = (__u16)(p->saddr[3] ^ (p->saddr[3] >> 16) ^ p->sport ^ p->dport);
	}
	return 0;
}

/* Writes the outer headers into the room opened in front of the inner packet. */
__rvs_inline int tun_write(struct xdp_md *ctx, const struct rvs_pkt *p, const struct rvs_dest *d,
			   const struct rvs_nh *nh, const struct inner_hdr *in)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 inner = p->family == RVS_AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u8 l4 = d->tun_type == RVS_TUN_GUE ? IPPROTO_UDP :
		  d->tun_type == RVS_TUN_GRE ? IPPROTO_GRE : inner;
	__u16 extra = d->tun_type == RVS_TUN_GUE ? sizeof(struct udphdr) + GUE_HLEN :
		      d->tun_type == RVS_TUN_GRE ? GRE_HLEN : 0;
	void *after;

	if (d->family == RVS_AF_INET) {
		struct iphdr *ip = data + ETH_HLEN_;
		if ((void *)(ip + 1) > end)
			return RVS_R_XDP_ADJUST;
		ip->version = 4;
		ip->ihl = 5;
		ip->tos = in->tos;
		ip->tot_len = bpf_htons(sizeof(*ip) + extra + p->l3_len);
		/* without DF the outer packet may be fragmented on the way: it needs an ID */
		ip->id = p->df ? 0 : in->id;
		ip->frag_off = p->df ? bpf_htons(IP_DF) : 0;
		ip->ttl = in->ttl;
		ip->protocol = l4;
		ip->saddr = nh->src[0];
		ip->daddr = d->addr[0];
		ip->check = 0;
		ip->check = ipv4_csum(ip);
		after = ip + 1;
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN_;
		if ((void *)(ip6 + 1) > end)
			return RVS_R_XDP_ADJUST;
		*(__u32 *)ip6 = bpf_htonl(0x60000000 | ((__u32)in->tos << 20));
		ip6->payload_len = bpf_htons(extra + p->l3_len);
		ip6->nexthdr = l4;
		ip6->hop_limit = in->ttl;
		addr_copy((__u32 *)&ip6->saddr, nh->src);
		addr_copy((__u32 *)&ip6->daddr, d->addr);
		after = ip6 + 1;
	}
	if (d->tun_type == RVS_TUN_GUE) {
		struct udphdr *uh = after;
		__u8 *gue = (void *)(uh + 1);
		if ((void *)(gue + GUE_HLEN) > end)
			return RVS_R_XDP_ADJUST;
		/* source port from the flow, so ECMP spreads flows (udp_flow_src_port) */
		__u32 h = p->saddr[0] ^ p->saddr[3] ^ ((__u32)p->sport << 16 | p->dport);
		uh->source = bpf_htons(0xc000 | ((h ^ (h >> 16)) & 0x3fff));
		uh->dest = d->tun_port;
		uh->len = bpf_htons(sizeof(*uh) + GUE_HLEN + p->l3_len);
		uh->check = 0; /* --tun-nocsum */
		gue[0] = 0;    /* version 0, C 0, hlen 0 */
		gue[1] = inner;
		gue[2] = 0;
		gue[3] = 0;
	} else if (d->tun_type == RVS_TUN_GRE) {
		__u16 *gre = after;
		if ((void *)(gre + 2) > end)
			return RVS_R_XDP_ADJUST;
		gre[0] = 0;
		gre[1] = p->family == RVS_AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	}
	return 0;
}

__rvs_sub int rvs_fwd_tun(struct xdp_md *ctx, struct rvs_pkt *p, __u32 slot, __u32 check_mtu)
{
	struct rvs_nh *nh;
	struct inner_hdr in;
	struct rvs_dest *d = dest_get(slot);
	if (!p || !d)
		return RVS_R_DEST_UNAVAILABLE;
	__u32 over = tun_overhead(d);
	if (d->tun_type == RVS_TUN_GRE && d->tun_flags)
		return RVS_R_UNSUPPORTED; /* GRE checksums are not implemented */
	int rc = nh_get(ctx, slot, d->family, d->addr, p->now, &nh);
	if (rc)
		return rc;
	if (check_mtu && p->l3_len + over > nh->mtu) {
		/* an aggregate's GSO type would not describe the encapsulated packet */
		if (is_aggregate(ctx, p))
			return RVS_R_OVERSIZE;
		return too_big(p, nh->mtu > over ? nh->mtu - over : 0);
	}
	rc = inner_hdr(ctx, p, &in);
	if (rc)
		return rc;
	if (bpf_xdp_adjust_head(ctx, -(int)over))
		return RVS_R_XDP_ADJUST;
	rc = tun_write(ctx, p, d, nh, &in);
	if (rc)
		return rc;
	return nh_emit(ctx, nh, d->family == RVS_AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6),
		       p->l3_len + over);
}

/* ---- dispatch ------------------------------------------------------------------------- */

/* Sends an inbound packet (or an ICMP error about a flow: no MTU check, no NAT here) to
 * its real server by the server's method. */
__rvs_inline int fwd_to_dest(struct xdp_md *ctx, struct rvs_pkt *p, __u32 slot, __u16 dport,
			     int is_icmp)
{
	struct rvs_dest *d = dest_get(slot);
	if (!d)
		return RVS_R_DEST_UNAVAILABLE;
	switch (d->fwd) {
	case RVS_FWD_ROUTE:
		if (d->family != p->family)
			return RVS_R_UNSUPPORTED;
		return rvs_fwd_dr(ctx, p, slot, !is_icmp);
	case RVS_FWD_TUNNEL:
		return rvs_fwd_tun(ctx, p, slot, !is_icmp);
	case RVS_FWD_MASQ:
		if (d->family != p->family || is_icmp)
			return RVS_R_UNSUPPORTED;
		return rvs_fwd_nat_in(ctx, p, slot, dport);
	default:
		return RVS_R_LOCAL;
	}
}

/* The inbound packet of an established flow: a DR server with a cached next hop that the
 * packet fits is served here, inline (what rvs_fwd_dr does for it); everything else goes
 * the general way (fwd_to_dest). */
__rvs_inline int fwd_fast(struct xdp_md *ctx, struct rvs_pkt *p, __u32 slot, __u16 dport)
{
	struct rvs_dest *d = dest_get(slot);
	if (d && d->fwd == RVS_FWD_ROUTE && d->family == p->family) {
		struct rvs_nh *nh = bpf_map_lookup_elem(&rvs_nh_cache, &slot);
		if (nh && nh_fresh(nh, d->family, d->addr, p->now) && p->l3_len <= nh->mtu) {
			if (!nh->onlink)
				return RVS_R_DR_NOT_ONLINK;
			return nh_emit(ctx, nh,
				       p->family == RVS_AF_INET ? bpf_htons(ETH_P_IP) :
								  bpf_htons(ETH_P_IPV6),
				       p->l3_len);
		}
	}
	return fwd_to_dest(ctx, p, slot, dport, 0);
}

#endif
