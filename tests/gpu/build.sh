#!/usr/bin/env bash
# build.sh (here, with Go): builds into build/gpu/ everything tests/gpu/run.sh runs on the GPU machine (no Go
# there), stripped, and checks the total against the device tool's limit: 64 MiB for everything that
# travels, the working tree (tracked and untracked-not-ignored files) and the carried build/gpu together:
#   cuda.test     backend/compute/cuda's tests: kernels against Go references, and the device conformance
#                 suite when it lands in that package (cgo: the driver and NVRTC are dlopened at run time)
#   llama.test    backend/llama's tests; run.sh runs TestDeviceCompare (device vs CPU greedy decoding)
#   omnikv        the CLI, with cgo so that it opens cuda:N (run.sh's benchmark: omnikv bench)
#   probe/        shared/tools/gpu-probe's source, compiled there by nvcc (offload bandwidth)
#   smollm2-trunc.gguf  SmolLM2 (when $OMNIKV_MODEL or .cache/models has it) cut to the layers that fit what
#                 is left of the limit (tests/gpu/truncate): the whole file, 98 MB, does not fit. The comparison
#                 also runs SmolLM2's exact shape and weight types with synthetic weights (smollm2-135m:q4_1),
#                 built on the GPU machine. With --with-nvrtc it also copies
# NVRTC 12.9 from PyPI (~110 MB: over the limit; for machines without CUDA's toolkit).
# Then carry build/gpu to the device machine and run: bash tests/gpu/run.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out=build/gpu
mkdir -p "$out"
strip=(-trimpath -ldflags=-s\ -w)
export CGO_ENABLED=1
go test -c "${strip[@]}" -o "$out/cuda.test" ./backend/compute/cuda
go test -c "${strip[@]}" -o "$out/llama.test" ./backend/llama
go build "${strip[@]}" -o "$out/omnikv" ./backend/cmd/omnikv
probe=/work/shared/tools/gpu-probe
if [[ -f "$probe/offload_bw.cu" ]]; then
	mkdir -p "$out/probe" && cp "$probe/offload_bw.cu" "$out/probe/"
else
	echo "build.sh: $probe/offload_bw.cu not found: run.sh will skip the probe" >&2
fi
rm -rf "$out/nvrtc" "$out/smollm2-trunc.gguf"
# tree_bytes: the working tree that travels with every device call.
tree_bytes() { git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | awk 'END {print $1}'; }
model="${OMNIKV_MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
if [[ -f "$model" ]]; then
	room=$(((64 << 20) - $(du -sb "$out" | cut -f1) - $(tree_bytes) - (2 << 20))) # 2 MiB to spare
	CGO_ENABLED=0 go run ./tests/gpu/truncate -in "$model" -out "$out/smollm2-trunc.gguf" -max-bytes "$room" ||
		echo "build.sh: SmolLM2 does not fit even cut: the comparison runs synthetic models only" >&2
else
	echo "build.sh: $model missing (scripts/fetch-model.sh): the comparison runs synthetic models only" >&2
fi
if [[ "${1:-}" == --with-nvrtc ]]; then
	eval "$(scripts/fetch-nvrtc.sh)"
	mkdir -p "$out/nvrtc"
	cp -L "$OMNIKV_NVRTC" "$out/nvrtc/" && cp -L "$(dirname "$OMNIKV_NVRTC")"/libnvrtc-builtins.so.* "$out/nvrtc/" 2>/dev/null || true
	cp -r "$OMNIKV_CUDA_INCLUDE" "$out/nvrtc/include"
fi
size=$(($(du -sb "$out" | cut -f1) + $(tree_bytes)))
printf 'build/gpu %.1f MiB + working tree %.1f MiB = %.1f MiB (limit 64 MiB)\n' "$(echo "$(du -sb "$out" | cut -f1) / 1048576" | bc -l)" \
	"$(echo "$(tree_bytes) / 1048576" | bc -l)" "$(echo "$size / 1048576" | bc -l)"
ls -l "$out"
if ((size > 64 << 20)); then
	echo "build.sh: build/gpu and the working tree are over the 64 MiB that a device call takes" >&2
	[[ "${1:-}" == --with-nvrtc ]] || exit 1
fi
