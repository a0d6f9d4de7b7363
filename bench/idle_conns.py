#!/usr/bin/env python3
"""Hold N idle TCP connections to HOST:PORT, for measuring a balancer's memory per
connection (bench/run.sh).

Phases, reported by rewriting the --status file:
  fresh  all N connections are open and have carried no byte;
  warm   after --go appears: one HTTP keepalive request/response went over each, and the
         connections are idle again (a proxy may now hold buffers for them).
Then holds them until killed or --hold seconds pass. Every wait is bounded.
"""

import argparse
import os
import resource
import socket
import sys
import time


def set_status(path, word, detail=""):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{word} {detail}\n")
    os.replace(tmp, path)


def open_all(host, port, count, deadline):
    socks = []
    for i in range(count):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {i} connections")
        s = socket.create_connection((host, port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    return socks


def one_request(s, host):
    s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the end of the body")
        body += chunk


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--status", required=True)
    ap.add_argument("--go", required=True, help="file whose appearance starts the warm phase")
    ap.add_argument("--hold", type=float, default=120.0, help="seconds to hold at most")
    a = ap.parse_args()

    want = a.count + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))

    start = time.monotonic()
    socks = open_all(a.host, a.port, a.count, start + 60)
    set_status(a.status, "fresh", str(len(socks)))
    print(f"fresh: {len(socks)} connections in {time.monotonic() - start:.1f}s", flush=True)

    deadline = start + a.hold
    while not os.path.exists(a.go):
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.05)
    t = time.monotonic()
    for s in socks:
        one_request(s, a.host)
    set_status(a.status, "warm", str(len(socks)))
    print(f"warm: one request on each in {time.monotonic() - t:.1f}s", flush=True)

    while time.monotonic() < deadline:
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
