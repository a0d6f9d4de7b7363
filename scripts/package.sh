#!/usr/bin/env bash
# Builds rvs's Debian package with cargo-deb: rvsd, rvsadm, rvs-rs, rvs-genhash, the systemd unit, man
# pages and shell completions (generated from each binary's command line), the defaults
# file (a conffile) and an example keepalived.conf. Prints the path of the .deb.
#
# RVS_PACKAGE_PROFILE: cargo profile of the binaries (release by default; the package test
# uses dev to reuse the test build). RVS_PACKAGE_FAST=1: faster, larger compression.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0 # pinned: the package layout is tested with this version
profile=${RVS_PACKAGE_PROFILE:-release}

if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  echo "rvs: installing cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install cargo-deb --version "=$CARGO_DEB_VERSION" --locked --quiet
fi

cargo build --profile "$profile" -p rvsd -p rvsadm -p rvs-rs -p rvs-genhash --bins >&2
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
case $profile in
  dev) bin=$target/debug ;;
  *) bin=$target/$profile ;;
esac

gen=crates/rvsd/debian/generated
rm -rf "$gen"
mkdir -p "$gen"/{man,bash,zsh,fish}
for b in rvsd rvsadm rvs-rs rvs-genhash; do
  section=8
  [ "$b" = rvs-genhash ] && section=1
  "$bin/$b" --generate man | gzip -9n >"$gen/man/$b.$section.gz"
  "$bin/$b" --generate bash >"$gen/bash/$b"
  "$bin/$b" --generate zsh >"$gen/zsh/_$b"
  "$bin/$b" --generate fish >"$gen/fish/$b.fish"
done

out=$target/debian
mkdir -p "$out"
# stripped binaries; their debug symbols go to rvs-dbgsym (a .ddeb beside the .deb)
args=(-p rvsd --no-build --profile "$profile" --output "$out" --dbgsym)
[ -n "${RVS_PACKAGE_FAST:-}" ] && args+=(--fast)
cargo deb "${args[@]}" | grep '\.deb$' | tail -n 1
