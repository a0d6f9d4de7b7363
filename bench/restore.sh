#!/usr/bin/env bash
# Times `rvsadm -R` end to end against a running rvsd (table only, `--dataplane none`):
#   services.rules  10,000 services x 1 real server  (20,000 lines)
#   servers.rules   1 service x 10,000 real servers  (10,001 lines)
# Each restore starts from an empty table (`rvsadm -C`) and is checked afterwards with
# `rvsadm -Sn`. Also times `-Sn` and `-Ln` of the loaded table.
#
# Usage: bench/restore.sh [runs]     (PROFILE=dev to use debug builds; default release)
# Generated files and the daemon's log go to bench/out/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release -q -p rvsd -p rvsadm
  bin=target/release
else
  cargo build -q -p rvsd -p rvsadm
  bin=target/debug
fi
out=bench/out
mkdir -p "$out"
awk 'BEGIN { for (i = 0; i < 10000; i++) {
  vip = sprintf("10.%d.%d.1:80", int(i / 256), i % 256)
  printf "-A -t %s -s rr\n-a -t %s -r 192.168.%d.%d:80 -m -w 1\n", vip, vip, int(i / 256), i % 256 } }' \
  > "$out/services.rules"
awk 'BEGIN { print "-A -t 10.0.0.1:80 -s wrr"; for (i = 0; i < 10000; i++)
  printf "-a -t 10.0.0.1:80 -r 172.16.%d.%d:8080 -m -w 1\n", int(i / 256), i % 256 }' \
  > "$out/servers.rules"

sock="$out/rvsd.sock"
rm -f "$sock"
"$bin/rvsd" --socket "$sock" --dataplane none >"$out/rvsd.log" 2>&1 &
rvsd_pid=$!
trap 'kill "$rvsd_pid" 2>/dev/null; wait "$rvsd_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { echo "rvsd did not start; see $out/rvsd.log" >&2; exit 1; }
adm() { "$bin/rvsadm" --socket "$sock" "$@"; }

now() { date +%s.%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

printf '%-16s %-8s %10s %10s %10s\n' file run "-R ms" "-Sn ms" "-Ln ms"
for f in services servers; do
  for run in $(seq "$runs"); do
    adm -C
    t0=$(now); adm -R < "$out/$f.rules"; t1=$(now)
    adm -Sn > "$out/$f.saved"; t2=$(now)
    adm -Ln > /dev/null; t3=$(now)
    lines=$(wc -l < "$out/$f.saved")
    want=$(wc -l < "$out/$f.rules")
    [ "$lines" = "$want" ] || { echo "$f: restored $lines rules, expected $want" >&2; exit 1; }
    printf '%-16s %-8s %10s %10s %10s\n' "$f.rules" "$run" "$(ms "$t0" "$t1")" "$(ms "$t1" "$t2")" "$(ms "$t2" "$t3")"
  done
done
