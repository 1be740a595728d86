#!/usr/bin/env bash
# dryrun.sh: scripts/test.sh's check that the GPU script still works where there is no GPU: builds build/gpu
# (tests/gpu/build.sh, which also fails when it no longer fits the device tool's 64 MiB) and rehearses
# tests/gpu/run.sh on the CPU device with the tiny shape. About a minute, mostly the cgo builds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log=$(mktemp)
bash "$root/tests/gpu/build.sh" >"$log" 2>&1 || { cat "$log"; exit 1; }
grep -E 'MiB|layers' "$log"
bash "$root/tests/gpu/run.sh" --dry-run
