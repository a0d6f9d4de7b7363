#!/usr/bin/env bash
# The Debian package, built (scripts/package.sh) and installed into a clean Debian 12
# root made with debootstrap (no container): dpkg installs it with its dependencies met by
# a minimal system, then rvsd runs from it: -t on the example configuration and without
# one, a start that loads the boot-time rules (AUTO=true), rvsadm, the save on stop, a
# restart that keeps the table through the state file, the opt-in ipvsadm, and removal.
#
# Needs root (chroot, dpkg --root), debootstrap and the network path to Debian's archive
# the host's apt uses. The minimal root is cached in ~/.cache/rvs. Without root it skips,
# unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "package-test: $*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}
if [ "$(id -u)" -ne 0 ] || ! command -v debootstrap >/dev/null; then
  if [ "${CI:-}" = true ]; then fail "needs root and debootstrap"; fi
  say "skipped: needs root and debootstrap"
  exit 0
fi

deb=$(RVS_PACKAGE_PROFILE=${RVS_PACKAGE_PROFILE:-dev} RVS_PACKAGE_FAST=1 scripts/package.sh)
[ -s "$deb" ] || fail "no package built"
say "built $deb ($(du -h "$deb" | cut -f1))"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/rvs
base=$cache/bookworm-minbase.tar
if [ ! -s "$base" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d /tmp/rvs-debootstrap.XXXXXX)
  say "debootstrap bookworm (minbase) into $tmp, once (cached as $base)"
  if ! debootstrap --variant=minbase bookworm "$tmp" >"$tmp.log" 2>&1; then
    tail -n 20 "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    fail "debootstrap"
  fi
  tar -C "$tmp" -cf "$base.new" . && mv "$base.new" "$base"
  rm -rf "$tmp" "$tmp.log"
fi

R=$(mktemp -d /tmp/rvs-pkgroot.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  mountpoint -q "$R/proc" && umount "$R/proc"
  rm -rf "$R"
}
trap cleanup EXIT
tar -C "$R" -xf "$base"
mount -t proc proc "$R/proc"
in_root() { chroot "$R" "$@"; }

cp "$deb" "$R/tmp/rvs.deb"
in_root dpkg -i /tmp/rvs.deb >/dev/null || fail "dpkg -i"
in_root dpkg-query -W -f='${Status}\n' rvs | grep -q "install ok installed" || fail "not installed"
in_root dpkg-query -W -f='${Conffiles}\n' rvs | grep -q /etc/default/rvsd || fail "/etc/default/rvsd is not a conffile"
for f in /usr/sbin/rvsd /usr/sbin/rvsadm /usr/sbin/rvs-rs /usr/bin/rvs-genhash /usr/share/man/man1/rvs-genhash.1.gz \
  /usr/lib/systemd/system/rvsd.service \
  /usr/share/man/man8/rvsd.8.gz /usr/share/man/man8/rvsadm.8.gz /usr/share/man/man8/rvs-rs.8.gz \
  /usr/share/bash-completion/completions/rvsadm /usr/share/zsh/vendor-completions/_rvsd; do
  [ -e "$R$f" ] || fail "$f missing"
done
zcat "$R/usr/share/man/man8/rvsd.8.gz" >"$R/tmp/rvsd.8"
grep -q "dont\\\\-fork" "$R/tmp/rvsd.8" || fail "rvsd(8) lacks the options"

# rvsd -t, as keepalived -t: 0 for a good file, 4 without /etc/keepalived/keepalived.conf
in_root rvsd -t -f /usr/share/doc/rvs/examples/keepalived.conf || fail "rvsd -t on the example"
set +e
in_root rvsd -t 2>/dev/null
rc=$?
set -e
[ "$rc" = 4 ] || fail "rvsd -t without a configuration exited $rc, not 4"
say "rvsd -t: ok"

# boot: AUTO=true loads the saved rules
mkdir -p "$R/etc/rvs"
printf -- '-A -t 127.0.0.1:18080 -s rr\n' >"$R/etc/rvs/rules"
sed -i 's|^DAEMON_ARGS=.*|DAEMON_ARGS="--dataplane none --metrics off"|' "$R/etc/default/rvsd"
start() {
  rm -f "$R/run/rvs/rvsd.sock"
  chroot "$R" /usr/lib/rvs/rvsd-start 2>>"$R/tmp/rvsd.log" &
  pids+=($!)
  for _ in $(seq 200); do
    [ -S "$R/run/rvs/rvsd.sock" ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  cat "$R/tmp/rvsd.log" >&2
  fail "rvsd did not start from the package"
}
stop() {
  in_root /usr/lib/rvs/rvs-rules-save
  kill "${pids[-1]}"
  wait "${pids[-1]}" || fail "rvsd exited with an error on SIGTERM"
}
start
in_root rvsadm -Ln | grep -q "127.0.0.1:18080" || fail "the boot-time rules were not loaded"
in_root rvsadm -a -t 127.0.0.1:18080 -r 127.0.0.2:80 -m -w 2
stop
grep -q -- "-a -t 127.0.0.1:18080 -r 127.0.0.2:80 -m -w 2" "$R/etc/rvs/rules" || fail "the rules were not saved on stop"
say "boot-time rules and save on stop: ok"

# a restart (no reboot): the state file carries the table, even what was not saved
start
in_root rvsadm -a -t 127.0.0.1:18080 -r 127.0.0.3:80 -m -w 1
kill "${pids[-1]}"
wait "${pids[-1]}" || true
start
in_root rvsadm -Ln | grep -q "127.0.0.3:80" || fail "the table did not survive a restart"
stop
say "restart keeps the table: ok"

# ipvsadm, opt-in
in_root rvs-ipvsadm enable >/dev/null
[ "$(in_root readlink -f /usr/sbin/ipvsadm)" = /usr/sbin/rvsadm ] || fail "rvs-ipvsadm enable"
in_root rvs-ipvsadm disable >/dev/null
[ ! -e "$R/usr/sbin/ipvsadm" ] || fail "rvs-ipvsadm disable left /usr/sbin/ipvsadm"
in_root rvs-ipvsadm enable >/dev/null
in_root dpkg -r rvs >/dev/null || fail "dpkg -r"
[ ! -e "$R/usr/sbin/ipvsadm" ] || fail "removing rvs left /usr/sbin/ipvsadm behind"
say "opt-in ipvsadm and removal: ok"
say "passed"
