#!/usr/bin/env bash
# Installs what building and testing Lifeboat needs, and nothing twice. Fast when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
  echo "setup: cargo is missing: install Rust (rustup, stable >= 1.89) first" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "setup: adding the $component component"
    rustup component add "$component"
  fi
done
# The tools an operator recovers a backup with (tests/archive_cli_recovery.rs runs them).
missing=()
for tool in age zstd; do
  need "$tool" || missing+=("$tool")
done
if ((${#missing[@]})); then
  if need apt-get; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "setup: installing ${missing[*]} (Debian packages age and zstd)"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends age zstd >/dev/null
  else
    echo "setup: ${missing[*]} missing and no apt-get: install them yourself (the recovery test needs them)" >&2
  fi
fi
# Dependencies come from crates.io, pinned by Cargo.lock.
cargo fetch --locked >/dev/null
echo "setup: ready ($(cargo --version))"
