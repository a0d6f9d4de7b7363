#!/usr/bin/env bash
# rvs: run the whole test suite.
#
# As root it installs the Debian packages the tests need and runs every test, the
# privileged ones (network namespaces, BPF) included. Without root the privileged tests
# skip with a printed reason; with CI=true a missing prerequisite is a failure. Then the
# Debian package is built and installed into a clean Debian root (scripts/package-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

if ! command -v cargo >/dev/null; then
  echo "rvs: cargo is needed (Rust 1.95): https://rustup.rs" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  rvs_install_deps
else
  missing=$(rvs_missing_packages)
  if [ -n "$missing" ]; then
    echo "rvs: not root: privileged tests will skip; they also need: $missing" >&2
  fi
fi

# Binaries the end-to-end tests drive (rvsd, rvsadm, rvs-lab) are built first.
cargo build --workspace --bins
status=0
cargo test --workspace --no-fail-fast -- --test-threads="${RVS_TEST_THREADS:-4}" || status=$?

# The Debian package, installed into a clean Debian 12 root (root only; skips otherwise,
# fails under CI=true).
scripts/package-test.sh || status=1
exit "$status"
