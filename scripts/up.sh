#!/usr/bin/env bash
# Builds Lifeboat and runs the local runtime on the embedded defaults (data in ./.lifeboat:
# SQLite state and queues, objects in a directory). Extra arguments go to `lifeboat up`,
# e.g. `bash scripts/up.sh --config examples/config`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p lifeboat
exec target/release/lifeboat up "$@"
