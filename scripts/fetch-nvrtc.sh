#!/usr/bin/env bash
# fetch-nvrtc.sh: NVRTC (CUDA C++ -> PTX/CUBIN at run time) and the CUDA headers it needs, from PyPI, into the
# ignored .cache/nvrtc, idempotently; no GPU or driver needed. The CUDA device compiles kernels/*.cu with it,
# and backend/compute/cuda's tests compile every kernel on machines without a GPU, so that CI catches kernel
# errors (../shared/facts/toolchain.md: NVRTC from PyPI).
# Prints, as shell assignments to eval:
#   OMNIKV_NVRTC=<path of libnvrtc.so.12>
#   OMNIKV_CUDA_INCLUDE=<directory holding cuda_fp16.h and cuda_bf16.h>
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.cache/nvrtc"
want="nvidia-cuda-nvrtc-cu12==12.9.86 nvidia-cuda-runtime-cu12==12.9.79"
stamp="$dest/.done"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
	echo "fetch-nvrtc: installing $want into $dest (~95 MB)" >&2
	rm -rf "$dest"
	# shellcheck disable=SC2086
	python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dest" $want >&2
	echo "$want" >"$stamp"
fi
lib="$(ls "$dest"/nvidia/cuda_nvrtc/lib/libnvrtc.so.12 2>/dev/null || true)"
inc="$dest/nvidia/cuda_runtime/include"
[[ -n "$lib" && -f "$inc/cuda_fp16.h" ]] || { echo "fetch-nvrtc: libnvrtc.so.12 or cuda_fp16.h missing under $dest" >&2; exit 1; }
echo "OMNIKV_NVRTC=$lib"
echo "OMNIKV_CUDA_INCLUDE=$inc"
