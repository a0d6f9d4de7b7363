#!/usr/bin/env bash
# The Debian packages rvs's build, tests and demo use, installed when run as root.
# Sourced by scripts/test.sh and .ci/run; `scripts/deps.sh --list` prints them.
set -euo pipefail

RVS_APT_PACKAGES=(
  clang llvm libbpf-dev bpftool  # BPF programs (XDP data plane)
  iproute2 nftables ethtool     # network-namespace labs
  nginx                         # real servers in end-to-end tests
  keepalived                    # VRRP peer in interop tests
  curl procps psmisc iputils-ping  # test helpers
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
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing >/dev/null
  }
  # keepalived and nginx must not run on the host: tests start their own in namespaces.
  systemctl disable --now keepalived nginx >/dev/null 2>&1 || true
  pkill -x keepalived 2>/dev/null || true
  pkill -x nginx 2>/dev/null || true
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    --list) echo "${RVS_APT_PACKAGES[@]}" | tr -s ' ' ;;
    *) rvs_install_deps ;;
  esac
fi
