/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csum.h — Internet checksum arithmetic (RFC 1071, incremental updates per RFC 1624).
 * Values are used as they sit in memory: one's-complement sums do not care about byte
 * order as long as both sides of an update use the same representation. */
#ifndef RVS_CSUM_H
#define RVS_CSUM_H

#include "common.h"

__rvs_inline __u32 csum_add(__u32 s, __u32 v)
{
	s += v;
	return s + (s < v);
}

__rvs_inline __u16 csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* HC' = ~(~HC + ~m + m') for a 32-bit field. */
__rvs_inline __u16 csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 s = (__u16)~check;
	s = csum_add(s, ~from);
	s = csum_add(s, to);
	return ~csum_fold(s);
}

__rvs_inline __u16 csum_replace2(__u16 check, __u16 from, __u16 to)
{
	__u32 s = (__u16)~check;
	s = csum_add(s, (__u16)~from);
	s = csum_add(s, to);
	return ~csum_fold(s);
}

/* An address of the pseudo-header (or of a header the checksum covers) changed. */
__rvs_inline __u16 csum_replace_addr(__u16 check, __u8 family, const __u32 *from, const __u32 *to)
{
	check = csum_replace4(check, from[0], to[0]);
	if (family == RVS_AF_INET6) {
		check = csum_replace4(check, from[1], to[1]);
		check = csum_replace4(check, from[2], to[2]);
		check = csum_replace4(check, from[3], to[3]);
	}
	return check;
}

/* Checksum of an IPv4 header without options (20 bytes, check field zero or not). */
__rvs_inline __u16 ipv4_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		if (i != 5)
			s += w[i];
	return ~csum_fold(s);
}

#endif
