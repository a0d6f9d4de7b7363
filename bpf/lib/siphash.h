/* SPDX-License-Identifier: GPL-2.0-or-later */
/* siphash.h — the 64-bit kernel's hsiphash of one u32 (SipHash-1-3 with 64-bit key words,
 * truncated to 32 bits), which ip_vs_mh.c hashes servers and clients with. Pinned to the
 * kernel's self-test vectors by crates/rvs-core/src/sched/hash.rs; the BPF copy is checked
 * against that one by the mh conformance vectors. */
#ifndef RVS_SIPHASH_H
#define RVS_SIPHASH_H

#include "common.h"

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIP_ROUND(v0, v1, v2, v3)                                                          \
	do {                                                                               \
		v0 += v1;                                                                  \
		v1 = SIP_ROTL(v1, 13);                                                     \
		v1 ^= v0;                                                                  \
		v0 = SIP_ROTL(v0, 32);                                                     \
		v2 += v3;                                                                  \
		v3 = SIP_ROTL(v3, 16);                                                     \
		v3 ^= v2;                                                                  \
		v0 += v3;                                                                  \
		v3 = SIP_ROTL(v3, 21);                                                     \
		v3 ^= v0;                                                                  \
		v2 += v1;                                                                  \
		v1 = SIP_ROTL(v1, 17);                                                     \
		v1 ^= v2;                                                                  \
		v2 = SIP_ROTL(v2, 32);                                                     \
	} while (0)

/* hsiphash(&v, 4, {k, k}): the 4-byte message is one block, 4 << 56 | v. */
__rvs_inline __u32 hsiphash_u32(__u32 v, __u64 k)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ k;
	__u64 v1 = 0x646f72616e646f6dULL ^ k;
	__u64 v2 = 0x6c7967656e657261ULL ^ k;
	__u64 v3 = 0x7465646279746573ULL ^ k;
	__u64 m = (4ULL << 56) | v;

	v3 ^= m;
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= m;
	v2 ^= 0xff;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	return (__u32)(v0 ^ v1 ^ v2 ^ v3);
}

#endif
