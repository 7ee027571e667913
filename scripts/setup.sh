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
# Dependencies come from crates.io, pinned by Cargo.lock.
cargo fetch --locked >/dev/null
echo "setup: ready ($(cargo --version))"
