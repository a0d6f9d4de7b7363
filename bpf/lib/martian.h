/* SPDX-License-Identifier: GPL-2.0-or-later */
/* martian.h — sources no client can have. A packet to a virtual address with no entry
 * whose source is one of them is dropped before any service lookup or scheduling
 * (RVS_R_MARTIAN), as the kernel's ip_route_input drops martian sources: nothing answers
 * them, and a spoofed flood from them must not fill the connection table.
 *
 * IPv4 (RFC 6890 §2.2.2, RFC 1122 §3.2.1.3): 0.0.0.0/8 "this network", 127.0.0.0/8
 * loopback, 224.0.0.0/4 multicast, 240.0.0.0/4 reserved with 255.255.255.255 limited
 * broadcast. IPv6 (RFC 4291 §2.5.2-2.5.5, §2.7): :: unspecified, ::1 loopback,
 * ::ffff:0:0/96 IPv4-mapped (never on the wire), ff00::/8 multicast. Both: any virtual
 * address of the director (a land attack, or a reflection of its own traffic). */
#ifndef RVS_MARTIAN_H
#define RVS_MARTIAN_H

#include "maps.h"
#include "parse.h"

/* The first octet of an address in network order. */
__rvs_inline __u8 first_octet(__u32 a)
{
	return bpf_ntohl(a) >> 24;
}

__rvs_inline int martian4(__u32 s)
{
	__u8 o = first_octet(s);
	return o == 0 || o == 127 || o >= 224;
}

__rvs_inline int martian6(const __u32 *s)
{
	if (first_octet(s[0]) == 0xff)
		return 1;
	if (s[0] | s[1])
		return 0;
	if (s[2] == 0)
		return s[3] == 0 || s[3] == bpf_htonl(1);
	return s[2] == bpf_htonl(0xffff);
}

/* True if the packet's source is impossible or one of the director's virtual addresses. */
__rvs_inline int rvs_martian(const struct rvs_pkt *p)
{
	if (p->family == RVS_AF_INET ? martian4(p->saddr[0]) : martian6(p->saddr))
		return 1;
	struct rvs_vip_key k = { .family = p->family };
	addr_copy(k.addr, p->saddr);
	return bpf_map_lookup_elem(&rvs_vips, &k) != 0;
}

#endif
