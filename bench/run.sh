#!/usr/bin/env bash
# rvs benchmark harness: a client, a director and real servers in network namespaces this
# script creates and deletes itself; each contender balancer in turn on the director; wrk
# and iperf3 from the client. Results: bench/out/<stamp>/{raw.csv,results.md}, printed.
# See docs/bench.md for the method and the committed results.
#
# Usage: bench/run.sh [--quick] [--rounds N] [--duration S] [--contenders a,b,...]
#                     [--idle-conns N] [--pin shared|split]
# Environment: ROUNDS, DURATION, CONTENDERS, IDLE_CONNS, IDLE_CONTENDERS, PIN, WRK_CONNS,
#              BAL_THREADS, LOAD_THREADS, NSERVERS, RVSD, RVSD_EXTRA_ARGS,
#              MAX_LOAD, LOAD_WAIT, QUIET_PCT, QUIET_WAIT, QUIET_BUDGET, SETTLE.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
COMMAND_LINE="bench/run.sh${*:+ $*}"

ALL_CONTENDERS=(direct direct_xdp nft haproxy haproxy_splice nginx rvs_splice rvs_copy rvs_xdp_nat rvs_xdp_dr)

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONTENDERS=${CONTENDERS:-$(
    IFS=,
    echo "${ALL_CONTENDERS[*]}"
)}
IDLE_CONNS=${IDLE_CONNS:-5000}
IDLE_CONTENDERS=${IDLE_CONTENDERS:-rvs_splice,rvs_copy,haproxy,nginx}
PIN=${PIN:-shared}
WRK_CONNS=${WRK_CONNS:-64}
BAL_THREADS=${BAL_THREADS:-2}
LOAD_THREADS=${LOAD_THREADS:-2}
NSERVERS=${NSERVERS:-2}
RVSD=${RVSD:-$ROOT/target/release/rvsd}
MAX_LOAD=${MAX_LOAD:-1.0} # wait for the 1-minute load average to drop below this...
LOAD_WAIT=${LOAD_WAIT:-600} # ...for at most this many seconds, then run anyway
SETTLE=${SETTLE:-1}
QUIET_PCT=${QUIET_PCT:-10} # before each contender, wait until others use at most this % of the CPUs,
QUIET_WAIT=${QUIET_WAIT:-90} # for at most this many seconds each time,
QUIET_BUDGET=${QUIET_BUDGET:-900} # and this many in all

usage() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

while (($#)); do
    case $1 in
        --quick)
            ROUNDS=1
            DURATION=2
            IDLE_CONNS=1000
            ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --contenders) CONTENDERS=$2; shift ;;
        --idle-conns) IDLE_CONNS=$2; shift ;;
        --pin) PIN=$2; shift ;;
        -h | --help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
    shift
done

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
warn() { log "WARNING: $*"; }
die() {
    log "ERROR: $*"
    exit 1
}

P="rvsb$$-"
NAMESPACES=()
PIDS=()
BAL_PID=""
CURRENT=""
ROUND_LOADS=""
QUIET_SPENT=0

# shellcheck source=SCRIPTDIR/lib/topo.sh
source "$BENCH/lib/topo.sh"
# shellcheck source=SCRIPTDIR/lib/servers.sh
source "$BENCH/lib/servers.sh"
# shellcheck source=SCRIPTDIR/lib/contenders.sh
source "$BENCH/lib/contenders.sh"
# shellcheck source=SCRIPTDIR/lib/measure.sh
source "$BENCH/lib/measure.sh"

track_pid() { PIDS+=("$1"); }

# spawn ROLE NS LOGFILE CMD... — start CMD in namespace NS on ROLE's CPUs, in the
# background; its PID (the same process: exec all the way down) is in SPAWNED.
spawn() {
    local role=$1 n=$2 logfile=$3 cpus
    shift 3
    case $role in
        bal) cpus=$CPU_BAL ;;
        load) cpus=$CPU_LOAD ;;
        *) cpus=$CPU_OTHER ;;
    esac
    (exec ip netns exec "$n" taskset -c "$cpus" "$@" >"$logfile" 2>&1) &
    SPAWNED=$!
    track_pid "$SPAWNED"
}

bal_set() { BAL_PID=$1; }

# Stops the running balancer by PID: TERM, a bounded wait, then KILL.
bal_stop() {
    [[ -n $BAL_PID ]] || return 0
    local pids i
    pids=$(bal_pids)
    # shellcheck disable=SC2086 # one word per PID
    kill $pids 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$BAL_PID" 2>/dev/null || break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    wait "$BAL_PID" 2>/dev/null || true
    BAL_PID=""
}

# wait_port NS IP PORT — a listener on [IP:]PORT within 10 s.
wait_port() {
    local n=$1 ip=$2 port=$3 i
    for ((i = 0; i < 100; i++)); do
        if ns "$n" ss -Hltn "( sport = :$port )" | grep -q "${ip:+$ip:}$port"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# The balancer answers on the web service within 10 s (and, when it is a process, also
# listens on the iperf3 one: a probe connection would disturb iperf3 -s).
wait_forwarding() {
    local i
    for ((i = 0; i < 50; i++)); do
        if [[ -n $BAL_PID ]] && ! kill -0 "$BAL_PID" 2>/dev/null; then
            return 1
        fi
        if ns "$NS_C" curl -fsS --max-time 1 "http://$WEB_HOST/" 2>/dev/null | grep -q 'real server'; then
            [[ -z $BAL_PID ]] || wait_port "$NS_D" "$VIP" "$IPERF_PORT"
            return
        fi
        sleep 0.2
    done
    return 1
}

# wait_file_word FILE WORD SECONDS
wait_file_word() {
    local f=$1 w=$2 t=$3 i
    for ((i = 0; i < t * 10; i++)); do
        [[ -f $f ]] && [[ $(cut -d' ' -f1 "$f") == "$w" ]] && return 0
        sleep 0.1
    done
    return 1
}

settle() { sleep "$SETTLE"; }

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    set +e
    [[ -n $CURRENT ]] && "contender_$CURRENT" stop
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    topo_down
    if ip netns list | grep -qF "$P"; then
        warn "namespaces left behind: $(ip netns list | grep -F "$P" | tr '\n' ' ')"
    fi
    exit "$rc"
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# The load average counts this benchmark too (it keeps both CPUs busy), so each measure
# also records the CPU time others took: all user+nice+system+steal time (/proc/stat;
# tasks' own times include what the hypervisor stole while they ran; softirq, mostly our
# own packets, is a column apart) minus this run's own — what the shell reaped (wrk,
# iperf3, stopped balancers: `times`) and what still runs in our namespaces. Steal alone
# (other guests on the host) is recorded too.
cpu_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $9 }' /proc/stat; }
cpu_steal_ticks() { awk '/^cpu / { print $9 }' /proc/stat; }

# Sets OWN_TICKS. Not to be called in $(...): a subshell has reaped no children.
own_cpu_sample() {
    local f="$RUN/times" n pid
    times >"$f"
    OWN_TICKS=$(awk -v hz="$CLK_TCK" '{
            for (i = 1; i <= NF; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] }
        } END { printf "%d\n", s * hz }' "$f")
    for n in "${NAMESPACES[@]}"; do
        for pid in $(ip netns pids "$n" 2>/dev/null); do
            OWN_TICKS=$((OWN_TICKS + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
        done
    done
}

# foreign_start / foreign_end ROUND CONTENDER: the others' share of all CPU time while
# one contender was measured, recorded as metric others_cpu_pct.
foreign_start() {
    F_T0=$(date +%s.%N)
    F_BUSY0=$(cpu_busy_ticks)
    F_STEAL0=$(cpu_steal_ticks)
    own_cpu_sample
    F_OWN0=$OWN_TICKS
}

foreign_end() {
    local busy steal t1
    busy=$(($(cpu_busy_ticks) - F_BUSY0))
    steal=$(($(cpu_steal_ticks) - F_STEAL0))
    own_cpu_sample
    t1=$(date +%s.%N)
    record "$1" "$2" others_cpu_pct "$(awk -v t0="$F_T0" -v t1="$t1" \
        -v b="$busy" -v o="$((OWN_TICKS - F_OWN0))" -v hz="$CLK_TCK" -v n="$(nproc)" \
        'BEGIN { f = (b - o) / ((t1 - t0) * hz * n) * 100; printf "%.1f\n", (f < 0 ? 0 : f) }')"
    record "$1" "$2" steal_pct "$(awk -v t0="$F_T0" -v t1="$t1" -v s="$steal" -v hz="$CLK_TCK" \
        -v n="$(nproc)" 'BEGIN { printf "%.1f\n", s / ((t1 - t0) * hz * n) * 100 }')"
}

# Percent of all CPUs busy (any task, softirq included) over two seconds: taken between
# contenders, when only our idle real servers run, it is the others' load.
busy_pct() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    sleep 2
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y); d = y[2] - x[2];
        printf "%.0f\n", (d > 0 ? (y[1] - x[1]) / d * 100 : 0) }'
}

# Waits (every 5 s, at most QUIET_WAIT s each time and QUIET_BUDGET s in all) until the
# others use at most QUIET_PCT % of the machine, so measures fall in quiet moments.
quiet_gate() {
    local pct waited=0
    while pct=$(busy_pct) && ((pct > QUIET_PCT)); do
        if ((waited >= QUIET_WAIT || QUIET_SPENT >= QUIET_BUDGET)); then
            log "    others still use $pct % of the CPUs; measuring anyway"
            return 0
        fi
        ((waited == 0)) && log "    others use $pct % of the CPUs; waiting for a quiet moment"
        sleep 3
        waited=$((waited + 5))
        QUIET_SPENT=$((QUIET_SPENT + 5))
    done
}

wait_for_quiet() {
    local waited=0
    while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l > m) }'; do
        if ((waited >= LOAD_WAIT)); then
            warn "load average still $(load1) after ${LOAD_WAIT}s; running anyway (noted in the results)"
            return 0
        fi
        log "load average $(load1) > $MAX_LOAD (other work on this machine); waiting (${waited}/${LOAD_WAIT}s)"
        sleep 60
        waited=$((waited + 60))
    done
}

preflight() {
    local cmd
    ((EUID == 0)) || die "must run as root (network namespaces)"
    for cmd in ip nft nginx haproxy wrk iperf3 python3 curl ping taskset ss pgrep awk; do
        command -v "$cmd" >/dev/null || die "$cmd not found (apt-get install nginx libnginx-mod-stream haproxy wrk iperf3 nftables curl iputils-ping)"
    done
    [[ -f /usr/lib/nginx/modules/ngx_stream_module.so ]] || die "nginx stream module missing (apt-get install libnginx-mod-stream)"
    if [[ ,$CONTENDERS, == *,rvs_* ]]; then
        [[ -x $RVSD ]] || die "$RVSD not built (cargo build --release -p rvsd)"
        "$RVSD" --help | grep -q -- --restore || die "$RVSD has no --restore"
    fi
    [[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 50 ]] || die "ROUNDS must be 1..50"
    [[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 && $DURATION -le 120 ]] || die "DURATION must be 1..120 s"
    # Raise the open-file limit as far as allowed (without CAP_SYS_RESOURCE, e.g. in a
    # container, the hard limit stays); the balancers are sized from it.
    ulimit -Hn 1048576 2>/dev/null || true
    FD_LIMIT=$(ulimit -Hn)
    [[ $FD_LIMIT == unlimited ]] && FD_LIMIT=1048576
    ulimit -Sn "$FD_LIMIT"
    # A proxied connection holds two descriptors in the balancer.
    MAX_CONNS=$(((FD_LIMIT - 200) / 2))
    if ! [[ $IDLE_CONNS =~ ^[0-9]+$ ]] || ((IDLE_CONNS > MAX_CONNS)); then
        die "IDLE_CONNS must be 0..$MAX_CONNS (open-file limit $FD_LIMIT)"
    fi
}

set_pinning() {
    local n last
    n=$(nproc)
    last=$((n - 1))
    case $PIN in
        shared)
            CPU_BAL="0-$last"
            CPU_LOAD="0-$last"
            CPU_OTHER="0-$last"
            PIN_TEXT="shared: balancer, load generators and real servers all on CPUs 0-$last (taskset)"
            ;;
        split)
            ((n >= 2)) || die "--pin split needs 2 CPUs"
            CPU_BAL="$last"
            CPU_LOAD="0-$((last - 1))"
            CPU_OTHER="0-$((last - 1))"
            PIN_TEXT="split: balancer on CPU $last; load generators and real servers on CPUs 0-$((last - 1)) (taskset)"
            ;;
        *) die "--pin must be shared or split" ;;
    esac
}

write_meta() {
    local f=$1
    {
        echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "nproc=$(nproc)"
        echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
        echo "kernel=$(uname -r)"
        echo "command=$COMMAND_LINE (ROUNDS=$ROUNDS DURATION=$DURATION PIN=$PIN WRK_CONNS=$WRK_CONNS NSERVERS=$NSERVERS)"
        echo "pinning=$PIN_TEXT"
        echo "rounds=$ROUNDS"
        echo "duration=$DURATION"
        echo "wrk_conns=$WRK_CONNS"
        echo "fd_limit=$FD_LIMIT"
        echo "load_threads=$LOAD_THREADS"
        echo "bal_threads=$BAL_THREADS"
        echo "load_before=$LOAD_BEFORE"
        echo "load_after=${LOAD_AFTER:-?}"
        echo "load_rounds=${ROUND_LOADS:-?}"
        echo "quiet=others ≤ $QUIET_PCT % of the CPUs before each contender (waited ${QUIET_SPENT} s in all, budget $QUIET_BUDGET s)"
        for c in "${ALL_CONTENDERS[@]}"; do
            echo "label.$c=${CONTENDER_LABEL[$c]:-$c}"
        done
        echo "rvsd=$("$RVSD" --version 2>/dev/null || echo "not used"), sha256 ${RVSD_SUM:-—}"
        echo "versions=$(haproxy -v | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(iperf3 -v | head -1)"
    } >"$f"
}

main() {
    preflight
    set_pinning
    local stamp contenders=() c i n round idle=()
    IFS=, read -r -a contenders <<<"$CONTENDERS"
    for c in "${contenders[@]}"; do
        declare -F "contender_$c" >/dev/null || die "unknown contender $c (known: ${ALL_CONTENDERS[*]})"
    done
    IFS=, read -r -a idle <<<"$IDLE_CONTENDERS"

    stamp=$(date -u +%Y%m%d-%H%M%S)
    OUT="$BENCH/out/$stamp"
    RUN="$OUT/run"
    CSV="$OUT/raw.csv"
    mkdir -p "$RUN"
    : >"$CSV"
    ln -sfn "$stamp" "$BENCH/out/latest"

    trap cleanup EXIT
    trap 'exit 130' INT TERM

    if [[ ,$CONTENDERS, == *,rvs_* ]]; then
        # A private copy: a rebuild by someone else during the run cannot swap the binary.
        RVSD_BUILT=$RVSD
        cp "$RVSD" "$RUN/rvsd"
        RVSD="$RUN/rvsd"
        RVSD_SUM=$(sha256sum "$RVSD" | cut -c1-16)
        cp "${RVSADM:-$(dirname "$RVSD_BUILT")/rvsadm}" "$RUN/rvsadm"
        RVSADM="$RUN/rvsadm"
    fi
    if [[ ,$CONTENDERS, == *,rvs_xdp_dr,* ]]; then
        cp "${RVS_RS:-$ROOT/target/release/rvs-rs}" "$RUN/rvs-rs"
        RVS_RS="$RUN/rvs-rs"
    fi

    wait_for_quiet
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    log "output in $OUT; $ROUNDS rounds × $DURATION s; contenders: ${contenders[*]}; pinning $PIN"

    topo_up "$NSERVERS"
    servers_up
    log "topology up: ${NAMESPACES[*]}"

    n=${#contenders[@]}
    for ((round = 1; round <= ROUNDS; round++)); do
        log "round $round/$ROUNDS (load $(load1))"
        ROUND_LOADS+="${ROUND_LOADS:+, }$(load1)"
        for ((i = 0; i < n; i++)); do
            # Rotating the order each round spreads any drift (other work, heat) over all.
            c=${contenders[$(((i + round - 1) % n))]}
            quiet_gate
            log "  $c"
            CURRENT=$c
            foreign_start
            if ! "contender_$c" start; then
                warn "$c did not start; skipped this round"
                "contender_$c" stop
                CURRENT=""
                continue
            fi
            measure_contender "$round" "$c"
            "contender_$c" stop
            CURRENT=""
            foreign_end "$round" "$c"
            settle
        done
    done

    if ((IDLE_CONNS > 0)); then
        for c in "${idle[@]}"; do
            [[ ,$CONTENDERS, == *,$c,* ]] || continue
            log "idle connections: $c × $IDLE_CONNS"
            CURRENT=$c
            if "contender_$c" start; then
                idle_memory "$c" "$IDLE_CONNS"
            else
                warn "$c did not start for the idle test"
            fi
            "contender_$c" stop
            CURRENT=""
            settle
        done
    fi

    LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
    write_meta "$OUT/meta.txt"
    python3 "$BENCH/lib/summarize.py" "$CSV" "$OUT/meta.txt" >"$OUT/results.md"
    echo
    cat "$OUT/results.md"
    echo
    log "raw numbers: $CSV; results: $OUT/results.md"
}

main
