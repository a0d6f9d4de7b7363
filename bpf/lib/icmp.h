/* SPDX-License-Identifier: GPL-2.0-or-later */
/* icmp.h — ICMP errors about tracked flows (ip_vs_in_icmp, ip_vs_out_icmp): the quoted
 * header inside the error is looked up, and the error follows its flow. Client-side errors
 * (frag-needed / packet-too-big from a router on the way back, port unreachable from the
 * client) go to the flow's real server by its method — for NAT with the outer destination
 * and the quoted source rewritten to the real server; errors a NAT real server sends about
 * a flow go back to the client as if they came from the VIP. */
#ifndef RVS_ICMP_H
#define RVS_ICMP_H

#include "flow.h"
#include "fwd.h"

/* The quoted packet of an ICMP error. */
struct icmp_inner {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad;
	__u16 ip_off;   /* packet offset of the quoted IP header */
	__u16 l4_off;   /* packet offset of the quoted transport header */
	__u16 pad2;
};

/* Errors that relate to a flow: IPv4 dest unreachable, source quench, time exceeded;
 * every ICMPv6 error (type < 128). */
__rvs_inline int icmp_is_error(const struct rvs_pkt *p)
{
	if (p->proto == IPPROTO_ICMP)
		return p->icmp_type == 3 || p->icmp_type == 4 || p->icmp_type == 11;
	if (p->proto == IPPROTO_ICMPV6)
		return p->icmp_type < 128;
	return 0;
}

__rvs_inline int icmp_parse_inner(struct xdp_md *ctx, const struct rvs_pkt *p, struct icmp_inner *in)
{
	__u32 off = p->l4_off + 8;
	__u16 ports[2];
	if (p->family == RVS_AF_INET) {
		struct iphdr ip;
		if (bpf_xdp_load_bytes(ctx, off, &ip, sizeof(ip)) < 0)
			return RVS_R_TRUNCATED;
		if (ip.version != 4 || ip.ihl < 5)
			return RVS_R_BAD_IP;
		in->saddr[0] = ip.saddr;
		in->daddr[0] = ip.daddr;
		in->proto = ip.protocol;
		in->l4_off = off + ip.ihl * 4;
	} else {
		struct ipv6hdr ip6;
		if (bpf_xdp_load_bytes(ctx, off, &ip6, sizeof(ip6)) < 0)
			return RVS_R_TRUNCATED;
		addr_copy(in->saddr, (__u32 *)&ip6.saddr);
		addr_copy(in->daddr, (__u32 *)&ip6.daddr);
		in->proto = ip6.nexthdr;
		in->l4_off = off + sizeof(ip6);
	}
	in->ip_off = off;
	if (in->proto != IPPROTO_TCP && in->proto != IPPROTO_UDP)
		return RVS_R_ICMP_NO_CONN;
	if (bpf_xdp_load_bytes(ctx, in->l4_off, ports, sizeof(ports)) < 0)
		return RVS_R_TRUNCATED;
	in->sport = ports[0];
	in->dport = ports[1];
	return 0;
}

__rvs_inline int icmp_store(struct xdp_md *ctx, __u32 off, const void *val, __u32 len)
{
	return bpf_xdp_store_bytes(ctx, off, (void *)val, len) < 0 ? RVS_R_TRUNCATED : 0;
}

/*
 * Rewrites an ICMP error of a NAT flow. dir_in: client-side error, outer destination and
 * quoted source become the real server; else (server-side) the outer source and the
 * quoted destination become the VIP. The quoted IPv4 header checksum and the ICMP
 * checksum are updated incrementally; the quoted transport checksum is left alone, as
 * the kernel does.
 */
__rvs_inline int icmp_nat(struct xdp_md *ctx, const struct rvs_pkt *p, const struct icmp_inner *in,
			  int dir_in, const __u32 *naddr, __u16 nport)
{
	int v4 = p->family == RVS_AF_INET;
	__u32 alen = v4 ? 4 : 16;
	__u32 outer_off = ETH_HLEN_ + (v4 ? (dir_in ? 16 : 12) : (dir_in ? 24 : 8));
	__u32 inner_addr_off = in->ip_off + (v4 ? (dir_in ? 12 : 16) : (dir_in ? 8 : 24));
	__u32 inner_port_off = in->l4_off + (dir_in ? 0 : 2);
	const __u32 *old_inner = dir_in ? in->saddr : in->daddr;
	__u16 old_port = dir_in ? in->sport : in->dport;
	__u32 old_outer[4] = {};
	__u16 icheck;

	if (bpf_xdp_load_bytes(ctx, outer_off, old_outer, alen & 0x1c) < 0)
		return RVS_R_TRUNCATED;
	if (bpf_xdp_load_bytes(ctx, p->l4_off + 2, &icheck, 2) < 0)
		return RVS_R_TRUNCATED;

	/* quoted header: address, port, and (IPv4) its own checksum */
	icheck = csum_replace_addr(icheck, p->family, old_inner, naddr);
	icheck = csum_replace2(icheck, old_port, nport);
	if (v4) {
		__u16 qcheck, nq;
		if (bpf_xdp_load_bytes(ctx, in->ip_off + 10, &qcheck, 2) < 0)
			return RVS_R_TRUNCATED;
		nq = csum_replace4(qcheck, old_inner[0], naddr[0]);
		icheck = csum_replace2(icheck, qcheck, nq);
		if (icmp_store(ctx, in->ip_off + 10, &nq, 2))
			return RVS_R_TRUNCATED;
	} else {
		/* ICMPv6 covers the pseudo-header: the outer address changes too */
		icheck = csum_replace_addr(icheck, p->family, old_outer, naddr);
	}
	if (icmp_store(ctx, inner_addr_off, naddr, alen & 0x1c) ||
	    icmp_store(ctx, inner_port_off, &nport, 2) ||
	    icmp_store(ctx, p->l4_off + 2, &icheck, 2) ||
	    icmp_store(ctx, outer_off, naddr, alen & 0x1c))
		return RVS_R_TRUNCATED;
	if (v4) {
		void *data = (void *)(long)ctx->data;
		void *end = (void *)(long)ctx->data_end;
		struct iphdr *ip = data + ETH_HLEN_;
		if ((void *)(ip + 1) > end)
			return RVS_R_TRUNCATED;
		ip->check = csum_replace4(ip->check, old_outer[0], naddr[0]);
	}
	return 0;
}

/* A client-side error about an inbound entry: the flow's server and method. */
__rvs_inline int icmp_in(const struct rvs_pkt *p, const struct icmp_inner *in, struct rvs_flow *f)
{
	union rvs_ckey k;
	/* the quote is a packet VIP -> client: reversed, it is the entry's key */
	ckey_make(&k, p->family, in->daddr, in->dport, in->saddr, in->sport, in->proto, RVS_KEY_CONN);
	struct rvs_conn *c = conn_lookup(p->family, &k);
	if (!c || conn_dead(c))
		return 0;
	struct rvs_dest *d = dest_get(c->dest);
	if (!d)
		return 0;
	f->dest = c->dest;
	f->dport = c->dport;
	f->kind = d->fwd == RVS_FWD_MASQ ? FLOW_ICMP_NAT_IN : FLOW_ICMP_IN;
	stats_packet(c->dest, 1, p->l3_len);
	return 1;
}

/* A NAT real server's error about an entry: the VIP to put back. */
__rvs_inline int icmp_out(const struct rvs_pkt *p, const struct icmp_inner *in, struct rvs_flow *f)
{
	union rvs_okey ok;
	/* the quote is a packet client -> real server */
	okey_make(&ok, p->family, in->daddr, in->dport, in->saddr, in->sport, in->proto);
	if (!out_lookup(p->family, &ok, f->vaddr, &f->vport))
		return 0;
	union rvs_ckey k;
	ckey_make(&k, p->family, in->saddr, in->sport, f->vaddr, f->vport, in->proto, RVS_KEY_CONN);
	struct rvs_conn *c = conn_lookup(p->family, &k);
	if (!c || conn_dead(c))
		return 0;
	f->dest = c->dest;
	f->kind = FLOW_ICMP_NAT_OUT;
	stats_packet(c->dest, 0, p->l3_len);
	return 1;
}

/* ICMP: is it an error about a tracked flow? Fills f (kind FLOW_ICMP_*) if so;
 * RVS_CONTINUE for anything else, which is the host's business. */
__rvs_sub int rvs_icmp_lookup(struct xdp_md *ctx, struct rvs_pkt *p, struct rvs_flow *f)
{
	struct icmp_inner in = {};
	if (!p || !f)
		return RVS_R_NO_CONFIG;
	f->kind = FLOW_NONE;
	if (!icmp_is_error(p))
		return RVS_CONTINUE;
	int rc = icmp_parse_inner(ctx, p, &in);
	if (rc)
		return rc == RVS_R_ICMP_NO_CONN ? RVS_R_ICMP_NO_CONN : rc;
	if (icmp_in(p, &in, f) || icmp_out(p, &in, f))
		return RVS_CONTINUE;
	return RVS_R_ICMP_NO_CONN;
}

/* Rewrites and sends an ICMP error of a NAT flow (FLOW_ICMP_NAT_IN / _OUT). */
__rvs_sub int rvs_icmp_nat(struct xdp_md *ctx, struct rvs_pkt *p, struct rvs_flow *f)
{
	struct icmp_inner in = {};
	struct bpf_fib_lookup fl;
	if (!p || !f)
		return RVS_R_NO_CONFIG;
	int rc = icmp_parse_inner(ctx, p, &in);
	if (rc)
		return rc;
	int dir_in = f->kind == FLOW_ICMP_NAT_IN;
	if (dir_in) {
		struct rvs_dest *d = dest_get(f->dest);
		if (!d || d->family != p->family)
			return RVS_R_UNSUPPORTED;
		__u32 daddr[4];
		addr_copy(daddr, d->addr);
		rc = rvs_fib(ctx, p->family, daddr, 0, 0, &fl);
		if (rc == 0)
			rc = icmp_nat(ctx, p, &in, 1, daddr, f->dport);
	} else {
		rc = rvs_fib(ctx, p->family, p->daddr, 0, 0, &fl);
		if (rc == 0)
			rc = icmp_nat(ctx, p, &in, 0, f->vaddr, f->vport);
	}
	if (rc)
		return rc == FIB_FRAG_NEEDED ? RVS_R_FIB : rc;
	return l2_emit(ctx, &fl, p->family == RVS_AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6),
		       p->l3_len);
}

#endif
