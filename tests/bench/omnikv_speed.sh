#!/usr/bin/env bash
# Dense against OmniKV decode speed and resident KV, 1K to 32K context, in one run, then the plot.
#   tests/bench/omnikv_speed.sh            -> .cache/bench/omnikv-<time>/{okv.jsonl, table.txt}, docs/decode_vs_context.png
# The KV cache is filled with random rows (--synthetic-kv): the CPU prefill of 32K tokens costs many minutes and
# does not change what a decode step reads. CONTEXTS, DECODE_TOKENS and EXTRA (more omnikv bench flags) can be set.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
model=${OMNIKV_MODEL:-$(scripts/fetch-model.sh)}
out=.cache/bench/omnikv-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out" build
CGO_ENABLED=0 go build -o build/omnikv ./backend/cmd/omnikv
contexts=${CONTEXTS:-1024,4096,8192,16384,32768}
# shellcheck disable=SC2086
build/omnikv bench --model "$model" --context "$contexts" --decode-tokens "${DECODE_TOKENS:-32}" --synthetic-kv \
  --modes dense,omnikv ${EXTRA:-} --json | tee "$out/okv.jsonl"
python3 - "$out/okv.jsonl" <<'PY' | tee "$out/table.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {(r["mode"], r["context"]): r for r in rows}
print("| context | dense ms/token | OmniKV ms/token | speed-up | dense KV MiB | OmniKV resident KV MiB | resident / dense | rows fetched/step |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in sorted({r["context"] for r in rows}):
    d, o = by.get(("dense", c)), by.get(("omnikv", c))
    if not d or not o:
        continue
    print(f"| {c} | {d['decode_ms_per_token']:.1f} | {o['decode_ms_per_token']:.1f} | {d['decode_ms_per_token']/o['decode_ms_per_token']:.2f}x "
          f"| {d['resident_kv_bytes']/2**20:.1f} | {o['resident_kv_bytes']/2**20:.1f} | {o['resident_kv_bytes']/d['resident_kv_bytes']:.1%} "
          f"| {o.get('rows_fetched_per_step', 0):.0f} |")
PY
py=.cache/refvenv/bin/python
[ -x "$py" ] || py=python3
"$py" tests/bench/plot_decode.py "$out/okv.jsonl" docs/decode_vs_context.png || echo "plot skipped (needs matplotlib)" >&2
echo "results in $out" >&2
