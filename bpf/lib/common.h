/* SPDX-License-Identifier: GPL-2.0-or-later */
/* common.h — includes, attributes and the internal result convention.
 *
 * Every packet-path function returns an int: an XDP verdict (0..4), one of the negative
 * outcome codes of rvs_abi.h (counted by rvs_finish), or RVS_CONTINUE ("not mine, go on").
 */
#ifndef RVS_COMMON_H
#define RVS_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../include/rvs_abi.h"

#define __rvs_inline static __always_inline
/* A global subprogram: verified once on its own, which keeps the verifier's work linear. */
#define __rvs_sub __attribute__((noinline))

/*
 * Map helper calls on a table chosen by address family. Left alone, clang merges the
 * IPv4 and IPv6 calls into one whose map comes from a register; the verifier can then
 * neither inline the lookup nor call the map's own function directly, and every packet
 * pays a helper call plus an indirect call. An asm statement naming the map after each
 * call keeps the call sites apart (different asm text cannot be merged).
 */
#define RVS_MAP_SITE(map) asm volatile("/* " #map " */")
#define rvs_map_lookup(map, key)                                                   \
	({                                                                         \
		void *__v = bpf_map_lookup_elem(map, key);                         \
		RVS_MAP_SITE(map);                                                 \
		__v;                                                               \
	})
#define rvs_map_update(map, key, val, fl)                                          \
	({                                                                         \
		long __r = bpf_map_update_elem(map, key, val, fl);                 \
		RVS_MAP_SITE(map);                                                 \
		__r;                                                               \
	})
#define rvs_map_delete(map, key)                                                   \
	({                                                                         \
		long __r = bpf_map_delete_elem(map, key);                          \
		RVS_MAP_SITE(map);                                                 \
		__r;                                                               \
	})

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define RVS_CONTINUE 64

/* x & mask that the compiler cannot drop: the verifier needs the mask to bound an index
 * the compiler already knows to be in range (after a modulo, say). */
#define rvs_mask(x, mask)                                                                  \
	({                                                                                 \
		__u32 __v = (x);                                                           \
		asm volatile("" : "+r"(__v));                                              \
		__v & (mask);                                                              \
	})

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define IP_DF 0x4000

#ifndef NEXTHDR_HOP
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#endif

/* Addresses are four 32-bit words in network order; IPv4 uses word 0, the rest are 0. */
__rvs_inline int addr_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

__rvs_inline void addr_copy(__u32 *dst, const __u32 *src)
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

/* Host-order fold of an address: IPv6 XORs its four words (ip_vs_*_hashkey). */
__rvs_inline __u32 addr_fold(__u8 family, const __u32 *a)
{
	if (family == RVS_AF_INET)
		return bpf_ntohl(a[0]);
	return bpf_ntohl(a[0] ^ a[1] ^ a[2] ^ a[3]);
}

/* addr & prefix mask, in place (persistence client net). */
__rvs_inline void addr_mask(__u8 family, __u32 *a, __u32 prefix)
{
	int words = family == RVS_AF_INET ? 1 : 4;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 bits = prefix > 32 ? 32 : prefix;
		__u32 m = bits == 0 ? 0 : (bits == 32 ? 0xffffffffu : ~((1u << (32 - bits)) - 1));
		if (i >= words)
			m = 0;
		a[i] &= bpf_htonl(m);
		prefix = prefix > 32 ? prefix - 32 : 0;
	}
}

#endif
