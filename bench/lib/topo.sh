# shellcheck shell=bash
# The benchmark's private network: namespaces it creates and deletes itself.
#
#   client ns              director ns                         server ns (one per server)
#   c0 10.98.0.1/24 ---- d0 10.98.0.254/24 + VIP 10.98.0.100
#                          br0 10.99.0.254/24 --+-- sN  ---- eth0 10.99.0.1N/24
#                                               (bridge ports, one per server)
#
# Every link is created inside a namespace (never in the host's), every name carries the
# run's prefix $P, and teardown deletes namespaces by name, so no traffic can reach the
# host's interfaces and nothing survives the run.

CLIENT_SUBNET=10.98.0
SERVER_SUBNET=10.99.0
CLIENT_IP=$CLIENT_SUBNET.1
DIR_CLIENT_IP=$CLIENT_SUBNET.254
VIP=$CLIENT_SUBNET.100
DIR_SERVER_IP=$SERVER_SUBNET.254

NS_C="${P}c"
NS_D="${P}d"
NS_S=()      # server namespaces, filled by topo_up
SERVER_IPS=() # their addresses, same order

# ns NAME CMD... — run a command inside one of our namespaces.
ns() {
    local n=$1
    shift
    ip netns exec "$n" "$@"
}

topo_sysctls() {
    local n=$1
    shift
    local kv
    for kv in "$@"; do
        ns "$n" sysctl -qw "$kv" >/dev/null
    done
}

# topo_up NSERVERS
topo_up() {
    local nservers=$1 i s ip
    ip netns add "$NS_C"
    ip netns add "$NS_D"
    NAMESPACES+=("$NS_C" "$NS_D")

    ip -n "$NS_C" link set lo up
    ip -n "$NS_D" link set lo up
    ip -n "$NS_C" link add c0 type veth peer name d0 netns "$NS_D"
    ip -n "$NS_C" addr add "$CLIENT_IP/24" dev c0
    ip -n "$NS_C" link set c0 up
    ip -n "$NS_C" route add default via "$DIR_CLIENT_IP"
    ip -n "$NS_D" addr add "$DIR_CLIENT_IP/24" dev d0
    ip -n "$NS_D" addr add "$VIP/24" dev d0
    ip -n "$NS_D" link set d0 up

    ip -n "$NS_D" link add br0 type bridge
    ip -n "$NS_D" addr add "$DIR_SERVER_IP/24" dev br0
    ip -n "$NS_D" link set br0 up

    for ((i = 1; i <= nservers; i++)); do
        s="${P}s$i"
        ip="$SERVER_SUBNET.$((10 + i))"
        ip netns add "$s"
        NAMESPACES+=("$s")
        NS_S+=("$s")
        SERVER_IPS+=("$ip")
        ip -n "$s" link set lo up
        ip -n "$s" link add eth0 type veth peer name "s$i" netns "$NS_D"
        ip -n "$s" addr add "$ip/24" dev eth0
        ip -n "$s" link set eth0 up
        ip -n "$s" route add default via "$DIR_SERVER_IP"
        ip -n "$NS_D" link set "s$i" master br0
        ip -n "$NS_D" link set "s$i" up
        topo_sysctls "$s" net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
    done

    # Wide port ranges and TIME_WAIT reuse: the close runs open ~10^5 connections.
    topo_sysctls "$NS_C" net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
    topo_sysctls "$NS_D" net.ipv4.ip_forward=1 net.ipv4.ip_local_port_range="1024 65535" \
        net.ipv4.tcp_tw_reuse=1 net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535

    topo_check
}

# Every server answers ping from the client through the director (routing works both ways).
topo_check() {
    local ip
    for ip in "${SERVER_IPS[@]}"; do
        ns "$NS_C" ping -q -c1 -W2 "$ip" >/dev/null || die "topology: $ip unreachable from the client"
    done
    ns "$NS_C" ping -q -c1 -W2 "$VIP" >/dev/null || die "topology: VIP $VIP unreachable"
}

# Kills what still runs in our namespaces (by PID), then deletes them by name.
topo_down() {
    local n pids i
    for n in "${NAMESPACES[@]}"; do
        [[ -e /run/netns/$n ]] || continue
        pids=$(ip netns pids "$n" 2>/dev/null || true)
        if [[ -n $pids ]]; then
            # shellcheck disable=SC2086 # one word per PID
            kill $pids 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                pids=$(ip netns pids "$n" 2>/dev/null || true)
                [[ -z $pids ]] && break
                sleep 0.1
            done
            if [[ -n $pids ]]; then
                # shellcheck disable=SC2086
                kill -9 $pids 2>/dev/null || true
            fi
        fi
        ip netns del "$n" 2>/dev/null || true
    done
}
