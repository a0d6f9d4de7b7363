#!/usr/bin/env bash
# rvs quickstart: a director balancing real traffic.
#
# Starts three real servers (HTTP, each answering with its name), rvsd with the proxy data
# plane, configures a virtual service with rvsadm exactly as with ipvsadm, sends traffic,
# and prints `rvsadm -Ln --stats` and which server answered how often. Needs no root: the
# director, VIP and real servers all live on loopback addresses (127.80.0.0/16).
#
# Environment: RVS_DEMO_REQUESTS (default 900), RVS_DEMO_SCHED (default wrr).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${RVS_DEMO_REQUESTS:-900}
SCHED=${RVS_DEMO_SCHED:-wrr}
VIP=127.80.0.1:8080
RS=(127.80.0.11:8080 127.80.0.12:8080 127.80.0.13:8080)
WEIGHTS=(3 2 1)

if ! command -v cargo >/dev/null; then
  echo "rvs demo: cargo is needed (Rust 1.95): https://rustup.rs" >&2
  exit 1
fi
echo "== building rvsd, rvsadm and the demo kit (release)"
cargo build --release -q -p rvsd -p rvsadm -p rvs-testkit
BIN=$PWD/target/release

work=$(mktemp -d /tmp/rvs-demo.XXXXXX)
export RVS_SOCKET=$work/rvsd.sock
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Runs rvsadm, showing the command as an operator would type it.
rvsadm() {
  echo "# rvsadm $*"
  "$BIN/rvsadm" "$@"
}

echo "== starting 3 real servers: ${RS[*]}"
for i in 0 1 2; do
  "$BIN/rvs-lab" backend --name "rs$((i + 1))" --listen "${RS[$i]}" &
  pids+=($!)
done

echo "== starting rvsd (proxy data plane), control socket $RVS_SOCKET"
"$BIN/rvsd" --dataplane proxy --threads 2 2>"$work/rvsd.log" &
pids+=($!)
for _ in $(seq 100); do
  [ -S "$RVS_SOCKET" ] && break
  sleep 0.05
done
[ -S "$RVS_SOCKET" ] || { cat "$work/rvsd.log" >&2; echo "rvsd did not start" >&2; exit 1; }

echo "== configuring it the ipvsadm way"
rvsadm -A -t "$VIP" -s "$SCHED"
for i in 0 1 2; do
  rvsadm -a -t "$VIP" -r "${RS[$i]}" -m -w "${WEIGHTS[$i]}"
done
rvsadm -Ln

echo
echo "== $REQUESTS HTTP requests to $VIP, a new connection each"
"$BIN/rvs-lab" load --target "$VIP" -n "$REQUESTS" -c 4
echo
rvsadm -Ln --stats
echo
echo "== quiesce rs3 (weight 0): it gets no new connections"
rvsadm -e -t "$VIP" -r "${RS[2]}" -m -w 0
"$BIN/rvs-lab" load --target "$VIP" -n $((REQUESTS / 3)) -c 4
sleep 2.2 # one rate-estimator period
echo
rvsadm -Ln --rate
echo
echo "rvsd log: $(grep -c . "$work/rvsd.log") lines; demo done."
