#!/usr/bin/env bash
# build.sh (here, with Go): builds what tests/gpu/run.sh runs on the GPU machine, into build/gpu/: the CUDA
# package's test binary (kernels embedded, ~5 MB). The GPU machine compiles the kernels with its own NVRTC
# (CUDA 13 in /usr/local/cuda). With --with-nvrtc it also copies NVRTC 12.9 from PyPI (~110 MB: over the
# device tool's 64 MiB carry limit; for machines without CUDA's toolkit).
# Then carry build/gpu to the device machine and run: bash tests/gpu/run.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out=build/gpu
mkdir -p "$out"
go test -c -o "$out/cuda.test" ./backend/compute/cuda
rm -rf "$out/nvrtc"
[[ "${1:-}" == --with-nvrtc ]] || { du -sh "$out"; exit 0; }
eval "$(scripts/fetch-nvrtc.sh)"
mkdir -p "$out/nvrtc"
cp -L "$OMNIKV_NVRTC" "$out/nvrtc/" && cp -L "$(dirname "$OMNIKV_NVRTC")"/libnvrtc-builtins.so.* "$out/nvrtc/" 2>/dev/null || true
cp -r "$OMNIKV_CUDA_INCLUDE" "$out/nvrtc/include"
du -sh "$out"
