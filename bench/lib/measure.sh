# shellcheck shell=bash
# The measures: wrk (new connections/s with Connection: close, keepalive requests/s, both
# with latency percentiles), iperf3 with 1 and 4 streams, and the balancer's CPU time and
# memory. Every run is bounded by `timeout`; raw outputs stay under $RUN.

CLK_TCK=$(getconf CLK_TCK)

# record ROUND CONTENDER METRIC VALUE
record() {
    echo "$1,$2,$3,$4" >>"$CSV"
}

# The balancer's processes: its main PID and that PID's children (nginx workers).
bal_pids() {
    [[ -n ${BAL_PID:-} ]] || return 0
    echo "$BAL_PID"
    pgrep -P "$BAL_PID" || true
}

# Sum of a /proc/PID/status or smaps_rollup field (kB) over the balancer's processes.
bal_mem_kib() {
    local file=$1 field=$2 pid total=0 v
    for pid in $(bal_pids); do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/$file" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# CPU time (user + system, all threads) of the balancer's processes, in clock ticks.
bal_cpu_ticks() {
    local pid total=0 v
    for pid in $(bal_pids); do
        # Fields 14 and 15 of /proc/PID/stat; the command (field 2) has no spaces here.
        v=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + v))
    done
    echo "$total"
}

# wrk_parse FILE KEY — requests/sec, total requests, p50/p99 in ms, or error count.
wrk_parse() {
    awk -v key="$2" '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            return v + 0
        }
        /^Requests\/sec:/                 { rps = $2 }
        / requests in /                   { total = $1 }
        $1 == "50%" && !seen50            { p50 = ms($2); seen50 = 1 }
        $1 == "99%" && !seen99            { p99 = ms($2); seen99 = 1 }
        /^ *Socket errors:/               { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
        /^ *Non-2xx or 3xx responses:/    { err += $NF }
        END {
            if (key == "rps") print rps + 0
            else if (key == "total") print total + 0
            else if (key == "p50") printf "%.3f\n", p50
            else if (key == "p99") printf "%.3f\n", p99
            else if (key == "err") print err + 0
        }' "$1"
}

# wrk_run ROUND CONTENDER MODE(close|ka)
wrk_run() {
    local round=$1 c=$2 mode=$3 out t0 t1 total
    local args=(-t"$LOAD_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency --timeout 5s)
    [[ $mode == close ]] && args+=(-H 'Connection: close')
    out="$RUN/wrk-r$round-$c-$mode.txt"
    t0=$(bal_cpu_ticks)
    timeout $((DURATION + 20)) ip netns exec "$NS_C" taskset -c "$CPU_LOAD" \
        wrk "${args[@]}" "http://$WEB_HOST/" >"$out" 2>&1 || warn "wrk $c $mode failed (see $out)"
    t1=$(bal_cpu_ticks)
    total=$(wrk_parse "$out" total)
    if [[ $mode == close ]]; then
        record "$round" "$c" conn_s "$(wrk_parse "$out" rps)"
    else
        record "$round" "$c" ka_rps "$(wrk_parse "$out" rps)"
    fi
    record "$round" "$c" "${mode}_p50_ms" "$(wrk_parse "$out" p50)"
    record "$round" "$c" "${mode}_p99_ms" "$(wrk_parse "$out" p99)"
    record "$round" "$c" "${mode}_errors" "$(wrk_parse "$out" err)"
    if [[ -n ${BAL_PID:-} && $total -gt 0 ]]; then
        record "$round" "$c" "${mode}_cpu_us" "$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$total" \
            'BEGIN { printf "%.2f\n", d * 1e6 / hz / n }')"
    fi
}

# iperf_run ROUND CONTENDER STREAMS [SUFFIX]
iperf_run() {
    local round=$1 c=$2 streams=$3 suffix=${4:-} out gbps
    out="$RUN/iperf-r$round-$c-P$streams$suffix.json"
    timeout $((DURATION + 20)) ip netns exec "$NS_C" taskset -c "$CPU_LOAD" \
        iperf3 -c "$PERF_HOST" -p "$IPERF_PORT" -t "$DURATION" -P "$streams" -J \
        --connect-timeout 3000 >"$out" 2>&1 || warn "iperf3 $c -P $streams failed (see $out)"
    gbps=$(python3 - "$out" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    print(f"{d['end']['sum_received']['bits_per_second'] / 1e9:.3f}")
except Exception:
    print("")
EOF
)
    [[ -n $gbps ]] && record "$round" "$c" "tput${streams}${suffix}_gbps" "$gbps"
}

# The same with wire-sized segments: TSO off where the client sends, whatever the
# contender set, then put back as it was. On veth every stack path (direct, nftables, the
# proxies) otherwise moves 64 KiB TSO packets, which XDP cannot take whole (docs/xdp.md,
# Limits); on a real NIC every balancer sees frames. This run compares them on that footing.
iperf_wire_run() {
    local round=$1 c=$2 streams=$3 was
    was=$(ns "$NS_C" ethtool -k c0 2>/dev/null | awk '/^tcp-segmentation-offload:/ { print $2 }')
    ns "$NS_C" ethtool -K c0 tso off >/dev/null 2>&1 || true
    iperf_run "$round" "$c" "$streams" w
    [[ $was == on ]] && ns "$NS_C" ethtool -K c0 tso on >/dev/null 2>&1 || true
}

# One contender, one round: everything measured in the same order each time.
measure_contender() {
    local round=$1 c=$2
    # A short warm-up so the first measure does not pay for cold caches and lazy set-up.
    timeout 10 ip netns exec "$NS_C" taskset -c "$CPU_LOAD" \
        wrk -t"$LOAD_THREADS" -c"$WRK_CONNS" -d1s "http://$WEB_HOST/" >/dev/null 2>&1 || true
    wrk_run "$round" "$c" close
    settle
    wrk_run "$round" "$c" ka
    settle
    iperf_run "$round" "$c" 1
    settle
    iperf_run "$round" "$c" 4
    settle
    iperf_wire_run "$round" "$c" 4
    if [[ -n ${BAL_PID:-} ]]; then
        record "$round" "$c" rss_mib "$(awk -v k="$(bal_mem_kib smaps_rollup Pss)" 'BEGIN { printf "%.1f\n", k / 1024 }')"
        record "$round" "$c" peak_rss_mib "$(awk -v k="$(bal_mem_kib status VmHWM)" 'BEGIN { printf "%.1f\n", k / 1024 }')"
    fi
}

# Idle connections through a balancer: PSS after − PSS before, per connection, once with
# connections that never carried a byte and once after one request/response on each.
idle_memory() {
    local c=$1 n=$2
    local dir="$RUN/idle-$c" before after_fresh after_warm pid i est=0
    mkdir -p "$dir"
    before=$(bal_mem_kib smaps_rollup Pss)
    ip netns exec "$NS_C" taskset -c "$CPU_LOAD" python3 "$BENCH/idle_conns.py" \
        --host "$WEB_HOST" --port 80 --count "$n" --status "$dir/status" --go "$dir/go" \
        --hold 120 >"$dir/idle.out" 2>&1 &
    pid=$!
    track_pid "$pid"
    wait_file_word "$dir/status" fresh 60 || { warn "idle $c: connections not opened (see $dir/idle.out)"; kill "$pid" 2>/dev/null; return 0; }
    # Wait until the balancer has connected every one of them to a real server.
    for ((i = 0; i < 100; i++)); do
        est=$(ns "$NS_D" ss -Htn state established "( dport = :80 )" | wc -l)
        ((est >= n)) && break
        sleep 0.2
    done
    sleep 1
    after_fresh=$(bal_mem_kib smaps_rollup Pss)
    touch "$dir/go"
    wait_file_word "$dir/status" warm 60 || warn "idle $c: warm phase did not finish (see $dir/idle.out)"
    sleep 1
    after_warm=$(bal_mem_kib smaps_rollup Pss)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    record idle "$c" idle_conns "$n"
    record idle "$c" idle_upstream_established "$est"
    record idle "$c" idle_kib_per_conn "$(awk -v a="$after_fresh" -v b="$before" -v n="$n" 'BEGIN { printf "%.2f\n", (a - b) / n }')"
    record idle "$c" warm_kib_per_conn "$(awk -v a="$after_warm" -v b="$before" -v n="$n" 'BEGIN { printf "%.2f\n", (a - b) / n }')"
    log "idle $c: $n conns, upstream established $est, PSS $before → $after_fresh (fresh) → $after_warm KiB (after one request each)"
}
