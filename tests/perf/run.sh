#!/usr/bin/env bash
# tests/perf/run.sh: profile the running omnikv models with Triton's perf_analyzer, short and bounded.
#
# Assumes scripts/serve.sh is running (gRPC on 127.0.0.1:8001). Profiles
#   omnikv       gRPC streaming, prompts from tests/perf/omnikv_input.json (max_tokens 24, stream=true)
#   omnikv_chat  gRPC streaming, 3-turn sessions from tests/perf/omnikv_chat_input.json (--sequence-length 3)
# at the concurrency levels of CONCURRENCY, and prints perf_analyzer's own report, then a table of time to
# first token, inter-token latency and tokens/s read from its per-response timestamps (summarize.py).
#
# perf_analyzer: the PyPI perf-analyzer 2.60 wheel needs glibc 2.38 (Debian 12 has 2.36); the one bundled in
# the tritonclient 2.51.0 wheel (same release as the server, Triton 24.10) runs once its two missing
# libraries, libb64.so.0d and libcudart.so.12, are found: both are in nvidia-pytriton's nvidia_pytriton.libs
# (under hashed names), so this script links them into .cache/perf/lib. It downloads the wheel once
# (~14 MB) into .cache/perf. Set PERF_ANALYZER to use another binary.
#
# Environment: GRPC_URL (127.0.0.1:8001), CONCURRENCY (1:2), INTERVAL_MS (6000; one window per trial),
# MAX_TRIALS (3, the fewest perf_analyzer accepts for its stability check), MODELS ("omnikv omnikv_chat"),
# OUT (.cache/perf/results). Results: $OUT/<model>.csv (perf_analyzer -f) and <model>.profile.json.
# Runs take about MAX_TRIALS * INTERVAL_MS per concurrency level and model (~1 min in all by default).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
grpc=${GRPC_URL:-127.0.0.1:8001}
conc=${CONCURRENCY:-1:2}
interval=${INTERVAL_MS:-6000}
trials=${MAX_TRIALS:-3}
models=${MODELS:-omnikv omnikv_chat}
out=${OUT:-$root/.cache/perf/results}
perf=$root/.cache/perf
venv=$root/.cache/tritonvenv
py=$venv/bin/python
say() { printf '\n== %s\n' "$*" >&2; }

[ -x "$py" ] || { echo "run.sh: $py missing: run scripts/serve.sh (it makes the Triton venv) first" >&2; exit 1; }

# find_perf_analyzer prints the path of a perf_analyzer binary, fetching tritonclient 2.51.0's if needed.
find_perf_analyzer() {
  if [ -n "${PERF_ANALYZER:-}" ]; then echo "$PERF_ANALYZER"; return; fi
  local dir=$perf/tritonclient-2.51.0 bin
  bin=$dir/tritonclient-2.51.0.data/data/bin/perf_analyzer
  if [ ! -x "$bin" ]; then
    say "fetching perf_analyzer from the tritonclient 2.51.0 wheel (PyPI) into $dir"
    mkdir -p "$dir"
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux1_x86_64 --python-version 3.11 tritonclient==2.51.0 -d "$perf/wheels" >&2
    "$py" -m zipfile -e "$perf"/wheels/tritonclient-2.51.0-*.whl "$dir" >&2
    chmod +x "$bin"
  fi
  echo "$bin"
}

# link_libs makes .cache/perf/lib hold the libraries perf_analyzer 2.51 needs and Debian 12 lacks.
link_libs() {
  local site libs f
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  libs=$site/nvidia_pytriton.libs
  mkdir -p "$perf/lib"
  for pair in "libb64.so.0d:libb64-*.so.0d" "libcudart.so.12:libcudart-*.so.12*"; do
    f=$(find "$libs" -maxdepth 1 -name "${pair#*:}" | head -1)
    [ -n "$f" ] || { echo "run.sh: ${pair#*:} not found in $libs (nvidia-pytriton 0.7.0 ships it)" >&2; exit 1; }
    ln -sf "$f" "$perf/lib/${pair%%:*}"
  done
}

pa=$(find_perf_analyzer)
[ -n "${PERF_ANALYZER:-}" ] || link_libs
export LD_LIBRARY_PATH=$perf/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
missing=$(ldd "$pa" | grep 'not found' || true)
[ -z "$missing" ] || { echo "run.sh: $pa has unresolved libraries:" >&2; echo "$missing" >&2; exit 1; }
"$pa" --version >&2

http=${grpc%:*}:${HTTP_PORT:-8000}
if ! curl -sf "http://$http/v2/health/ready" >/dev/null; then
  echo "run.sh: no ready tritonserver at http://$http: start it with scripts/serve.sh" >&2
  exit 1
fi
mkdir -p "$out"
status=0
for m in $models; do
  common=(-m "$m" -i grpc -u "$grpc" --streaming --concurrency-range "$conc" --measurement-interval "$interval"
    --max-trials "$trials" --stability-percentage 999 -f "$out/$m.csv" --profile-export-file "$out/$m.profile.json")
  case $m in
    omnikv_chat) extra=(--input-data tests/perf/omnikv_chat_input.json --sequence-length 3) ;;
    *) extra=(--input-data tests/perf/omnikv_input.json) ;;
  esac
  say "perf_analyzer ${common[*]} ${extra[*]}"
  rm -f "$out/$m.profile.json"
  if ! timeout 600 "$pa" "${common[@]}" "${extra[@]}"; then
    echo "run.sh: perf_analyzer failed on $m" >&2
    status=1
    continue
  fi
  say "$m: figures from perf_analyzer's per-response timestamps"
  python3 tests/perf/summarize.py "$out/$m.profile.json" "$m (concurrency $conc, gRPC streaming)" || status=1
done
exit $status
