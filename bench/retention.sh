#!/usr/bin/env bash
# Builds the retention benchmark in release mode and runs it: planning time over 1,000,000
# catalog entries, and the Table Storage requests of a daily prune of 1,000 targets.
# `bench/retention.sh --json` for machines.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release -p lifeboat-bench --bin retention-bench
exec "$target_dir/release/retention-bench" "$@"
