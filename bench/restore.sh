#!/usr/bin/env bash
# Builds the restore benchmark in release mode and runs it: restore of N objects against a raw
# parallel create of the same objects into the same kind of test API server, and the RTO the
# restore records. Extra arguments go to restore-bench, e.g. `bench/restore.sh --objects 10000 --runs 3`.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release -p lifeboat-bench --bin restore-bench
exec "$target_dir/release/restore-bench" "$@"
