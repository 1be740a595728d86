#!/usr/bin/env python3
"""Plots decode ms/token against context length for dense attention and OmniKV from `omnikv bench --json`
output (one JSON object per line, fields mode, context, decode_ms_per_token, resident_kv_bytes, kv_bytes).

    omnikv bench --model M --context 1024,4096,8192,16384,32768 --synthetic-kv --json > .cache/bench/okv.jsonl
    python3 tests/bench/plot_decode.py .cache/bench/okv.jsonl docs/decode_vs_context.png

Needs matplotlib (pip install matplotlib); not part of CI.
"""
from __future__ import annotations

import json
import sys


def load(path: str) -> dict[str, list[tuple[int, float, float]]]:
    series: dict[str, list[tuple[int, float, float]]] = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            series.setdefault(r["mode"], []).append(
                (r["context"], r["decode_ms_per_token"], r.get("resident_kv_bytes", 0) / 2**20))
    for v in series.values():
        v.sort()
    return series


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = load(sys.argv[1])
    if not series:
        sys.exit(f"no benchmark lines in {sys.argv[1]}")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, pts in sorted(series.items()):
        ctx = [p[0] for p in pts]
        ax.plot(ctx, [p[1] for p in pts], marker="o", label=mode)
        ax2.plot(ctx, [p[2] for p in pts], marker="o", label=mode)
    for a, title, unit in ((ax, "decode latency", "ms / token"), (ax2, "resident KV (fast tier)", "MiB")):
        a.set_xscale("log", base=2)
        a.set_xlabel("context (tokens)")
        a.set_ylabel(unit)
        a.set_title(title)
        a.grid(True, alpha=0.3)
        a.legend()
    fig.suptitle("SmolLM2-135M-Instruct on 2 CPU cores: dense vs OmniKV (defaults: budget 2048, filter layers 1,6,14, wait 1)")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
