#!/usr/bin/env bash
# The engine's own decode step beside what clients see through tritonserver, from one run: `omnikv bench
# --batch` (sequences decoding together, no server) at each level, then tests/perf/concurrency.py against
# the running server (scripts/serve.sh) at the same concurrency: streams of PROMPT-token prompts, TOKENS
# generated each (ignore_eos), REQUESTS requests per stream. One stream's inter-token p50 through the server
# against the engine's step at batch 1 says what serving adds; at higher concurrency the server's batch
# also carries the streams' own prompt chunks (prefill), so its inter-token time is above the pure decode step.
#
# Usage: scripts/serve.sh && tests/perf/engine_vs_server.sh
# Env:   LEVELS (1,2,4,8,16), PROMPT (128), TOKENS (256), REQUESTS (2), OMNIKV_MODEL, OUT (.cache/perf/engine-vs-server)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
LEVELS=${LEVELS:-1,2,4,8,16}
PROMPT=${PROMPT:-128}
TOKENS=${TOKENS:-256}
REQUESTS=${REQUESTS:-2}
MODEL=${OMNIKV_MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
OUT=${OUT:-.cache/perf/engine-vs-server}
mkdir -p "$OUT"
curl -sf http://127.0.0.1:8000/v2/health/ready >/dev/null || { echo "engine_vs_server.sh: start the server first (scripts/serve.sh)" >&2; exit 1; }
go build -o "$OUT/omnikv" ./backend/cmd/omnikv
echo "engine_vs_server.sh: [1/2] the engine alone (omnikv bench --batch $LEVELS)" >&2
"$OUT/omnikv" bench --model "$MODEL" --batch "$LEVELS" --context "$PROMPT" --decode-tokens 32 --repeat 3 --json \
  >"$OUT/engine.jsonl" 2>"$OUT/engine.log"
echo "engine_vs_server.sh: [2/2] through tritonserver (tests/perf/concurrency.py --levels $LEVELS)" >&2
.cache/tritonvenv/bin/python tests/perf/concurrency.py --levels "$LEVELS" --prompt "$PROMPT" --tokens "$TOKENS" \
  --requests "$REQUESTS" --json >"$OUT/server.jsonl" 2>"$OUT/server.log"
python3 - "$OUT/engine.jsonl" "$OUT/server.jsonl" <<'PY' | tee "$OUT/results.md"
import json, sys
eng = {r["batch"]: r for r in map(json.loads, open(sys.argv[1])) if "batch" in r}
srv = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
print("| concurrency | engine ms/step (batch = concurrency) | server inter-token p50 | p99 | server / engine (p50) | server tok/s (all) | TTFT p50 |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for r in srv:
    e = eng.get(r["concurrency"])
    step = e["decode_ms_per_step"] if e else float("nan")
    print(f"| {r['concurrency']} | {step:.2f} | {r['itl_p50_ms']:.2f} | {r['itl_p99_ms']:.2f} | {r['itl_p50_ms']/step:.2f} | "
          f"{r['tokens_per_s']:.1f} | {r['ttft_p50_ms']:.0f} ms |")
PY
