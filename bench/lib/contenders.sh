# shellcheck shell=bash
# The contenders. Each is one function `contender_<name> start|stop`:
#   start: bring the balancer up in the director namespace, pinned by `spawn bal ...`,
#          register its main PID with `bal_set`, set WEB_HOST and PERF_HOST (where wrk
#          and iperf3 aim) and return once it forwards;
#   stop:  undo everything start did (processes by PID, rules).
# A new contender (e.g. rvs XDP NAT/DR/TUN) is one more such function plus its name in
# ALL_CONTENDERS (run.sh) and a label in CONTENDER_LABEL.
#
# Every balancer gets the same CPU budget: BAL_THREADS threads or processes.

# WEB_HOST and PERF_HOST are read by measure.sh, CONTENDER_LABEL by run.sh.
# shellcheck disable=SC2034

declare -gA CONTENDER_LABEL=(
    [direct]="direct (routed, no balancer)"
    [nft]="nftables DNAT"
    [haproxy]="HAProxy tcp"
    [haproxy_splice]="HAProxy tcp, splice-auto"
    [nginx]="nginx stream"
    [rvs_splice]="rvs proxy (splice)"
    [rvs_copy]="rvs proxy (copy)"
)

# Client → first real server, the director only routing: the ceiling.
contender_direct() {
    case $1 in
        start)
            WEB_HOST=${SERVER_IPS[0]}
            PERF_HOST=${SERVER_IPS[0]}
            ;;
        stop) ;;
    esac
}

# The same route with an XDP program that passes everything on d0, in generic mode, and
# the client's TSO off, as for the rvs XDP contenders: what the XDP hook alone costs in
# this lab (generic XDP copies every veth packet it sees), i.e. the ceiling of any XDP
# balancer here. The program is bpf/xdp_pass.c, compiled into the run directory.
CONTENDER_LABEL[direct_xdp]="direct + XDP_PASS hook (generic)"
contender_direct_xdp() {
    local obj="$RUN/xdp_pass.o" inc
    case $1 in
        start)
            if [[ ! -f $obj ]]; then
                inc=/usr/include/$(uname -m)-linux-gnu
                clang -O2 -target bpf -I "$inc" -c "$ROOT/bpf/xdp_pass.c" -o "$obj" ||
                    { warn "cannot compile bpf/xdp_pass.c (clang, libbpf-dev)"; return 1; }
            fi
            ns "$NS_D" ip link set dev d0 xdpgeneric obj "$obj" sec xdp || return 1
            mapfile -t XDP_SENDERS < <(xdp_senders dr)
            xdp_tso off "${XDP_SENDERS[@]}"
            WEB_HOST=${SERVER_IPS[0]}
            PERF_HOST=${SERVER_IPS[0]}
            ;;
        stop)
            ns "$NS_D" ip link set dev d0 xdpgeneric off 2>/dev/null || true
            xdp_tso on "${XDP_SENDERS[@]}"
            ;;
    esac
}

# Kernel DNAT in the director, round robin via numgen; replies are un-NATed by conntrack
# on their way back (servers route via the director), so no masquerade is needed.
contender_nft() {
    case $1 in
        start)
            local map="" i
            for i in "${!SERVER_IPS[@]}"; do
                map+="${map:+, }$i : ${SERVER_IPS[$i]}"
            done
            ns "$NS_D" nft -f - <<EOF || return 1
table ip rvsbench {
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport 80 dnat to numgen inc mod ${#SERVER_IPS[@]} map { $map }
        ip daddr $VIP tcp dport $IPERF_PORT dnat to ${SERVER_IPS[0]}
    }
}
EOF
            WEB_HOST=$VIP
            PERF_HOST=$VIP
            wait_forwarding || return 1
            ;;
        stop)
            ns "$NS_D" nft delete table ip rvsbench 2>/dev/null || true
            ;;
    esac
}

# haproxy_start NAME [DEFAULTS-LINE...] — HAProxy in tcp mode, nbthread = BAL_THREADS.
haproxy_start() {
    local dir="$RUN/$1" i line
    shift
    mkdir -p "$dir"
    {
        cat <<EOF
global
    nbthread $BAL_THREADS
    # Two descriptors per connection, with splicing a pipe (two more) per fourth, slack.
    maxconn $((FD_LIMIT / 3))
    pidfile $dir/haproxy.pid
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
EOF
        for line in "$@"; do
            echo "    $line"
        done
        cat <<EOF
frontend web
    bind $VIP:80
    default_backend web
backend web
    balance roundrobin
EOF
        for i in "${!SERVER_IPS[@]}"; do
            echo "    server s$((i + 1)) ${SERVER_IPS[$i]}:80"
        done
        cat <<EOF
frontend perf
    bind $VIP:$IPERF_PORT
    default_backend perf
backend perf
    server s1 ${SERVER_IPS[0]}:$IPERF_PORT
EOF
    } >"$dir/haproxy.cfg"
    spawn bal "$NS_D" "$dir/haproxy.out" haproxy -db -f "$dir/haproxy.cfg"
    bal_set "$SPAWNED"
    WEB_HOST=$VIP
    PERF_HOST=$VIP
    wait_forwarding || { warn "haproxy did not start (see $dir/haproxy.out)"; return 1; }
}

# HAProxy as most deployments run it: defaults, payload copied through user space.
contender_haproxy() {
    case $1 in
        start) haproxy_start haproxy ;;
        stop) bal_stop ;;
    esac
}

# HAProxy with kernel splicing where it judges it pays, the like of rvs's splice mode.
contender_haproxy_splice() {
    case $1 in
        start) haproxy_start haproxy-splice "option splice-auto" ;;
        stop) bal_stop ;;
    esac
}

# nginx stream module, from the same nginx package (libnginx-mod-stream).
contender_nginx() {
    case $1 in
        start)
            local dir="$RUN/nginx-lb" i
            mkdir -p "$dir"
            {
                cat <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user root;
worker_processes $BAL_THREADS;
worker_rlimit_nofile $FD_LIMIT;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $MAX_CONNS; multi_accept on; }
stream {
    upstream web {
EOF
                for i in "${!SERVER_IPS[@]}"; do
                    echo "        server ${SERVER_IPS[$i]}:80;"
                done
                cat <<EOF
    }
    upstream perf { server ${SERVER_IPS[0]}:$IPERF_PORT; }
    proxy_timeout 300s;
    server { listen $VIP:80 reuseport backlog=4096; proxy_pass web; }
    server { listen $VIP:$IPERF_PORT; proxy_pass perf; }
}
EOF
            } >"$dir/nginx.conf"
            spawn bal "$NS_D" "$dir/nginx.out" nginx -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
            bal_set "$SPAWNED"
            WEB_HOST=$VIP
            PERF_HOST=$VIP
            wait_forwarding || { warn "nginx stream did not start (see $dir/error.log)"; return 1; }
            ;;
        stop) bal_stop ;;
    esac
}

# rvs_start TRANSFER — rvsd's proxy data plane configured from an ipvsadm -S file.
rvs_start() {
    local transfer=$1 dir="$RUN/rvsd-$1" i
    mkdir -p "$dir"
    {
        echo "-A -t $VIP:80 -s rr"
        for i in "${!SERVER_IPS[@]}"; do
            echo "-a -t $VIP:80 -r ${SERVER_IPS[$i]}:80 -m -w 1"
        done
        echo "-A -t $VIP:$IPERF_PORT -s rr"
        echo "-a -t $VIP:$IPERF_PORT -r ${SERVER_IPS[0]}:$IPERF_PORT -m -w 1"
    } >"$dir/rules"
    spawn bal "$NS_D" "$dir/rvsd.out" env RUST_LOG="${RUST_LOG:-warn}" "$RVSD" \
        --socket "$dir/rvsd.sock" --dataplane proxy --threads 1 \
        --proxy-workers "$BAL_THREADS" --proxy-transfer "$transfer" \
        --restore "$dir/rules" ${RVSD_EXTRA_ARGS:-}
    bal_set "$SPAWNED"
    WEB_HOST=$VIP
    PERF_HOST=$VIP
    wait_forwarding || { warn "rvsd ($transfer) did not start (see $dir/rvsd.out)"; return 1; }
}

contender_rvs_splice() {
    case $1 in
        start) rvs_start splice ;;
        stop) bal_stop ;;
    esac
}

contender_rvs_copy() {
    case $1 in
        start) rvs_start copy ;;
        stop) bal_stop ;;
    esac
}

# --- rvs XDP data plane (crates/rvs-xdp) ---------------------------------------------
# Both run rvsd --dataplane xdp in generic mode: the servers hang off a bridge (br0) in
# the director namespace, and a bridge has no native XDP. The balancer CPU recorded for
# them is rvsd's control work only (see xdp_rvsd_start); the daemon is stopped by its own
# PID.
CONTENDER_LABEL[rvs_xdp_nat]="rvs XDP NAT (generic)"
CONTENDER_LABEL[rvs_xdp_dr]="rvs XDP DR (generic)"
XDP_SENDERS=()
XDP_DR_NGINX=()

# xdp_rvsd_start NAME METHOD IFACE... — rvsd with the web and iperf3 services, METHOD -m/-g.
xdp_rvsd_start() {
    local name=$1 method=$2 dir="$RUN/rvsd-$1" i
    shift 2
    mkdir -p "$dir"
    {
        echo "-A -t $VIP:80 -s rr"
        for i in "${!SERVER_IPS[@]}"; do
            echo "-a -t $VIP:80 -r ${SERVER_IPS[$i]}:80 $method -w 1"
        done
        echo "-A -t $VIP:$IPERF_PORT -s rr"
        echo "-a -t $VIP:$IPERF_PORT -r ${SERVER_IPS[0]}:$IPERF_PORT $method -w 1"
    } >"$dir/rules"
    local ifargs=() ifc
    for ifc in "$@"; do
        ifargs+=(--interface "$ifc")
    done
    spawn bal "$NS_D" "$dir/rvsd.out" env RUST_LOG="${RUST_LOG:-warn}" "$RVSD" \
        --socket "$dir/rvsd.sock" --dataplane xdp "${ifargs[@]}" --xdp-mode generic \
        --xdp-pin-dir "/sys/fs/bpf/rvs-bench-$name" --xdp-detach-on-exit --restore "$dir/rules"
    XDP_RVSD_PID=$SPAWNED
    WEB_HOST=$VIP
    PERF_HOST=$VIP
    wait_forwarding || { warn "rvsd xdp ($name) did not forward (see $dir/rvsd.out)"; return 1; }
    # from here on rvsd's own CPU and memory are recorded as the balancer's: its control
    # work (expiry sweeps, counters, neighbours), not the packet path, which runs in the
    # kernel's receive path and shows as throughput
    bal_set "$XDP_RVSD_PID"
}

xdp_rvsd_stop() {
    BAL_PID=""
    [[ -n ${XDP_RVSD_PID:-} ]] || return 0
    # what the program did in this round, drop reasons included (rvsd's outcome counters)
    ns "$NS_D" "$RVSADM" --socket "$RUN/rvsd-$1/rvsd.sock" --status >"$RUN/rvsd-$1/status-$(date +%s).txt" 2>&1 || true
    kill "$XDP_RVSD_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$XDP_RVSD_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$XDP_RVSD_PID" 2>/dev/null || true
    wait "$XDP_RVSD_PID" 2>/dev/null || true
    XDP_RVSD_PID=""
}

# xdp_tso on|off NS:IF... — TSO where traffic enters the director. Generic XDP sees a
# veth peer's TSO packets whole (up to 64 KiB), and the kernel will not redirect those to
# another interface (rvsd counts them as xdp.reason.oversize; docs/xdp.md, Limits): the
# senders segment instead while an XDP contender runs.
xdp_tso() {
    local state=$1 x
    shift
    for x in "$@"; do
        ns "${x%%:*}" ethtool -K "${x#*:}" tso "$state" >/dev/null 2>&1 || true
    done
}

# The client's link and, for NAT (replies cross XDP too), every server's.
xdp_senders() {
    local s
    echo "$NS_C:c0"
    if [[ $1 == nat ]]; then
        for s in "${NS_S[@]}"; do
            echo "$s:eth0"
        done
    fi
}

# NAT: XDP on d0 (clients) and br0 (replies routed back via the director), both ways.
contender_rvs_xdp_nat() {
    case $1 in
        start)
            mapfile -t XDP_SENDERS < <(xdp_senders nat)
            xdp_tso off "${XDP_SENDERS[@]}"
            xdp_rvsd_start nat -m d0 br0
            ;;
        stop)
            xdp_rvsd_stop nat
            xdp_tso on "${XDP_SENDERS[@]}"
            ;;
    esac
}

# DR: XDP on d0 only; each server gets the VIP on lo (rvs-rs dr start) and an nginx on
# VIP:80 (the topology's nginx listens on its own address only). Servers reach clients
# only through the director here, so replies are routed by the director's kernel (sources
# are the VIP, a local address there: br0 accepts them with accept_local).
contender_rvs_xdp_dr() {
    local rvs_rs=${RVS_RS:-$ROOT/target/release/rvs-rs} i s dir
    case $1 in
        start)
            [[ -x $rvs_rs ]] || { warn "$rvs_rs not built (cargo build --release -p rvs-rs)"; return 1; }
            ns "$NS_D" sysctl -qw net.ipv4.conf.br0.accept_local=1 net.ipv4.conf.br0.rp_filter=0 net.ipv4.conf.all.rp_filter=0
            for i in "${!NS_S[@]}"; do
                s=${NS_S[$i]}
                dir="$RUN/$s-dr"
                mkdir -p "$dir/tmp"
                ns "$s" "$rvs_rs" --state "$dir/rvs-rs.state" dr start --vip "$VIP" >/dev/null || return 1
                sed -e "s|listen ${SERVER_IPS[$i]}:80|listen $VIP:80|" -e "s|pid .*;|pid $dir/nginx.pid;|" \
                    -e "s|error_log .*|error_log $dir/error.log warn;|" "$RUN/$s/nginx.conf" >"$dir/nginx.conf"
                spawn other "$s" "$dir/nginx.out" nginx -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
                XDP_DR_NGINX+=("$SPAWNED")
                wait_port "$s" "$VIP" 80 || { warn "nginx on $VIP in $s did not start"; return 1; }
            done
            mapfile -t XDP_SENDERS < <(xdp_senders dr)
            xdp_tso off "${XDP_SENDERS[@]}"
            xdp_rvsd_start dr -g d0
            ;;
        stop)
            xdp_rvsd_stop dr
            xdp_tso on "${XDP_SENDERS[@]}"
            for i in "${XDP_DR_NGINX[@]:-}"; do
                [[ -n $i ]] && kill "$i" 2>/dev/null
            done
            XDP_DR_NGINX=()
            for i in "${!NS_S[@]}"; do
                s=${NS_S[$i]}
                [[ -f $RUN/$s-dr/rvs-rs.state ]] && ns "$s" "$rvs_rs" --state "$RUN/$s-dr/rvs-rs.state" stop >/dev/null
            done
            ns "$NS_D" sysctl -qw net.ipv4.conf.br0.accept_local=0 2>/dev/null || true
            ;;
    esac
}
