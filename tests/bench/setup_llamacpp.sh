#!/usr/bin/env bash
# Builds llama-cpp-python from its PyPI source distribution, compiled for this CPU, into the ignored
# virtual environment .cache/benchvenv. Used only by the benchmark (tests/bench), never by CI.
#
# Idempotent: does nothing when the venv already imports the pinned version.
# Usage: tests/bench/setup_llamacpp.sh            (foreground; log also goes to .cache/benchvenv-build.log)
#        nohup tests/bench/setup_llamacpp.sh &    (it takes ~10-30 min on 2 shared cores)
# Env:   LLAMA_CPP_PYTHON_VERSION (default below), BENCH_VENV (default .cache/benchvenv),
#        BUILD_JOBS (default: number of cores), PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
VENV="${BENCH_VENV:-$ROOT/.cache/benchvenv}"
LOG="$ROOT/.cache/benchvenv-build.log"
PY="${PYTHON:-python3}"
JOBS="${BUILD_JOBS:-$(nproc)}"

mkdir -p "$ROOT/.cache"

have_version() {
	[ -x "$VENV/bin/python" ] &&
		"$VENV/bin/python" -c "import llama_cpp,sys; sys.exit(0 if llama_cpp.__version__=='$VERSION' else 1)" 2>/dev/null
}

if have_version; then
	echo "llama-cpp-python $VERSION already installed in $VENV"
	exit 0
fi

exec > >(tee -a "$LOG") 2>&1
echo "== $(date -u +%FT%TZ) building llama-cpp-python $VERSION into $VENV (jobs=$JOBS)"

if [ ! -x "$VENV/bin/python" ]; then
	"$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip wheel

# GGML_NATIVE=ON compiles for the host CPU (-march=native: AVX2/FMA/AVX-512 where present), which is what
# a fair comparison on this machine wants. No BLAS, no GPU backends, no examples/tests/server, no llava/mtmd.
export CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BLAS=OFF \
-DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENMP=ON -DLLAMA_CURL=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAVA_BUILD=OFF -DCMAKE_BUILD_TYPE=Release"
export CMAKE_BUILD_PARALLEL_LEVEL="$JOBS"
export FORCE_CMAKE=1

# --no-binary: always compile from the sdist, for this CPU; --no-cache-dir: never reuse a wheel built elsewhere.
nice -n 10 "$VENV/bin/python" -m pip install --verbose --no-cache-dir --no-binary llama-cpp-python \
	"llama-cpp-python==$VERSION"

if ! have_version; then
	echo "llama-cpp-python $VERSION did not install correctly into $VENV" >&2
	exit 1
fi
"$VENV/bin/python" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__); print(llama_cpp.llama_print_system_info().decode())"
echo "== $(date -u +%FT%TZ) done"
