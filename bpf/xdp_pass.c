/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xdp_pass.c — for veth labs only. A veth delivers frames another veth's native XDP
 * program sends to it (XDP_TX, redirect) only when it runs XDP itself: the tests attach
 * this program, which passes everything, to the peers of the director's interfaces.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int rvs_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}
