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

# Azurite, the Azure Storage emulator the Azure adapters are tested against: from npm, pinned by
# tools/azurite/package-lock.json, installed into tools/azurite/node_modules (git-ignored).
# Reinstalled only when the lockfile changes. Without it the Azurite tests skip, except where
# CI=true or LIFEBOAT_REQUIRE_AZURITE=1 (then they fail, and so does this script).
azurite_required() { [ "${CI:-}" = true ] || [ "${LIFEBOAT_REQUIRE_AZURITE:-}" = 1 ]; }
azurite_dir=tools/azurite
if [ ! -x "$azurite_dir/node_modules/.bin/azurite" ] \
  || [ "$azurite_dir/package-lock.json" -nt "$azurite_dir/node_modules/.package-lock.json" ]; then
  if ! need npm && need apt-get && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Node.js and npm (Debian packages) for Azurite"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  if need npm; then
    echo "setup: installing Azurite into $azurite_dir (npm ci)"
    npm ci --prefix "$azurite_dir" --no-audit --no-fund --loglevel=error
  elif azurite_required; then
    echo "setup: npm is missing, and the Azurite tests are required here: install Node.js and npm" >&2
    exit 1
  else
    echo "setup: npm is missing: the Azure adapters' tests against Azurite will be skipped" >&2
  fi
fi
# moto, the AWS emulator the S3 object store and SQS bus are tested against: from PyPI, pinned
# here, installed into a virtualenv in tools/moto (git-ignored). Reinstalled only when the pin
# changes. Without it the moto tests skip, except where CI=true or LIFEBOAT_REQUIRE_MOTO=1.
moto_pin="moto[server]==5.2.5"
moto_required() { [ "${CI:-}" = true ] || [ "${LIFEBOAT_REQUIRE_MOTO:-}" = 1 ]; }
moto_dir=tools/moto
if [ ! -x "$moto_dir/bin/moto_server" ] || [ "$(cat "$moto_dir/.pin" 2>/dev/null)" != "$moto_pin" ]; then
  if need python3 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1 && need apt-get && [ "$(id -u)" = 0 ]; then
    echo "setup: installing python3-venv (Debian package) for moto"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  if need python3 && python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "setup: installing $moto_pin into $moto_dir (python3 -m venv, pip)"
    rm -rf "$moto_dir"
    python3 -m venv "$moto_dir"
    "$moto_dir/bin/pip" install --quiet --disable-pip-version-check "$moto_pin"
    echo "$moto_pin" >"$moto_dir/.pin"
  elif moto_required; then
    echo "setup: python3 with venv is missing, and the moto tests are required here: install it" >&2
    exit 1
  else
    echo "setup: python3 with venv is missing: the AWS adapters' tests against moto will be skipped" >&2
  fi
fi
echo "setup: ready ($(cargo --version))"
