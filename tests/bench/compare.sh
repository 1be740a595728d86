#!/usr/bin/env bash
# Single-stream decode of two omnikv binaries, interleaved in one run: `omnikv bench` at each context, the two
# binaries alternating REPS times, then the median of each binary's per-run decode ms/token and their ratio.
# For "no regression" checks of a change (the old binary built from the commit before it).
#
# Usage: tests/bench/compare.sh OLD_BINARY NEW_BINARY
# Env:   OMNIKV_MODEL (.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf), CONTEXTS (128,2048), REPS (7),
#        DECODE_TOKENS (64), MODES (dense), EXTRA (more omnikv bench flags, e.g. --synthetic-kv)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
old=$1 new=$2
MODEL="${OMNIKV_MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
CONTEXTS="${CONTEXTS:-128,2048}"
REPS="${REPS:-7}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq 1 "$REPS"); do
	for which in old new; do
		bin=$old
		[ "$which" = new ] && bin=$new
		"$bin" bench --model "$MODEL" --context "$CONTEXTS" --decode-tokens "${DECODE_TOKENS:-64}" \
			--modes "${MODES:-dense}" ${EXTRA:-} --json 2>/dev/null | sed "s/^{/{\"which\":\"$which\",\"rep\":$i,/" >>"$out"
		echo "compare.sh: run $i/$REPS $which done" >&2
	done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
keys = sorted({(r["mode"], r["context"]) for r in rows})
print("| mode | context | old ms/token (median) | new ms/token (median) | new / old | runs |")
print("|---|---:|---:|---:|---:|---:|")
for mode, c in keys:
    get = lambda w: [r["decode_ms_per_token"] for r in rows if r["which"] == w and r["mode"] == mode and r["context"] == c]
    o, n = get("old"), get("new")
    print(f"| {mode} | {c} | {statistics.median(o):.2f} | {statistics.median(n):.2f} | {statistics.median(n)/statistics.median(o):.3f} | {len(o)} + {len(n)} |")
# With both modes: OmniKV's speed-up over dense, per binary (median of the per-run ratios).
for c in sorted({r["context"] for r in rows}):
    out = []
    for w in ("old", "new"):
        ratios = []
        for rep in sorted({r["rep"] for r in rows}):
            d = [r["decode_ms_per_token"] for r in rows if (r["which"], r["rep"], r["context"], r["mode"]) == (w, rep, c, "dense")]
            o = [r["decode_ms_per_token"] for r in rows if (r["which"], r["rep"], r["context"], r["mode"]) == (w, rep, c, "omnikv")]
            if d and o:
                ratios.append(d[0] / o[0])
        if ratios:
            out.append(f"{w} {statistics.median(ratios):.2f}x ({', '.join(f'{x:.2f}' for x in ratios)})")
    if out:
        print(f"\nOmniKV speed-up over dense at {c}: " + "; ".join(out))
PY
