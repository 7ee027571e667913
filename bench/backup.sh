#!/usr/bin/env bash
# Builds the backup benchmark in release mode and runs it: export time against a raw parallel
# list of the same objects from the same test API server, and the export's peak RSS.
# Extra arguments go to backup-bench, e.g. `bench/backup.sh --objects 10000,50000 --runs 5 --json`.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release -p lifeboat-bench --bin backup-bench
exec "$target_dir/release/backup-bench" "$@"
