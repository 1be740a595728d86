#!/usr/bin/env python3
"""Markdown table of one batched-decode benchmark run (tests/bench/batch.sh), standard library only.

Inputs, JSON lines:
  bound     go run ./tests/bench/bound --json      the "machine" line: read_gb_s and peak_gflop_s
  omnikv    omnikv bench --batch ... --json        one line per batch size (mode dense)
  llama.cpp tests/bench/llamacpp_batched.py        one line per batch size (optional)
  interfere omnikv bench --batch 8 --interfere N   (optional)

A batch's bound is the larger of its bytes (every weight matrix once, plus the KV its attention reads) over
the measured read bandwidth and its FLOPs over the measured peak; the share of the bound is bound time /
measured step time.

  python3 tests/bench/batch_report.py --bound B.jsonl --omnikv O.jsonl [--llamacpp L.jsonl] [--interfere I.jsonl] [--note TEXT]
"""

import argparse
import json


def read_jsonl(path):
    rows = []
    if not path:
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def machine(rows):
    for r in rows:
        if r.get("kind") == "machine":
            return r
    raise SystemExit("batch_report: no machine line in the bound file")


def bound_ms(r, m):
    """The step's bound in ms: max(bytes / bandwidth, FLOPs / peak)."""
    mem = (r["weight_bytes_per_step"] + r["kv_bytes_per_step"]) / (m["read_gb_s"] * 1e9)
    flop = r["flops_per_step"] / (m["peak_gflop_s"] * 1e9)
    return 1000 * max(mem, flop), ("memory" if mem >= flop else "compute")


def render(bound, ours, llama, interfere, note=""):
    m = machine(bound)
    out = []
    if note:
        out += [note, ""]
    out.append(f"Machine: {m.get('cpu', '?')}, {m.get('threads', '?')} threads; bound uses read {m['read_gb_s']:.1f} GB/s, "
               f"peak {m['peak_gflop_s']:.1f} GFLOP/s (measured in the same run).")
    out.append("")
    lbyb = {r["batch"]: r for r in llama}
    one = next((r for r in ours if r["batch"] == 1), None)
    out.append("| sequences | omnikv ms/step (p50) | omnikv tok/s (all) | x one sequence | bound ms/step | bound by "
               "| share of bound | llama.cpp tok/s | omnikv / llama.cpp |")
    out.append("|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    prev = None
    for r in sorted(ours, key=lambda r: r["batch"]):
        b, kind = bound_ms(r, m)
        share = b / r["decode_ms_per_step"]
        scale = r["decode_tokens_per_s"] / one["decode_tokens_per_s"] if one else None
        l = lbyb.get(r["batch"])
        lt = l["decode_tokens_per_s"] if l else None
        vs = "–" if lt is None else f"{r['decode_tokens_per_s'] / lt:.2f}x"
        cliff = " (below the previous)" if prev is not None and r["decode_tokens_per_s"] < prev else ""
        out.append(f"| {r['batch']} | {r['decode_ms_per_step']:.2f} | {r['decode_tokens_per_s']:.1f}{cliff} | "
                   f"{'–' if scale is None else f'{scale:.2f}x'} | {b:.2f} | {kind} | {share:.0%} | "
                   f"{'–' if lt is None else f'{lt:.1f}'} | {vs} |")
        prev = r["decode_tokens_per_s"]
    for r in interfere:
        out.append("")
        out.append(f"Chunked prefill: {r['batch']} sequences decode ({r['context']}-token prompts); after {r['warm_tokens']} tokens each "
                   f"a {r['interfere_prompt']}-token prompt arrives. Over the {r['window_tokens']} tokens each sequence makes until "
                   f"its first token, their inter-token p50 is {r['itl_p50_ms_during']:.2f} ms against {r['itl_p50_ms_without']:.2f} "
                   f"ms over the same tokens of a run without it (x{r['itl_p50_ratio']:.2f}), p99 {r['itl_p99_ms_during']:.2f} "
                   f"against {r['itl_p99_ms_without']:.2f} ms (x{r['itl_p99_ratio']:.2f}); the prompt's time to first token "
                   f"{r['interfere_ttft_s']:.1f} s.")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bound", required=True)
    p.add_argument("--omnikv", required=True)
    p.add_argument("--llamacpp")
    p.add_argument("--interfere")
    p.add_argument("--note", default="")
    a = p.parse_args()
    print(render(read_jsonl(a.bound), read_jsonl(a.omnikv), read_jsonl(a.llamacpp), read_jsonl(a.interfere), a.note))


if __name__ == "__main__":
    main()
