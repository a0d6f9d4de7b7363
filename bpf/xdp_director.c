/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xdp_director.c — the rvs XDP director: IPVS's packet path (ip_vs_core.c) for NAT, DR
 * and TUN, IPv4 and IPv6, TCP and UDP, with the 14 schedulers and persistence. The entry
 * point is a thin dispatcher — parse, decide by what the packet is, carry the decision
 * out, count the outcome; the work is in lib/, one header per role. Decisions and their
 * execution are separate global functions called one after the other from here, so no
 * call chain gets deep (BPF stacks of nested calls add up to 512 bytes). The one
 * exception is the established-flow fast path (conn_in_fast, fwd_fast), inlined here:
 * a call costs about as much as the work it does (every return is a mispredicted branch
 * under the kernel's return thunks), and most packets take that path.
 *
 * Built twice: as is for rvsd, and with -DRVS_TEST, where the clock, the random draws and
 * the packet mark come from a map (lib/env.h) for the conformance tests.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/reasons.h"
#include "lib/parse.h"
#include "lib/martian.h"
#include "lib/flow.h"
#include "lib/fwd.h"
#include "lib/icmp.h"
#include "lib/ctl.h"

char LICENSE[] SEC("license") = "GPL";

/* A unicast frame for another MAC than the interface's is not for this host: the stack
 * drops it before IPVS would see it (PACKET_OTHERHOST). A NIC filters such frames unless
 * promiscuous; a veth or a bridge port hands them to XDP, and two directors on one
 * segment would both forward a frame flooded to them. Interfaces rvsd did not register
 * are not checked. */
__rvs_inline int for_another_host(const struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct rvs_config *cfg = config_get();
	if (!cfg || (void *)(eth + 1) > end || (eth->h_dest[0] & 1))
		return 0;
	__u32 ifi = ctx->ingress_ifindex;
	for (int i = 0; i < RVS_MAX_IFACES; i++) {
		if (cfg->if_index[i] != ifi || ifi == 0)
			continue;
		const __u8 *m = cfg->if_mac[i];
		return m[0] != eth->h_dest[0] || m[1] != eth->h_dest[1] || m[2] != eth->h_dest[2] ||
		       m[3] != eth->h_dest[3] || m[4] != eth->h_dest[4] || m[5] != eth->h_dest[5];
	}
	return 0;
}

__rvs_inline int is_vip(const struct rvs_pkt *p)
{
	struct rvs_vip_key k = { .family = p->family };
	addr_copy(k.addr, p->daddr);
	return bpf_map_lookup_elem(&rvs_vips, &k) != 0;
}

/* An inbound packet (or a client-side ICMP error) with a decision: out it goes, by the
 * real server's method. */
__rvs_sub int rvs_forward(struct xdp_md *ctx, struct rvs_pkt *p, struct rvs_flow *f)
{
	if (!p || !f)
		return RVS_R_NO_CONFIG;
	return fwd_to_dest(ctx, p, f->dest, f->dport, f->kind == FLOW_ICMP_IN);
}

/* A NAT reply with its entry found: back to the client as the VIP. */
__rvs_sub int rvs_reply(struct xdp_md *ctx, struct rvs_pkt *p, struct rvs_flow *f)
{
	if (!p || !f)
		return RVS_R_NO_CONFIG;
	struct rvs_vaddr va = { .port = f->vport };
	addr_copy(va.addr, f->vaddr);
	return rvs_fwd_nat_out(ctx, p, &va);
}

/* A packet with no entry: maybe the first of a new connection to a virtual service,
 * unless its source is one no client can have. */
__rvs_inline int new_flow(struct rvs_pkt *p, struct rvs_flow *f)
{
	if (rvs_martian(p))
		return RVS_R_MARTIAN;
	int rc = rvs_flow_begin(p, f);
	if (rc != RVS_CONTINUE)
		return rc;
	if (f->dest == RVS_NO_DEST)
		f->dest = rvs_flow_schedule(p, f);
	if (f->dest == RVS_NO_DEST)
		return RVS_R_NO_DEST;
	return rvs_flow_commit(p, f);
}

/* TCP/UDP: a known flow, a NAT reply, or maybe a new flow of a virtual service. */
__rvs_inline int handle_l4(struct xdp_md *ctx, struct rvs_pkt *p, struct rvs_flow *f)
{
	p->now = rvs_now();
	int rc = conn_in_fast(p, f);
	if (rc == RVS_CONTINUE) {
		/* an established flow: no call on the way unless its next hop is not cached (or
		 * a sync master has this packet to offer) */
		if (unlikely(f->sync))
			rvs_sync_offer(p, f);
		p->dest = f->dest;
		p->code = RVS_R_FORWARDED;
		return fwd_fast(ctx, p, f->dest, f->dport);
	}
	if (rc == FAST_SLOW) {
		rc = rvs_conn_in(p, f);
		if (rc != RVS_CONTINUE)
			return rc;
	} else {
		f->dest = RVS_NO_DEST;
	}
	if (f->dest == RVS_NO_DEST) {
		/* a NAT reply, if its index has it */
		if (out_known(p)) {
			rc = rvs_conn_out(p, f);
			if (rc != RVS_CONTINUE)
				return rc;
		}
		if (f->dest != RVS_NO_DEST) {
			p->dest = f->dest;
			p->code = RVS_R_NAT_REPLY;
			return rvs_reply(ctx, p, f);
		}
		/* a marked packet may belong to a fwmark service whatever its address (only
		 * the test build sees marks: XDP runs before anything sets one) */
		if (!is_vip(p) && !rvs_pkt_mark())
			return RVS_R_NOT_VIP;
		rc = new_flow(p, f);
		if (rc != RVS_CONTINUE)
			return rc;
	}
	if (f->sync)
		rvs_sync_offer(p, f);
	p->dest = f->dest;
	p->created = f->created;
	p->code = RVS_R_FORWARDED;
	return fwd_fast(ctx, p, f->dest, f->dport);
}

__rvs_inline int handle_icmp(struct xdp_md *ctx, struct rvs_pkt *p, struct rvs_flow *f)
{
	p->now = rvs_now();
	int rc = rvs_icmp_lookup(ctx, p, f);
	if (rc != RVS_CONTINUE)
		return rc;
	if (f->kind == FLOW_NONE)
		return is_vip(p) ? RVS_R_UNKNOWN_PROTO : RVS_R_NOT_VIP;
	p->dest = f->dest;
	p->code = RVS_R_ICMP_FORWARDED;
	if (f->kind == FLOW_ICMP_IN)
		return rvs_forward(ctx, p, f);
	return rvs_icmp_nat(ctx, p, f);
}

__rvs_inline int handle(struct xdp_md *ctx, struct rvs_pkt *p, struct rvs_flow *f)
{
	if (p->frag)
		return is_vip(p) ? RVS_R_FRAGMENT : RVS_R_NOT_VIP;
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP)
		return handle_l4(ctx, p, f);
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6)
		return handle_icmp(ctx, p, f);
	return is_vip(p) ? RVS_R_UNKNOWN_PROTO : RVS_R_NOT_VIP;
}

/* The errors the director answers itself: port unreachable for a service without an
 * eligible server (ip_vs_leave), frag-needed / packet-too-big for a packet that does not
 * fit the way to its server (pmtu_disc). */
__rvs_inline int answer(struct xdp_md *ctx, struct rvs_pkt *p, int rc)
{
	int v4 = p->family == RVS_AF_INET;
	int sent;
	if (rc == RVS_R_NO_DEST)
		sent = v4 ? rvs_icmp_send(ctx, p, 3, 3, 0) : rvs_icmp_send(ctx, p, 1, 4, 0);
	else
		sent = v4 ? rvs_icmp_send(ctx, p, 3, 4, p->mtu) : rvs_icmp_send(ctx, p, 2, 0, p->mtu);
	if (sent != XDP_TX)
		return sent;
	reason_count_sent();
	p->code = rc;
	return XDP_TX;
}

/* Counts the outcome and returns the verdict. */
__rvs_inline int finish(struct xdp_md *ctx, struct rvs_pkt *p, int rc)
{
	__u32 bytes = ctx->data_end - ctx->data;
	int code = rc < 0 ? rc : p->code;
	int verdict = rc < 0 ? reason_verdict(rc) : rc;
	if (rc == RVS_CONTINUE) {
		code = RVS_R_NOT_VIP;
		verdict = XDP_PASS;
	}
	if (code)
		reason_count(code, bytes);
	rvs_test_record(code, p->dest, p->created);
	return verdict;
}

SEC("xdp")
int rvs_xdp(struct xdp_md *ctx)
{
	struct rvs_pkt p = { .dest = RVS_NO_DEST };
	struct rvs_flow f = { .dest = RVS_NO_DEST };
	int rc = rvs_parse(ctx, &p);
	if (rc == RVS_CONTINUE && for_another_host(ctx))
		rc = RVS_R_OTHER_HOST;
	if (rc == RVS_CONTINUE)
		rc = handle(ctx, &p, &f);
	if (rc == RVS_R_NO_DEST || rc == RVS_R_FRAG_NEEDED)
		rc = answer(ctx, &p, rc);
	return finish(ctx, &p, rc);
}

/* Control requests from rvsd (BPF_PROG_TEST_RUN only; never attached). */
SEC("xdp")
int rvs_ctl(struct xdp_md *ctx)
{
	return ctl_run(ctx) == 0 ? XDP_PASS : XDP_ABORTED;
}
