#!/usr/bin/env bash
# The Debian packages rvs's build, tests and demo use, installed when run as root.
# Sourced by scripts/test.sh and .ci/run; `scripts/deps.sh --list` prints them.
set -euo pipefail

RVS_APT_PACKAGES=(
  clang llvm libbpf-dev bpftool  # BPF programs (XDP data plane)
  iproute2 nftables ethtool     # network-namespace labs
  nginx                         # real servers in end-to-end tests
  keepalived                    # VRRP peer in interop tests
  bird2                         # BGP speaker of the fleet lab (router and directors)
  curl procps psmisc iputils-ping  # test helpers
  chromium chromium-driver      # the dashboard, tested in a headless browser
  debootstrap                   # the Debian package, installed into a clean Debian root
  patchelf kmod ipvsadm         # kernel IPVS in user-mode Linux (the oracle)
)

rvs_missing_packages() {
  local missing=()
  for p in "${RVS_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]}"
}

rvs_install_deps() {
  local missing
  missing=$(rvs_missing_packages)
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "rvs: these Debian packages are missing: $missing" >&2
    echo "rvs: install them with: sudo apt-get install -y $missing" >&2
    return 1
  fi
  echo "rvs: installing $missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Installing a package must not start its service on the host (nginx, keepalived):
  # the tests start their own in namespaces. A policy-rc.d that denies every action
  # (exit 101) is what invoke-rc.d and deb-systemd-invoke ask; one the host already has
  # is put back afterwards. Nothing that runs on the host is stopped or disabled.
  local policy=${RVS_POLICY_RC_D:-/usr/sbin/policy-rc.d} saved=""
  if [ -e "$policy" ]; then
    saved=$(mktemp /tmp/rvs-policy-rc.d.XXXXXX)
    cp -p "$policy" "$saved"
  fi
  printf '#!/bin/sh\n# rvs scripts/deps.sh: no service starts while test packages install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  local rc=0
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing >/dev/null
  } || rc=$?
  if [ -n "$saved" ]; then
    mv -f "$saved" "$policy"
  else
    rm -f "$policy"
  fi
  return "$rc"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    --list) echo "${RVS_APT_PACKAGES[@]}" | tr -s ' ' ;;
    *) rvs_install_deps ;;
  esac
fi
