/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nf_fwmark.c — fwmark services for the XDP director (rvs_abi.h, "fwmark services").
 *
 * LVS users group services under a firewall mark set in the mangle table of PREROUTING
 * (`iptables -t mangle -A PREROUTING -d VIP -p tcp -m multiport --dports 80,443 -j MARK
 * --set-mark 1`, `ipvsadm -A -f 1 -p`). XDP sees a packet before any mark exists, so the
 * first packet of such a connection matches no address service there and goes to the
 * stack. This program sits in PREROUTING right after mangle (NF_IP_PRI_MANGLE + 1): a
 * TCP or UDP packet that arrived on one of the director's interfaces with the mark of a
 * fwmark service is copied, Ethernet header and all, into rvs_fwmark_ring and dropped;
 * rvsd runs rvs_xdp on it again with the mark as metadata (and sends what it makes of
 * it), and the director's scheduler and connection table take it from there (the later packets of the connection match its
 * entry in XDP and never come here).
 *
 * A netfilter program (Linux >= 6.4) may only read the packet and say NF_ACCEPT or
 * NF_DROP; it reads struct sk_buff through BTF (CO-RE, relocated by rvsd's loader for the
 * running kernel). aya 0.14 knows no netfilter programs: the section name below is one
 * its object parser accepts, and rvsd loads the code as BPF_PROG_TYPE_NETFILTER itself
 * (crates/rvs-xdp/src/fwmark.rs).
 */
#include "lib/common.h"
#include "lib/maps.h"

char LICENSE[] SEC("license") = "GPL";

#define NF_DROP 0
#define NF_ACCEPT 1
#define NFPROTO_IPV4 2

/* The kernel's types, only the fields read here (CO-RE finds them by name). */
struct net_device {
	int ifindex;
} __attribute__((preserve_access_index));

struct nf_hook_state {
	__u8 pf;
	struct net_device *in;
} __attribute__((preserve_access_index));

struct sk_buff {
	unsigned int len;
	unsigned int data_len;
	__u32 mark;
	__u16 mac_header;
	__u16 network_header;
	unsigned char *head;
} __attribute__((preserve_access_index));

/* The program's context (include/net/netfilter/nf_bpf_link.h). */
struct bpf_nf_ctx {
	const struct nf_hook_state *state;
	struct sk_buff *skb;
};

__rvs_inline struct rvs_fwmark_count *counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&rvs_fwmark_stats, &zero);
}

/* One of the interfaces rvsd attached the director to (their own packets only: a frame
 * that came some other way, a VLAN device say, could not be sent back out by XDP). */
__rvs_inline int director_iface(__u32 ifindex)
{
	__u32 zero = 0;
	struct rvs_config *cfg = bpf_map_lookup_elem(&rvs_config, &zero);
	if (!cfg || ifindex == 0)
		return 0;
	for (int i = 0; i < RVS_MAX_IFACES; i++)
		if (cfg->if_index[i] == ifindex)
			return 1;
	return 0;
}

/* TCP or UDP, and not a fragment (rvs_xdp passes fragments to the stack, as for any
 * service). */
__rvs_inline int takes_l4(const unsigned char *l3, __u8 family)
{
	__u8 h[10];
	if (family == RVS_AF_INET) {
		if (bpf_probe_read_kernel(h, 10, l3))
			return 0;
		__u16 frag = ((__u16)h[6] << 8 | h[7]) & 0x3fff; /* MF and the offset */
		return !frag && (h[9] == IPPROTO_TCP || h[9] == IPPROTO_UDP);
	}
	if (bpf_probe_read_kernel(h, 8, l3))
		return 0;
	return h[6] == IPPROTO_TCP || h[6] == IPPROTO_UDP;
}

SEC("socket/rvs_nf_fwmark")
int rvs_nf_fwmark(struct bpf_nf_ctx *ctx)
{
	struct sk_buff *skb = ctx->skb;
	__u32 mark = skb->mark;
	if (!mark)
		return NF_ACCEPT;
	const struct nf_hook_state *st = ctx->state;
	__u8 family = st->pf == NFPROTO_IPV4 ? RVS_AF_INET : RVS_AF_INET6;
	struct net_device *in = st->in;
	if (!in || !director_iface(in->ifindex))
		return NF_ACCEPT;
	struct rvs_svc_key k = { .family = family };
	k.addr[0] = mark;
	if (!bpf_map_lookup_elem(&rvs_services, &k))
		return NF_ACCEPT;

	unsigned char *head = skb->head;
	__u16 mac = skb->mac_header;
	__u16 nh = skb->network_header;
	if (mac == 0xffff || nh < mac || !takes_l4(head + nh, family))
		return NF_ACCEPT;
	struct rvs_fwmark_count *cnt = counters();

	/* at PREROUTING the data starts at the network header: the frame is the link
	 * header plus skb->len, all of it in the linear part unless data_len says not */
	if (skb->data_len) {
		if (cnt)
			cnt->nonlinear++;
		return NF_DROP;
	}
	__u32 len = (__u32)(nh - mac) + skb->len;
	if (len > RVS_FWMARK_FRAME_MAX) {
		if (cnt)
			cnt->too_big++;
		return NF_DROP;
	}
	struct rvs_fwmark_rec *rec = bpf_ringbuf_reserve(&rvs_fwmark_ring, sizeof(*rec), 0);
	if (!rec) {
		if (cnt)
			cnt->ring_full++;
		return NF_DROP;
	}
	rec->ifindex = in->ifindex;
	rec->mark = mark;
	rec->len = len;
	rec->family = family;
	if (bpf_probe_read_kernel(rec->frame, len, head + mac)) {
		bpf_ringbuf_discard(rec, 0);
		return NF_DROP;
	}
	bpf_ringbuf_submit(rec, 0);
	if (cnt)
		cnt->diverted++;
	return NF_DROP;
}
