#!/usr/bin/env bash
# rvs quickstart: a director balancing real traffic.
#
# Starts three real servers (HTTP, each answering with its name), rvsd, configures a
# virtual service with rvsadm exactly as with ipvsadm, sends traffic, and prints
# `rvsadm -Ln --stats` and which server answered how often.
#
# Two labs, picked by RVS_DEMO_DATAPLANE (default auto):
#   xdp    as root: LVS/DR with the XDP data plane in network namespaces it creates (a
#          client, a director and three real servers on one Ethernet segment); the real
#          servers answer the client directly, as in the LVS documents.
#   proxy  no root needed: the proxy data plane on loopback addresses (127.80.0.0/16).
#   auto   xdp when running as root with BPF available, proxy otherwise.
#
# Environment: RVS_DEMO_REQUESTS (default 900), RVS_DEMO_SCHED (default wrr).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

REQUESTS=${RVS_DEMO_REQUESTS:-900}
SCHED=${RVS_DEMO_SCHED:-wrr}
WEIGHTS=(3 2 1)
MODE=${RVS_DEMO_DATAPLANE:-auto}

if ! command -v cargo >/dev/null; then
  echo "rvs demo: cargo is needed (Rust 1.95): https://rustup.rs" >&2
  exit 1
fi

xdp_possible() {
  [ "$(id -u)" -eq 0 ] && [ -r /sys/kernel/btf/vmlinux ] && command -v ip >/dev/null &&
    ip netns add "rvsdemo-probe-$$" 2>/dev/null && ip netns del "rvsdemo-probe-$$"
}
case $MODE in
  auto) if xdp_possible; then MODE=xdp; else MODE=proxy; fi ;;
  xdp) xdp_possible || { echo "rvs demo: the XDP lab needs root, BTF and network namespaces" >&2; exit 1; } ;;
  proxy) ;;
  *) echo "rvs demo: RVS_DEMO_DATAPLANE must be auto, xdp or proxy" >&2; exit 2 ;;
esac

# rvsd also carries the XDP plane: building it needs clang and the libbpf headers.
if [ "$(id -u)" -eq 0 ]; then
  rvs_install_deps
else
  missing=$(rvs_missing_packages | tr ' ' '\n' | grep -xE 'clang|llvm|libbpf-dev' | tr '\n' ' ' || true)
  if [ -n "${missing// /}" ] && ! command -v clang >/dev/null; then
    echo "rvs demo: building rvsd needs: $missing" >&2
    echo "rvs demo: install them with: sudo apt-get install -y $missing" >&2
    exit 1
  fi
fi

echo "== building rvsd, rvsadm, rvs-rs and the demo kit (release)"
cargo build --release -q -p rvsd -p rvsadm -p rvs-testkit -p rvs-rs
BIN=$PWD/target/release

work=$(mktemp -d /tmp/rvs-demo.XXXXXX)
export RVS_SOCKET=$work/rvsd.sock
pids=()
NS=()
P=rvsdemo$$
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "${NS[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  [ "$MODE" = xdp ] && rm -rf "/sys/fs/bpf/$P" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# on NODE CMD...: runs CMD in the lab node's namespace (xdp lab) or here (proxy lab).
on() {
  local node=$1
  shift
  if [ "$MODE" = xdp ]; then ip netns exec "$P-$node" "$@"; else "$@"; fi
}

# Runs rvsadm on the director, showing the command as an operator would type it.
rvsadm() {
  echo "# rvsadm $*"
  on d "$BIN/rvsadm" "$@"
}

wait_socket() {
  for _ in $(seq 100); do
    [ -S "$RVS_SOCKET" ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  cat "$work/rvsd.log" >&2
  echo "rvs demo: rvsd did not start" >&2
  exit 1
}

if [ "$MODE" = proxy ]; then
  VIP=127.80.0.1:8080
  RS=(127.80.0.11:8080 127.80.0.12:8080 127.80.0.13:8080)
  FWD=-m
  echo "== proxy lab on loopback: 3 real servers ${RS[*]}"
  for i in 0 1 2; do
    "$BIN/rvs-lab" backend --name "rs$((i + 1))" --listen "${RS[$i]}" &
    pids+=($!)
  done
  echo "== starting rvsd (proxy data plane), control socket $RVS_SOCKET"
  "$BIN/rvsd" --dataplane proxy --threads 2 2>"$work/rvsd.log" &
  pids+=($!)
  wait_socket
else
  VIP=10.213.0.100:80
  RS=(10.213.0.11:80 10.213.0.12:80 10.213.0.13:80)
  FWD=-g
  echo "== XDP lab: namespaces $P-{client,d,rs1,rs2,rs3} on one segment (bridge in $P-sw)"
  for n in sw client d rs1 rs2 rs3; do
    ip netns add "$P-$n"
    NS+=("$P-$n")
    ip -n "$P-$n" link set lo up
  done
  ip -n "$P-sw" link add br0 type bridge
  ip -n "$P-sw" link set br0 up
  port() { # port NODE IFNAME ADDR
    ip link add "$2" netns "$P-$1" type veth peer name "p-$1" netns "$P-sw"
    ip -n "$P-sw" link set "p-$1" master br0 up
    ip -n "$P-$1" addr add "$3" dev "$2"
    ip -n "$P-$1" link set "$2" up
  }
  port client eth0 10.213.0.2/24
  port d d0 10.213.0.1/24
  ip -n "$P-d" addr add "${VIP%:*}/32" dev d0 # the director answers ARP for the VIP
  for i in 1 2 3; do port "rs$i" eth0 "10.213.0.1$i/24"; done
  echo "== real servers: VIP on lo and the ARP settings of LVS/DR (rvs-rs dr start)"
  for i in 1 2 3; do
    on "rs$i" "$BIN/rvs-rs" --state "$work/rs$i.state" dr start --vip "${VIP%:*}"
    on "rs$i" "$BIN/rvs-lab" backend --name "rs$i" --listen "0.0.0.0:80" &
    pids+=($!)
  done
  echo "== starting rvsd (XDP data plane on d0, generic mode), control socket $RVS_SOCKET"
  on d "$BIN/rvsd" --dataplane xdp --interface d0 --xdp-mode generic \
    --xdp-pin-dir "/sys/fs/bpf/$P" --xdp-detach-on-exit 2>"$work/rvsd.log" &
  pids+=($!)
  wait_socket
fi

echo "== configuring it the ipvsadm way"
rvsadm -A -t "$VIP" -s "$SCHED"
for i in 0 1 2; do
  rvsadm -a -t "$VIP" -r "${RS[$i]}" "$FWD" -w "${WEIGHTS[$i]}"
done
rvsadm -Ln

echo
echo "== $REQUESTS HTTP requests to $VIP, a new connection each"
on client "$BIN/rvs-lab" load --target "$VIP" -n "$REQUESTS" -c 4
echo
# The XDP plane's per-CPU counters are added to the table every second.
[ "$MODE" = xdp ] && sleep 1.2
rvsadm -Ln --stats
if [ "$MODE" = xdp ]; then
  echo
  echo "== the director's packet counts (replies went from the real servers to the client)"
  on d "$BIN/rvsadm" --status | grep -E 'xdp\.(mode|interface|reason\.(forwarded|no_conn|not_vip))' || true
fi
echo
echo "== quiesce rs3 (weight 0): it gets no new connections"
rvsadm -e -t "$VIP" -r "${RS[2]}" "$FWD" -w 0
on client "$BIN/rvs-lab" load --target "$VIP" -n $((REQUESTS / 3)) -c 4
sleep 2.2 # one rate-estimator period
echo
rvsadm -Ln --rate
if [ "$MODE" = xdp ]; then
  for i in 1 2 3; do on "rs$i" "$BIN/rvs-rs" --state "$work/rs$i.state" stop >/dev/null; done
fi
echo
echo "rvsd log: $(grep -c . "$work/rvsd.log") lines; demo done ($MODE lab)."
