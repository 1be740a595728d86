#!/usr/bin/env bash
# One benchmark run, everything sequential on a quiet machine: the machine's bound, llama.cpp and (when it
# builds) `omnikv bench`, on the same GGUF and the same contexts; then a markdown results table with the
# ratios omnikv/llama.cpp. Not part of CI.
#
# Usage: tests/bench/run_all.sh            (results in .cache/bench/<UTC time>/, table also on stdout)
# Env:   OMNIKV_MODEL (default .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf), CONTEXTS (128,2048,8192),
#        DECODE_TOKENS (64), REPS (3), CHUNK (512: prompt tokens per forward call, both engines),
#        THREADS (all cores), FLASH_ATTN (0: llama-cpp-python's default; 1 to enable), OUT (result folder),
#        BENCH_VENV (.cache/benchvenv, made by tests/bench/setup_llamacpp.sh),
#        NICE (unset: normal priority; e.g. -20 as root runs the three measurements ahead of other work on
#        a shared machine: llama.cpp's OpenMP threads collapse when a core is taken from them), and
#        OMP_WAIT_POLICY (passed through; "passive" limits that collapse on a busy machine, but leave it unset
#        for the figures of record on a quiet one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
MODEL="${OMNIKV_MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
CONTEXTS="${CONTEXTS:-128,2048,8192}"
DECODE_TOKENS="${DECODE_TOKENS:-64}"
REPS="${REPS:-3}"
CHUNK="${CHUNK:-512}"
THREADS="${THREADS:-$(nproc)}"
FLASH_ATTN="${FLASH_ATTN:-0}"
VENV="${BENCH_VENV:-$ROOT/.cache/benchvenv}"
OUT="${OUT:-$ROOT/.cache/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
PRIO=()
if [ -n "${NICE:-}" ]; then
	PRIO=(nice -n "$NICE")
fi

if [ ! -f "$MODEL" ]; then
	echo "run_all: model $MODEL not found (set OMNIKV_MODEL)" >&2
	exit 1
fi
mkdir -p "$OUT"
LOAD="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo "run_all: results in $OUT" >&2
notes=()

# Build first, so that no compiler runs during a measurement.
go build -o "$OUT/bound" ./tests/bench/bound
have_omnikv=0
if [ -d backend/cmd/omnikv ]; then
	if go build -o "$OUT/omnikv" ./backend/cmd/omnikv 2>"$OUT/omnikv-build.log"; then
		have_omnikv=1
	else
		notes+=("omnikv: build failed, see omnikv-build.log")
		echo "run_all: omnikv does not build (see $OUT/omnikv-build.log); skipped" >&2
	fi
else
	notes+=("omnikv: backend/cmd/omnikv not present")
fi

echo "run_all: [1/3] machine bound" >&2
"${PRIO[@]}" "$OUT/bound" --model "$MODEL" --context "$CONTEXTS" --threads "$THREADS" --json >"$OUT/bound.jsonl"
"$OUT/bound" --model "$MODEL" --context "$CONTEXTS" --threads "$THREADS" --reps 1 >"$OUT/bound.txt" || true

llama_args=()
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
	echo "run_all: [2/3] llama.cpp" >&2
	if "${PRIO[@]}" "$VENV/bin/python" tests/bench/llamacpp_bench.py --model "$MODEL" --context "$CONTEXTS" \
		--decode-tokens "$DECODE_TOKENS" --reps "$REPS" --threads "$THREADS" --n-batch "$CHUNK" \
		--flash-attn "$FLASH_ATTN" >"$OUT/llamacpp.jsonl" 2>"$OUT/llamacpp.log"; then
		llama_args=(--llamacpp "$OUT/llamacpp.jsonl")
	else
		notes+=("llama.cpp: run failed, see llamacpp.log")
	fi
else
	notes+=("llama.cpp: $VENV has no llama_cpp (run tests/bench/setup_llamacpp.sh)")
fi

omnikv_args=()
if [ "$have_omnikv" = 1 ]; then
	echo "run_all: [3/3] omnikv bench" >&2
	if GOMAXPROCS="$THREADS" "${PRIO[@]}" "$OUT/omnikv" bench --model "$MODEL" --context "$CONTEXTS" \
		--decode-tokens "$DECODE_TOKENS" --repeat "$REPS" --chunk "$CHUNK" --json \
		>"$OUT/omnikv.jsonl" 2>"$OUT/omnikv.log"; then
		omnikv_args=(--omnikv "$OUT/omnikv.jsonl")
	else
		notes+=("omnikv: bench failed, see omnikv.log")
	fi
fi

note="Run $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); contexts $CONTEXTS, \
$DECODE_TOKENS decode tokens, $REPS reps, chunk $CHUNK, $THREADS threads, llama.cpp flash_attn $FLASH_ATTN, \
nice ${NICE:-0}, OMP_WAIT_POLICY ${OMP_WAIT_POLICY:-unset}, load average before the run: $LOAD."
for n in "${notes[@]}"; do note+=" $n."; done
python3 tests/bench/report.py --bound "$OUT/bound.jsonl" "${llama_args[@]}" "${omnikv_args[@]}" --note "$note" \
	| tee "$OUT/results.md"
