#!/usr/bin/env bash
# run.sh (on the GPU machine, no Go there): runs the CUDA kernels' tests built by tests/gpu/build.sh and prints
# one short table; exits non-zero on any failure. NVRTC: the machine's own (CUDA 13, /usr/local/cuda) when
# present, else the carried 12.9. OMNIKV_REQUIRE_GPU makes a missing GPU a failure, not a skip.
# Status: written without a GPU; it has not run on one yet (issue 11).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/build/gpu"
[[ -x "$bin/cuda.test" ]] || { echo "run.sh: $bin/cuda.test missing: run tests/gpu/build.sh where Go is, and carry build/gpu"; exit 2; }
if [[ -e /usr/local/cuda/lib64/libnvrtc.so.13 ]]; then
	export OMNIKV_NVRTC=/usr/local/cuda/lib64/libnvrtc.so.13 OMNIKV_CUDA_INCLUDE=/usr/local/cuda/include
else
	export OMNIKV_NVRTC="$bin/nvrtc/libnvrtc.so.12" OMNIKV_CUDA_INCLUDE="$bin/nvrtc/include" LD_LIBRARY_PATH="$bin/nvrtc:${LD_LIBRARY_PATH:-}"
fi
export OMNIKV_REQUIRE_GPU=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
echo "nvrtc: $OMNIKV_NVRTC"
log=$(mktemp)
"$bin/cuda.test" -test.v -test.count=1 -test.timeout=300s >"$log" 2>&1
rc=$?
printf '%-32s %s\n' test result
grep -E '^--- (PASS|FAIL|SKIP)' "$log" | sed -E 's/^--- (PASS|FAIL|SKIP): ([^ ]+) \(([^)]*)\)/\2 \1 \3/' | awk '{printf "%-32s %s %s\n", $1, $2, $3}'
[[ $rc -eq 0 ]] || { echo "FAILED (rc $rc); log:"; tail -50 "$log"; }
exit $rc
