# shellcheck shell=bash
# Real servers: nginx with a small static page naming the server on :80 (keepalive), and
# iperf3 -s on the first server only (iperf3 needs its control and data connections on
# the same server, so the :5201 service has that one server).

IPERF_PORT=5201

servers_up() {
    local i s ip dir
    for i in "${!NS_S[@]}"; do
        s=${NS_S[$i]}
        ip=${SERVER_IPS[$i]}
        dir="$RUN/$s"
        mkdir -p "$dir/html" "$dir/tmp"
        # A page of a few hundred bytes that names its server.
        {
            printf '<!doctype html>\n<html><head><title>rvs bench %s</title></head><body>\n' "$ip"
            printf '<h1>real server %s (%s)</h1>\n' "$((i + 1))" "$ip"
            printf '<p>%s</p>\n' "This static page is served by nginx inside a network namespace created by bench/run.sh; its size stays near a few hundred bytes."
            printf '</body></html>\n'
        } >"$dir/html/index.html"
        cat >"$dir/nginx.conf" <<EOF
user root;
worker_processes 2;
worker_rlimit_nofile $FD_LIMIT;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $MAX_CONNS; multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_header_timeout 300s;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen $ip:80 backlog=65535 reuseport;
        root $dir/html;
        location / { index index.html; }
    }
}
EOF
        spawn other "$s" "$dir/nginx.out" nginx -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
    done
    s=${NS_S[0]}
    spawn other "$s" "$RUN/$s/iperf3.out" iperf3 -s -p "$IPERF_PORT"

    for i in "${!NS_S[@]}"; do
        wait_port "${NS_S[$i]}" "${SERVER_IPS[$i]}" 80 || die "nginx on ${SERVER_IPS[$i]} did not start (see $RUN/${NS_S[$i]}/error.log)"
    done
    wait_port "${NS_S[0]}" "" "$IPERF_PORT" || die "iperf3 -s did not start"
    # Through the router, each server answers with its own page.
    for ip in "${SERVER_IPS[@]}"; do
        ns "$NS_C" curl -fsS --max-time 3 "http://$ip/" | grep -q "$ip" || die "real server $ip: wrong or no page"
    done
}
