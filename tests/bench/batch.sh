#!/usr/bin/env bash
# One batched-decode benchmark run, everything sequential on a quiet machine: the machine's bound, `omnikv
# bench --batch` (sequences decoding together, one forward call per step), llama.cpp's llama-batched-bench
# on the same GGUF (when built: tests/bench/setup_batched_bench.sh), and the scheduler's chunked prefill (a
# long prompt arriving while a batch decodes); then a markdown table (tests/bench/batch_report.py) with each
# batch's bound and share of it. Not part of CI.
#
# Usage: tests/bench/batch.sh            (results in .cache/bench/batch-<UTC time>/, the table also on stdout)
# Env:   OMNIKV_MODEL (default .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf), BATCHES (1,2,3,4,6,8,12,16,24,32),
#        CONTEXT (128: prompt tokens per sequence), DECODE_TOKENS (32 timed steps per run), REPS (3 round-robin
#        runs of every batch size, steps pooled), INTERFERE (4096: the arriving prompt;
#        0 skips), INTERFERE_BATCH (8), THREADS (all cores), OUT (result folder).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
MODEL="${OMNIKV_MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
BATCHES="${BATCHES:-1,2,3,4,6,8,12,16,24,32}"
CONTEXT="${CONTEXT:-128}"
DECODE_TOKENS="${DECODE_TOKENS:-32}"
REPS="${REPS:-3}"
INTERFERE="${INTERFERE:-4096}"
INTERFERE_BATCH="${INTERFERE_BATCH:-8}"
THREADS="${THREADS:-$(nproc)}"
OUT="${OUT:-$ROOT/.cache/bench/batch-$(date -u +%Y%m%dT%H%M%SZ)}"
[ -f "$MODEL" ] || { echo "batch.sh: model $MODEL not found (set OMNIKV_MODEL)" >&2; exit 1; }
mkdir -p "$OUT"
LOAD="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo "batch.sh: results in $OUT" >&2

# Build first, so that no compiler runs during a measurement.
go build -o "$OUT/bound" ./tests/bench/bound
go build -o "$OUT/omnikv" ./backend/cmd/omnikv

echo "batch.sh: [1/4] machine bound" >&2
"$OUT/bound" --model "$MODEL" --context "$CONTEXT" --threads "$THREADS" --json >"$OUT/bound.jsonl"

echo "batch.sh: [2/4] omnikv bench --batch $BATCHES" >&2
GOMAXPROCS="$THREADS" "$OUT/omnikv" bench --model "$MODEL" --batch "$BATCHES" --context "$CONTEXT" \
	--decode-tokens "$DECODE_TOKENS" --repeat "$REPS" --json >"$OUT/omnikv.jsonl" 2>"$OUT/omnikv.log"

llama_args=()
note=""
if [ -x .cache/llamacpp-bin/llama-batched-bench ]; then
	echo "batch.sh: [3/4] llama.cpp llama-batched-bench" >&2
	if python3 tests/bench/llamacpp_batched.py --model "$MODEL" --batch "$BATCHES" --context "$CONTEXT" \
		--decode-tokens "$((REPS * DECODE_TOKENS))" --threads "$THREADS" >"$OUT/llamacpp.jsonl" 2>"$OUT/llamacpp.log"; then
		llama_args=(--llamacpp "$OUT/llamacpp.jsonl")
	else
		note+=" llama.cpp: run failed, see llamacpp.log."
	fi
else
	note+=" llama.cpp: not built (tests/bench/setup_batched_bench.sh)."
fi

interfere_args=()
if [ "$INTERFERE" -gt 0 ]; then
	echo "batch.sh: [4/4] a $INTERFERE-token prompt arriving while $INTERFERE_BATCH sequences decode" >&2
	GOMAXPROCS="$THREADS" "$OUT/omnikv" bench --model "$MODEL" --batch "$INTERFERE_BATCH" --context "$CONTEXT" \
		--interfere "$INTERFERE" --json >"$OUT/interfere.jsonl" 2>"$OUT/interfere.log"
	interfere_args=(--interfere "$OUT/interfere.jsonl")
fi

note="Run $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $CONTEXT-token prompts, \
$REPS x $DECODE_TOKENS decode steps timed per batch size (medians), $THREADS threads, load average before the run: $LOAD.$note"
python3 tests/bench/batch_report.py --bound "$OUT/bound.jsonl" --omnikv "$OUT/omnikv.jsonl" "${llama_args[@]}" \
	"${interfere_args[@]}" --note "$note" | tee "$OUT/results.md"
