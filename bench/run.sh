#!/usr/bin/env bash
# Builds the handler and the baseline in release mode and compares their cold start and memory.
# Extra arguments go to coldstart, e.g. `bench/run.sh --runs 50 --json`.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release -p lifeboat -p lifeboat-bench
exec "$target_dir/release/coldstart" \
  --candidate "$target_dir/release/lifeboat" --candidate-args handler \
  --baseline "$target_dir/release/minimal-axum" "$@"
