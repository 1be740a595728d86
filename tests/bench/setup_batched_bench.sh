#!/usr/bin/env bash
# Builds llama.cpp's own `llama-batched-bench` tool, compiled for this CPU, from the llama.cpp sources vendored
# in the PyPI source distribution of llama-cpp-python (the same pin as tests/bench/setup_llamacpp.sh; PyPI is
# reachable here, GitHub is not). It is the anchor for batched decode (tests/bench/llamacpp_batched.py).
# Used only by the benchmark (tests/bench), never by CI. Everything lives in the ignored .cache/:
#   .cache/dl/llama_cpp_python-<version>.tar.gz   the sdist (downloaded once, then reused)
#   .cache/llamacpp-src/                           unpacked sdist and the cmake build folder
#   .cache/llamacpp-bin/llama-batched-bench        the binary (static: no shared libraries to carry)
#
# Idempotent: does nothing but print the binary's version when it is already built from the pinned version.
# Usage: tests/bench/setup_batched_bench.sh        (foreground; log also goes to .cache/batched-bench-build.log)
#        nohup tests/bench/setup_batched_bench.sh &  (a few minutes on 2 shared cores)
# Env:   LLAMA_CPP_PYTHON_VERSION (default below), BUILD_JOBS (default: number of cores), PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
PY="${PYTHON:-python3}"
JOBS="${BUILD_JOBS:-$(nproc)}"
CACHE="$ROOT/.cache"
SDIST="$CACHE/dl/llama_cpp_python-$VERSION.tar.gz"
SRC_TOP="$CACHE/llamacpp-src/llama_cpp_python-$VERSION"
BUILD="$CACHE/llamacpp-src/build-$VERSION"
BIN="$CACHE/llamacpp-bin/llama-batched-bench"
STAMP="$BIN.source" # "llama-cpp-python <version>": the binary cannot tell which sdist it came from
LOG="$CACHE/batched-bench-build.log"

if [ -x "$BIN" ] && grep -qx "llama-cpp-python $VERSION" "$STAMP" 2>/dev/null; then
	echo "llama-batched-bench from llama-cpp-python $VERSION already built: $BIN"
	"$BIN" --version 2>&1 | head -n 2
	exit 0
fi

mkdir -p "$CACHE/dl" "$CACHE/llamacpp-src" "$(dirname "$BIN")"
exec > >(tee -a "$LOG") 2>&1
START=$(date +%s)
echo "== $(date -u +%FT%TZ) building llama-batched-bench from llama-cpp-python $VERSION (jobs=$JOBS)"

if [ ! -f "$SDIST" ]; then
	"$PY" -m pip download --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$CACHE/dl"
fi
if [ ! -d "$SRC_TOP" ]; then
	tar -xzf "$SDIST" --no-same-owner -C "$CACHE/llamacpp-src"
fi

# The tool sits in tools/batched-bench (recent llama.cpp) or examples/batched-bench (older): its grandparent
# folder is the llama.cpp tree (vendor/llama.cpp in the sdist).
BENCH_DIR="$(find "$SRC_TOP" -type f -path '*/batched-bench/CMakeLists.txt' -printf '%h\n' | head -n 1)"
if [ -z "$BENCH_DIR" ]; then
	echo "no batched-bench sources in $SRC_TOP" >&2
	exit 1
fi
SRC="$(dirname "$(dirname "$BENCH_DIR")")"
case "$BENCH_DIR" in
*/tools/batched-bench) PARTS=(-DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF) ;;
*) PARTS=(-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=ON) ;;
esac
echo "llama.cpp sources: $SRC (tool: ${BENCH_DIR#"$SRC"/})"

# The sdist carries llama.cpp's git metadata as a shallow clone: the commit hash is right, but the commit
# count that llama.cpp uses as its build number would be 1. Say 0 (unknown) instead of a wrong number.
BUILD_INFO=()
if [ "$(git -C "$SRC" rev-parse --is-shallow-repository 2>/dev/null)" = "true" ]; then
	BUILD_INFO=(-DLLAMA_BUILD_NUMBER=0)
fi

# GGML_NATIVE=ON compiles for the host CPU (-march=native), as for llama-cpp-python in setup_llamacpp.sh.
# CPU backend only, OpenMP threads, no BLAS/GPU, no network code (curl, openssl), no tests/server; static
# libraries so that the binary runs alone from .cache/llamacpp-bin.
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
	-DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
	-DGGML_CCACHE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_COMMON=ON "${PARTS[@]}" \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF "${BUILD_INFO[@]}"
nice -n 10 cmake --build "$BUILD" --config Release --target llama-batched-bench -j "$JOBS"

cp "$BUILD/bin/llama-batched-bench" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "llama-cpp-python $VERSION" >"$STAMP"
"$BIN" --version 2>&1 | head -n 2
echo "== $(date -u +%FT%TZ) done in $(($(date +%s) - START)) s: $BIN"
