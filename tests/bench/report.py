#!/usr/bin/env python3
"""Turns the JSON lines of one benchmark run into a markdown results table (standard library only).

Inputs (each optional but bound): JSON-lines files written by
  bound      go run ./tests/bench/bound --json          ("machine" line + one "bound" line per context)
  llama.cpp  tests/bench/llamacpp_bench.py              (one line per context)
  omnikv     omnikv bench --json                        (per context: a "dense" and an "omnikv" line)
Every per-context line carries "context", "prefill_tokens_per_s" and "decode_ms_per_token".

  python3 tests/bench/report.py --bound B.jsonl [--llamacpp L.jsonl] [--omnikv O.jsonl] [--note TEXT]
"""

import argparse
import json
import sys


def read_jsonl(path):
    """Returns the JSON objects of a JSON-lines file; other lines (logs) are ignored."""
    if not path:
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: {e}") from e
    return rows


def by_context(rows):
    return {int(r["context"]): r for r in rows if "context" in r and r.get("kind", "bound") != "machine"}


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def get(rows, ctx, key):
    r = rows.get(ctx)
    return None if r is None else r.get(key)


def split_modes(rows):
    """omnikv bench prints a "dense" and an "omnikv" (sparse) line per context; lines without "mode" are dense."""
    dense = [r for r in rows if r.get("mode", "dense") == "dense"]
    sparse = [r for r in rows if r.get("mode") == "omnikv"]
    return by_context(dense), by_context(sparse)


def render(bound_rows, llama_rows, ours_rows, note=""):
    machine = next((r for r in bound_rows if r.get("kind") == "machine"), None)
    bounds = by_context([r for r in bound_rows if r.get("kind") == "bound"])
    llama = by_context(llama_rows)
    dense, sparse = split_modes(ours_rows)
    contexts = sorted(set(bounds) | set(llama) | set(dense) | set(sparse))
    out = []
    if machine:
        out.append(f"Machine: {machine['cpu']}, {machine['threads']} threads, "
                   f"{machine['mem_bytes'] / 2**30:.1f} GiB RAM. Model: {machine['model']}, "
                   f"{machine['weight_bytes_per_token'] / 1e6:.2f} MB of weights read per decoded token.")
        out.append("")
        out.append(f"| probe | 1 thread | all ({machine['threads']}) threads |")
        out.append("|---|---:|---:|")
        for p in machine["probes"]:
            out.append(f"| {p['name']} | {p['one_thread']:.1f} {p['unit']} | {p['all_threads']:.1f} {p['unit']} |")
        out.append("")
        out.append(f"Bound: read bandwidth {machine['read_gb_s']:.1f} GB/s, peak {machine['peak_gflop_s']:.1f} "
                   f"GFLOP/s (best probes, all threads).")
        out.append("")
    versions = sorted({r["version"] for r in llama_rows if "version" in r})
    if versions:
        out.append("llama.cpp: " + ", ".join(versions) + ".")
        out.append("")
    out.append("| context | prefill tok/s llama.cpp | prefill tok/s omnikv | omnikv/llama.cpp | prefill bound tok/s "
               "| decode ms/tok llama.cpp | decode ms/tok omnikv dense | dense/llama.cpp "
               "| decode ms/tok omnikv sparse | sparse/llama.cpp | decode bound ms/tok (dense) "
               "| bound/llama.cpp | bound/omnikv dense |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in contexts:
        ours_prefill = dense if c in dense else sparse
        lp, op = get(llama, c, "prefill_tokens_per_s"), get(ours_prefill, c, "prefill_tokens_per_s")
        ld, dd, sd = (get(llama, c, "decode_ms_per_token"), get(dense, c, "decode_ms_per_token"),
                      get(sparse, c, "decode_ms_per_token"))
        bp, bd = get(bounds, c, "prefill_tokens_per_s_bound"), get(bounds, c, "decode_ms_per_token_bound")
        out.append(f"| {c} | {fmt(lp, '.1f')} | {fmt(op, '.1f')} | {fmt(ratio(op, lp), '.2f')} | {fmt(bp, '.0f')} "
                   f"| {fmt(ld, '.2f')} | {fmt(dd, '.2f')} | {fmt(ratio(dd, ld), '.2f')} "
                   f"| {fmt(sd, '.2f')} | {fmt(ratio(sd, ld), '.2f')} | {fmt(bd, '.2f')} "
                   f"| {fmt(ratio(bd, ld), '.0%')} | {fmt(ratio(bd, dd), '.0%')} |")
    out.append("")
    out.append("Prefill omnikv/llama.cpp > 1: omnikv is faster. Decode x/llama.cpp > 1: x is slower. "
               "Dense: every layer attends to the whole context (what llama.cpp does); sparse: OmniKV "
               "(filter layers pick the tokens the other layers attend to), whose bound is lower than the "
               "dense one shown. bound/x: the share of the dense decode bound that x reaches (100% = at the bound).")
    if note:
        out.append("")
        out.append(note)
    return "\n".join(out) + "\n"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bound", required=True)
    p.add_argument("--llamacpp")
    p.add_argument("--omnikv")
    p.add_argument("--note", default="")
    a = p.parse_args(argv)
    try:
        text = render(read_jsonl(a.bound), read_jsonl(a.llamacpp), read_jsonl(a.omnikv), a.note)
    except (OSError, ValueError, KeyError) as e:
        print(f"report: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
