#!/usr/bin/env bash
# The whole test suite, from a fresh clone: checks the toolchain, then format, lints and every
# test (unit, conformance, handler contract, local runtime end to end). Idempotent.
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p lifeboat-shared --features testing --locked -- -D warnings
echo "==> cargo test (workspace)"
cargo test --workspace --locked
