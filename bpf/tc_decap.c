/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tc_decap.c — the real server's half of LVS/TUN, for hosts without the ipip module: a tc
 * ingress classifier that strips IPIP, IPv6-in-IPv6 (and the mixed forms), GUE and plain
 * GRE from packets addressed to this host and hands the inner packet, addressed to the VIP
 * on lo, to the stack. Only outer destinations listed in rvs_decap_addrs are opened
 * (rvs-rs fills it with the host's addresses); everything else passes untouched.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "include/rvs_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define LIBBPF_PIN_BY_NAME 1

/* BPF_F_ADJ_ROOM_DECAP_L3_IPV{4,6} (Linux 6.3): the UAPI headers we build against are
 * older than the kernels we run on. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

/* Outer destinations to decapsulate (this host's addresses), and GUE ports. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct rvs_vip_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_decap_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u16); /* network order */
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_decap_gue_ports SEC(".maps");

/* Packets decapsulated, per CPU: [0] IPIP/IP6IP6, [1] GUE, [2] GRE. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rvs_decap_stats SEC(".maps");

#define GRE_HLEN 4
#define GUE_HLEN 4

static __always_inline void count(__u32 what)
{
	__u64 *c = bpf_map_lookup_elem(&rvs_decap_stats, &what);
	if (c)
		*c += 1;
}

static __always_inline int local_dst(__u32 family, const __u32 *addr)
{
	struct rvs_vip_key k = { .family = family };
	k.addr[0] = addr[0];
	if (family == RVS_AF_INET6) {
		k.addr[1] = addr[1];
		k.addr[2] = addr[2];
		k.addr[3] = addr[3];
	}
	return bpf_map_lookup_elem(&rvs_decap_addrs, &k) != 0;
}

/* Inner protocol number -> ethertype, or 0. */
static __always_inline __u16 inner_proto(__u8 proto)
{
	if (proto == IPPROTO_IPIP)
		return bpf_htons(ETH_P_IP);
	if (proto == IPPROTO_IPV6)
		return bpf_htons(ETH_P_IPV6);
	return 0;
}

/* Removes `len` bytes after the MAC header and retypes the frame. */
static __always_inline int strip(struct __sk_buff *skb, __u32 len, __u16 ethertype, __u32 what)
{
	__u64 flags = ethertype == bpf_htons(ETH_P_IP) ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4
						       : BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
	if (bpf_skb_adjust_room(skb, -(__s32)len, BPF_ADJ_ROOM_MAC, flags))
		return TC_ACT_OK; /* leave it to the stack, which will drop it */
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &ethertype,
				sizeof(ethertype), 0))
		return TC_ACT_SHOT;
	count(what);
	return TC_ACT_OK;
}

/* Outer L4 (after an outer IP header of iphl bytes): IPIP/IPv6, GUE or GRE. */
static __always_inline int decap_l4(struct __sk_buff *skb, __u8 proto, __u32 iphl)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u16 et = inner_proto(proto);
	if (et)
		return strip(skb, iphl, et, 0);
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = data + sizeof(struct ethhdr) + iphl;
		__u8 *gue = (void *)(uh + 1);
		if ((void *)(gue + GUE_HLEN) > end)
			return TC_ACT_OK;
		if (!bpf_map_lookup_elem(&rvs_decap_gue_ports, &uh->dest))
			return TC_ACT_OK;
		/* GUE version 0 without options: first byte 0 (C = 0, hlen = 0) */
		if (gue[0] != 0 || !(et = inner_proto(gue[1])))
			return TC_ACT_OK;
		return strip(skb, iphl + sizeof(*uh) + GUE_HLEN, et, 1);
	}
	if (proto == IPPROTO_GRE) {
		__u16 *gre = data + sizeof(struct ethhdr) + iphl;
		if ((void *)(gre + 2) > end)
			return TC_ACT_OK;
		if (gre[0] != 0) /* checksum, key or sequence present: not ours */
			return TC_ACT_OK;
		if (gre[1] != bpf_htons(ETH_P_IP) && gre[1] != bpf_htons(ETH_P_IPV6))
			return TC_ACT_OK;
		return strip(skb, iphl + GRE_HLEN, gre[1], 2);
	}
	return TC_ACT_OK;
}

SEC("classifier")
int rvs_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl != 5)
			return TC_ACT_OK;
		if (ip->frag_off & bpf_htons(0x3fff))
			return TC_ACT_OK; /* fragments: the stack reassembles, no decap here */
		__u32 dst[1] = { ip->daddr };
		if (!local_dst(RVS_AF_INET, dst))
			return TC_ACT_OK;
		return decap_l4(skb, ip->protocol, sizeof(*ip));
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return TC_ACT_OK;
		if (!local_dst(RVS_AF_INET6, (__u32 *)&ip6->daddr))
			return TC_ACT_OK;
		return decap_l4(skb, ip6->nexthdr, sizeof(*ip6));
	}
	return TC_ACT_OK;
}
