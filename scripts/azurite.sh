#!/usr/bin/env bash
# Runs Azurite (installed by scripts/setup.sh) in the foreground on its usual ports (blob 10000,
# queue 10001, table 10002), in memory, with the development account devstoreaccount1. Ctrl-C
# stops it. Extra arguments go to azurite, e.g. `bash scripts/azurite.sh --blobPort 20000`.
# The tests do not need this: each starts its own Azurite on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
exec tools/azurite/node_modules/.bin/azurite --inMemoryPersistence --disableTelemetry --silent "$@"
