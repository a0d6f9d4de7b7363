/* SPDX-License-Identifier: GPL-2.0-or-later */
/* parse.h — Ethernet, IPv4 (options carried through, IHL honoured), IPv6 (a few extension
 * headers skipped), TCP, UDP, ICMP/ICMPv6, into a struct rvs_pkt of offsets and fields.
 * The parser decides nothing about services; it only refuses what it cannot read. */
#ifndef RVS_PARSE_H
#define RVS_PARSE_H

#include "common.h"

#define RVS_MAX_EXT_HDRS 4

struct rvs_pkt {
	__u32 saddr[4];
	__u32 daddr[4];
	__u64 now;       /* the clock, read once per packet by the entry point */
	__u16 sport;     /* network order (ICMP: 0) */
	__u16 dport;
	__u8 family;     /* RVS_AF_INET / RVS_AF_INET6 */
	__u8 proto;      /* transport protocol after extension headers */
	__u8 tcp_flags;
	__u8 frag;       /* an IP fragment: no usable transport header */
	__u16 l3_off;
	__u16 l4_off;
	__u16 l3_len;    /* IP packet length (what IPVS counts in inbytes) */
	__u8 df;         /* IPv4 DF, or IPv6 (never fragmented in flight) */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 created;    /* the decision created an entry (test record) */
	__s16 code;      /* outcome to count when the verdict is not a code itself */
	__u16 mtu;       /* RVS_R_FRAG_NEEDED: the MTU to report */
	__u16 dest;      /* dest slot of the decision (test record) */
};

__rvs_inline int parse_l4(struct xdp_md *ctx, struct rvs_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	void *l4 = data + p->l4_off;

	if (p->frag)
		return RVS_CONTINUE;
	switch (p->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > end)
			return RVS_R_TRUNCATED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > end)
			return RVS_R_TRUNCATED;
		p->sport = uh->source;
		p->dport = uh->dest;
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		__u8 *ih = l4;
		if ((void *)(ih + 8) > end)
			return RVS_R_TRUNCATED;
		p->icmp_type = ih[0];
		p->icmp_code = ih[1];
		break;
	}
	default:
		break;
	}
	return RVS_CONTINUE;
}

__rvs_inline int parse_ipv4(struct xdp_md *ctx, struct rvs_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + p->l3_off;

	if ((void *)(ip + 1) > end)
		return RVS_R_TRUNCATED;
	if (ip->version != 4 || ip->ihl < 5)
		return RVS_R_BAD_IP;
	__u16 tot = bpf_ntohs(ip->tot_len);
	if (tot < ip->ihl * 4 || data + p->l3_off + tot > end)
		return RVS_R_BAD_IP;
	p->family = RVS_AF_INET;
	p->proto = ip->protocol;
	p->saddr[0] = ip->saddr;
	p->daddr[0] = ip->daddr;
	p->l3_len = tot;
	p->l4_off = p->l3_off + ip->ihl * 4;
	p->frag = (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
	p->df = (ip->frag_off & bpf_htons(IP_DF)) != 0;
	return parse_l4(ctx, p);
}

__rvs_inline int parse_ipv6(struct xdp_md *ctx, struct rvs_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + p->l3_off;

	if ((void *)(ip6 + 1) > end)
		return RVS_R_TRUNCATED;
	if (ip6->version != 6)
		return RVS_R_BAD_IP;
	__u16 tot = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	if (data + p->l3_off + tot > end)
		return RVS_R_BAD_IP;
	p->family = RVS_AF_INET6;
	addr_copy(p->saddr, (__u32 *)&ip6->saddr);
	addr_copy(p->daddr, (__u32 *)&ip6->daddr);
	p->l3_len = tot;
	p->df = 1;

	__u8 nh = ip6->nexthdr;
	__u16 off = p->l3_off + sizeof(*ip6);
#pragma unroll
	for (int i = 0; i < RVS_MAX_EXT_HDRS; i++) {
		if (nh != NEXTHDR_HOP && nh != NEXTHDR_ROUTING && nh != NEXTHDR_DEST &&
		    nh != NEXTHDR_FRAGMENT)
			break;
		__u8 *eh = data + off;
		if ((void *)(eh + 8) > end)
			return RVS_R_TRUNCATED;
		if (nh == NEXTHDR_FRAGMENT) {
			p->frag = 1;
			nh = eh[0];
			off += 8;
			break;
		}
		nh = eh[0];
		off += (eh[1] + 1) * 8;
	}
	if (nh == NEXTHDR_HOP || nh == NEXTHDR_ROUTING || nh == NEXTHDR_DEST)
		return RVS_R_IPV6_EXT;
	p->proto = nh;
	p->l4_off = off;
	return parse_l4(ctx, p);
}

/* Parses the frame; RVS_CONTINUE when the packet is IP and readable. */
__rvs_inline int rvs_parse(struct xdp_md *ctx, struct rvs_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return RVS_R_TRUNCATED;
	p->l3_off = sizeof(*eth);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(ctx, p);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(ctx, p);
	/* VLAN-tagged frames (802.1Q, 802.1ad) are left to the stack, counted apart: the
	 * director serves the VLAN device it is attached to, not the VLANs of its parent. */
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD))
		return RVS_R_VLAN;
	return RVS_R_NOT_IP;
}

#endif
