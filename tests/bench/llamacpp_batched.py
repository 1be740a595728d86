#!/usr/bin/env python3
"""Batched decode speed of llama.cpp itself (its `llama-batched-bench` tool), the anchor against which the
batched decode of our engine is compared in the same run.

For each batch size B, llama-batched-bench (prompt not shared: no -pps) does, from an empty KV cache:
  prefill     B sequences of C random prompt tokens each, evaluated together (B*C tokens, n_batch chunks);
  decode      N steps, each step one batch of B tokens (one new token per sequence, random tokens).
It reports S_PP = B*C / prefill time and S_TG = B*N / decode time (tokens/s over all sequences), once.

Output: one JSON line per batch size on stdout (engine, version, batch, context, decode_tokens,
decode_tokens_per_s = S_TG, decode_ms_per_step = 1000*B/S_TG, prefill_tokens_per_s = S_PP, ...), then a
human table on stderr. Stdlib only. The binary comes from tests/bench/setup_batched_bench.sh:
  python3 tests/bench/llamacpp_batched.py --model PATH --batch 1,2,4,8,16,32 --context 128 --decode-tokens 64
"""

import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODEL = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_BIN = os.path.join(ROOT, ".cache/llamacpp-bin/llama-batched-bench")

# A result row of the markdown table: | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
ROW = re.compile(r"^\|" + r"\s*([0-9.]+)\s*\|" * 10 + r"\s*$")


def parse_args():
    model = os.environ.get("OMNIKV_MODEL", DEFAULT_MODEL)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=model, help=f"GGUF file (default: $OMNIKV_MODEL or {DEFAULT_MODEL})")
    p.add_argument("--batch", default="1,2,4,8,16,32", help="comma-separated batch sizes (parallel sequences)")
    p.add_argument("--context", type=int, default=128, help="prompt tokens per sequence (C)")
    p.add_argument("--decode-tokens", type=int, default=64, help="tokens generated per sequence (N)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads (default: all cores)")
    p.add_argument("--n-batch", type=int, default=2048, help="llama.cpp n_batch (logical batch size)")
    p.add_argument("--n-ubatch", type=int, default=512, help="llama.cpp n_ubatch (physical batch size)")
    p.add_argument("--flash-attn", choices=("on", "off", "auto"), default="off",
                   help="llama.cpp flash attention (default off, as in llamacpp_bench.py)")
    p.add_argument("--bin", default=DEFAULT_BIN, help="llama-batched-bench binary (default: %(default)s)")
    return p.parse_args()


def tool_version(binary):
    """("llama-cpp-python X", "llama.cpp V build N commit H") from the setup stamp and `--version`."""
    try:
        with open(binary + ".source") as f:
            source = f.read().strip()
    except OSError:
        source = "llama-cpp-python (unknown version)"
    v = subprocess.run([binary, "--version"], capture_output=True, text=True)
    out = v.stdout + v.stderr
    m = re.search(r"version: (\S+) \(build (\d+), commit (\w+)\)", out)
    return source, (f"llama.cpp {m[1]} build {m[2]} commit {m[3]}" if m else "llama.cpp (unknown build)")


def main():
    a = parse_args()
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"llama-batched-bench not found at {a.bin}: build it first with tests/bench/setup_batched_bench.sh")
    if not os.path.isfile(a.model):
        sys.exit(f"model not found: {a.model}")
    batches = [int(b) for b in a.batch.split(",") if b.strip()]
    # Each sequence has its own prompt: the KV cache must hold max(B) * (C + N) cells.
    n_ctx = max(batches) * (a.context + a.decode_tokens)
    cmd = [a.bin, "-m", a.model, "-c", str(n_ctx), "-b", str(a.n_batch), "-ub", str(a.n_ubatch),
           "-npp", str(a.context), "-ntg", str(a.decode_tokens), "-npl", ",".join(map(str, batches)),
           "-t", str(a.threads), "-fa", a.flash_attn]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-4000:] + run.stderr[-4000:])
        sys.exit(f"llama-batched-bench failed with exit status {run.returncode}")

    # Settings line: "llama_batched_bench: n_kv_max = 6144, n_batch = 2048, ..., n_threads = 2, ..."
    settings = {k: int(v) for k, v in re.findall(r"(\w+) = (-?\d+)", run.stdout)}
    rows = {}
    for line in run.stdout.splitlines():
        m = ROW.match(line.strip())
        if m:
            pp, tg, b, n_kv, t_pp, s_pp, t_tg, s_tg, t, s = (float(x) for x in m.groups())
            rows[int(b)] = dict(n_kv=int(n_kv), t_pp=t_pp, s_pp=s_pp, t_tg=t_tg, s_tg=s_tg)
    missing = [b for b in batches if b not in rows]
    if missing:
        sys.stderr.write(run.stdout[-4000:] + run.stderr[-4000:])
        sys.exit(f"no result from llama-batched-bench for batch sizes {missing}")

    source, build = tool_version(a.bin)
    results = []
    for b in batches:
        r = rows[b]
        row = {
            "engine": "llama.cpp",
            "version": f"{source} ({build})",
            "tool": "llama-batched-bench",
            "model": os.path.basename(a.model),
            "batch": b,
            "context": a.context,
            "decode_tokens": a.decode_tokens,
            "decode_tokens_per_s": r["s_tg"],
            "decode_ms_per_step": round(1000.0 * b / r["s_tg"], 3),
            "decode_s": r["t_tg"],
            "prefill_tokens_per_s": r["s_pp"],
            "prefill_s": r["t_pp"],
            "threads": settings.get("n_threads", a.threads),
            "n_batch": a.n_batch,
            "n_ubatch": a.n_ubatch,
            "flash_attn": a.flash_attn,
            "n_ctx": settings.get("n_kv_max", n_ctx),
        }
        results.append(row)
        print(json.dumps(row), flush=True)

    err = sys.stderr
    print(f"\n{source}, {build}, {row['threads']} threads, prompt {a.context} tokens/sequence, "
          f"{a.decode_tokens} decode steps, flash_attn {a.flash_attn}", file=err)
    print(f"{'batch':>6} {'decode tok/s':>13} {'ms/step':>9} {'prefill tok/s':>14}", file=err)
    for r in results:
        print(f"{r['batch']:>6} {r['decode_tokens_per_s']:>13.2f} {r['decode_ms_per_step']:>9.2f} "
              f"{r['prefill_tokens_per_s']:>14.2f}", file=err)


if __name__ == "__main__":
    main()
