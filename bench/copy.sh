#!/usr/bin/env bash
# Builds the copy benchmark in release mode, starts Azurite with two accounts (on disk in a
# temporary directory: a 1 GiB blob and two copies would not fit comfortably in memory) and
# times the copy of one large blob between the accounts: server-side Copy Blob from URL against
# download-and-upload through the process, in the same run.
# Extra arguments go to copy-bench, e.g. `bench/copy.sh --mib 256 --runs 3`.
#
# Azurite is started with bench/azurite-copy-source-head.cjs preloaded: Azurite 3.35 checks a
# cross-account copy source by downloading the whole blob into one JavaScript string, which
# fails with HTTP 500 past V8's string limit (about 512 MiB; Azure/Azurite#646). The preload
# applies Azurite's own fix (a HEAD; Azure/Azurite#2680, released in 3.37.0, which needs
# Node.js 22). See that file and the README's Performance section for the evidence;
# COPY_BENCH_AZURITE_AS_RELEASED=1 starts Azurite without it (and reproduces the 500 at 1 GiB).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
bash scripts/setup.sh >/dev/null
cargo build --release -p lifeboat-bench --bin copy-bench
dev_key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
second_key='bGlmZWJvYXQtc2Vjb25kLXJlZ2lvbi10ZXN0LWtleS1ub3QtYS1zZWNyZXQ='
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
preload="--require $PWD/bench/azurite-copy-source-head.cjs"
[[ "${COPY_BENCH_AZURITE_AS_RELEASED:-}" == 1 ]] && preload=""
AZURITE_ACCOUNTS="devstoreaccount1:${dev_key};lifeboatdr:${second_key}" \
  NODE_OPTIONS="$preload" \
  tools/azurite/node_modules/.bin/azurite-blob --blobPort "$port" --location "$data" --disableTelemetry --silent &
azurite=$!
trap 'kill "$azurite" 2>/dev/null; wait "$azurite" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
"$target_dir/release/copy-bench" --blob-endpoint "http://127.0.0.1:$port/devstoreaccount1" \
  --second-endpoint "http://127.0.0.1:$port/lifeboatdr" --second-account lifeboatdr --second-key "$second_key" "$@"
