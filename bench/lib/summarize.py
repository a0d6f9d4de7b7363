#!/usr/bin/env python3
"""Turn bench/run.sh's raw.csv (round,contender,metric,value) into the markdown results:
median and spread (min–max) per metric, ratios vs direct and vs HAProxy, the targets
check and the idle-connection memory. Usage: summarize.py RAW.CSV META.TXT"""

import csv
import statistics
import sys
from collections import defaultdict

# Display names, from meta.txt's label.<contender> lines (set by contenders.sh).
LABEL = {}

# metric, header, higher is better?, format
TRAFFIC = [
    ("conn_s", "new conn/s", True, "{:,.0f}"),
    ("close_p50_ms", "p50 close (ms)", False, "{:.2f}"),
    ("close_p99_ms", "p99 close (ms)", False, "{:.2f}"),
    ("ka_rps", "keepalive req/s", True, "{:,.0f}"),
    ("ka_p50_ms", "p50 keepalive (ms)", False, "{:.2f}"),
    ("ka_p99_ms", "p99 keepalive (ms)", False, "{:.2f}"),
    ("tput1_gbps", "iperf3 1 stream (Gb/s)", True, "{:.2f}"),
    ("tput4_gbps", "iperf3 4 streams (Gb/s)", True, "{:.2f}"),
    ("tput4w_gbps", "iperf3 4 streams, client TSO off (Gb/s)", True, "{:.2f}"),
]
RESOURCES = [
    ("close_cpu_us", "balancer CPU µs / new conn", False, "{:.1f}"),
    ("ka_cpu_us", "balancer CPU µs / keepalive req", False, "{:.2f}"),
    ("rss_mib", "memory after the round (PSS MiB)", False, "{:.1f}"),
    ("peak_rss_mib", "peak RSS (MiB)", False, "{:.1f}"),
    ("others_cpu_pct", "others' CPU use (% of all CPUs)", False, "{:.0f}"),
    ("steal_pct", "hypervisor steal (%)", False, "{:.0f}"),
    ("close_errors", "wrk errors, close run", False, "{:.0f}"),
    ("ka_errors", "wrk errors, keepalive run", False, "{:.0f}"),
]


def load(path):
    data = defaultdict(lambda: defaultdict(list))
    order = []
    with open(path) as f:
        for rnd, c, m, v in csv.reader(f):
            if c not in order:
                order.append(c)
            if v == "":
                continue
            data[c][m].append(float(v))
    return data, order


def med(vals):
    return statistics.median(vals) if vals else None


def cell(vals, fmt):
    if not vals:
        return "—"
    m = fmt.format(med(vals))
    if len(vals) == 1:
        return m
    return f"{m} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def table(data, order, metrics):
    out = ["| contender | " + " | ".join(h for _, h, _, _ in metrics) + " |"]
    out.append("|---|" + "---:|" * len(metrics))
    for c in order:
        out.append(f"| {LABEL.get(c, c)} | " + " | ".join(cell(data[c].get(m, []), f) for m, _, _, f in metrics) + " |")
    return out


def ratios(data, order, ref):
    metrics = TRAFFIC
    out = ["| contender | " + " | ".join(h for _, h, _, _ in metrics) + " |"]
    out.append("|---|" + "---:|" * len(metrics))
    for c in order:
        row = []
        for m, _, _, _ in metrics:
            a, b = med(data[c].get(m, [])), med(data[ref].get(m, []))
            row.append(f"{a / b:.2f}×" if a is not None and b else "—")
        out.append(f"| {LABEL.get(c, c)} | " + " | ".join(row) + " |")
    return out


def is_proxy(c):
    return c.startswith("rvs") and "xdp" not in c


def xdp_targets(data, order):
    """Issue targets of the XDP plane: DR ≥ 97% of direct, NAT ≥ 1.2× nftables DNAT."""
    checks = [
        ("rvs_xdp_dr", "direct", 0.97, "DR ≥ 0.97× direct"),
        ("rvs_xdp_dr", "direct_xdp", 0.97, "DR ≥ 0.97× direct + XDP_PASS hook"),
        ("rvs_xdp_nat", "nft", 1.2, "NAT ≥ 1.2× nftables DNAT"),
    ]
    metrics = [m for m in TRAFFIC if m[2] and not m[0].endswith("_ms")]
    out = []
    for c, ref, k, what in checks:
        if c not in data or ref not in data:
            continue
        if not out:
            out.append("| target | " + " | ".join(h for _, h, _, _ in metrics) + " |")
            out.append("|---|" + "---|" * len(metrics))
        row = []
        for m, _, _, _ in metrics:
            a, b = med(data[c].get(m, [])), med(data[ref].get(m, []))
            if a is None or not b:
                row.append("—")
            else:
                row.append(f"{'met' if a >= k * b else '**missed**'} ({a / b:.3f}×)")
        out.append(f"| {what} | " + " | ".join(row) + " |")
    return out


def targets(data, order):
    out = []
    if "haproxy" not in data:
        return out
    h = data["haproxy"]
    checks = [
        ("conn_s", "new conn/s ≥ 1.1× HAProxy", lambda a, b: a >= 1.1 * b),
        ("tput1_gbps", "1-stream throughput ≥ 1.1× HAProxy", lambda a, b: a >= 1.1 * b),
        ("tput4_gbps", "4-stream throughput ≥ 1.1× HAProxy", lambda a, b: a >= 1.1 * b),
        ("tput4w_gbps", "4-stream throughput, client TSO off, ≥ 1.1× HAProxy", lambda a, b: a >= 1.1 * b),
        ("close_p99_ms", "p99 (close) ≤ HAProxy", lambda a, b: a <= b),
        ("ka_p99_ms", "p99 (keepalive) ≤ HAProxy", lambda a, b: a <= b),
    ]
    out.append("| target | " + " | ".join(LABEL.get(c, c) for c in order if is_proxy(c)) + " |")
    out.append("|---|" + "---|" * sum(1 for c in order if is_proxy(c)))
    for m, what, ok in checks:
        row = []
        for c in order:
            if not is_proxy(c):
                continue
            a, b = med(data[c].get(m, [])), med(h.get(m, []))
            if a is None or b is None or b == 0:
                row.append("—")
            else:
                row.append(f"{'met' if ok(a, b) else '**missed**'} ({a / b:.2f}×)")
        out.append(f"| {what} | " + " | ".join(row) + " |")
    return out


def idle(data, order):
    rows = [c for c in order if "idle_kib_per_conn" in data[c]]
    if not rows:
        return []
    out = [
        "| balancer | idle connections | upstream established | KiB / idle conn (no byte yet) | KiB / idle conn (after one request) |",
        "|---|---:|---:|---:|---:|",
    ]
    for c in rows:
        d = data[c]
        out.append(
            f"| {LABEL.get(c, c)} | {d['idle_conns'][0]:.0f} | {d['idle_upstream_established'][0]:.0f} "
            f"| {d['idle_kib_per_conn'][0]:.2f} | {d['warm_kib_per_conn'][0]:.2f} |"
        )
    return out


def main():
    data, order = load(sys.argv[1])
    meta = {}
    with open(sys.argv[2]) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
            if k.startswith("label."):
                LABEL[k[len("label."):]] = v
    traffic_order = [c for c in order if any(m in data[c] for m, *_ in TRAFFIC)]
    lines = [
        f"Run {meta.get('date', '?')} — {meta.get('rounds', '?')} rounds × {meta.get('duration', '?')} s per measure, "
        f"contenders interleaved (order rotated each round); cells are median (min–max).",
        "",
        f"- machine: {meta.get('nproc', '?')} CPUs, {meta.get('cpu', '?')}, kernel {meta.get('kernel', '?')}",
        f"- command: `{meta.get('command', '?')}`",
        f"- pinning: {meta.get('pinning', '?')}",
        f"- load: wrk -t{meta.get('load_threads', '?')} -c{meta.get('wrk_conns', '?')}, iperf3 3.x single process; "
        f"balancers {meta.get('bal_threads', '?')} threads/processes",
        f"- rvsd: {meta.get('rvsd', '?')}; {meta.get('versions', '?')}",
        f"- load average (1, 5, 15 min) before: {meta.get('load_before', '?')}; after: {meta.get('load_after', '?')}; "
        f"1-min load at the start of each round: {meta.get('load_rounds', '?')} (it counts this benchmark too)",
        f"- quiet gate: {meta.get('quiet', '?')}",
        "",
        "### Traffic",
        "",
        *table(data, traffic_order, TRAFFIC),
        "",
        "### Balancer resources",
        "",
        *table(data, [c for c in traffic_order if any(m in data[c] for m, *_ in RESOURCES)], RESOURCES),
    ]
    if "direct" in data:
        lines += ["", "### Ratio to direct (median / median)", "", *ratios(data, traffic_order, "direct")]
    if "haproxy" in data:
        lines += ["", "### Ratio to HAProxy (median / median)", "", *ratios(data, traffic_order, "haproxy")]
        t = targets(data, traffic_order)
        if t:
            lines += ["", "### Targets (rvs proxy vs HAProxy, equal threads)", "", *t]
    x = xdp_targets(data, traffic_order)
    if x:
        lines += ["", "### Targets (rvs XDP: DR vs direct, NAT vs nftables DNAT)", "", *x]
    i = idle(data, order)
    if i:
        lines += ["", "### Memory per idle proxied connection (PSS after − before) / N", "", *i]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
