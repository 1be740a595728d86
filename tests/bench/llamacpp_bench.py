#!/usr/bin/env python3
"""Prefill and decode speed of llama.cpp (llama-cpp-python) on a GGUF model, with the definitions that
`omnikv bench` uses, so that both can be compared from one run (tests/bench/run_all.sh).

For each context length C:
  prompt      exactly C tokens of deterministic filler text, tokenized by the model (no BOS added);
  prefill     tokens/s = C / (wall time to evaluate the C prompt tokens from an empty KV cache), the
              prompt being fed in n_batch-token chunks; median over R repetitions;
  decode      ms/token = median wall time of one decode step (evaluate one token) over N generated tokens
              after that prompt, each the greedy argmax of the previous step's logits (argmax not timed,
              EOS ignored); median of all R x N steps.

Output: one JSON line per context on stdout (engine, version, context, prefill_tokens_per_s,
decode_ms_per_token, ...), then a human table on stderr (or stdout with --table-stdout).
Run with the venv made by tests/bench/setup_llamacpp.sh:
  .cache/benchvenv/bin/python tests/bench/llamacpp_bench.py --model PATH --context 128,2048,8192
"""

import argparse
import json
import os
import statistics
import sys
import time

DEFAULT_MODEL = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"

# Filler text: a fixed set of sentences cycled with a running section number, so that the prompt is the
# same on every run and every machine, and varied enough to tokenize like prose.
SENTENCES = [
    "The river keeps a record of every season in the layers of silt along its banks.",
    "Engineers measured the bridge each spring and wrote the numbers in a green notebook.",
    "A small library at the end of the street lends maps, tools and seeds to anyone who asks.",
    "When the wind turns east the harbour smells of salt, tar and fresh bread from the bakery.",
    "She counted the steps to the lighthouse twice and got two different answers.",
    "Most of the old orchard was replanted after the storm, apple trees first and pears later.",
    "The committee agreed to meet on Thursdays, except in August when nobody is in town.",
    "Every clock in the station shows a slightly different time, and travellers trust none of them.",
]


def filler_text(n_sentences):
    parts = []
    for i in range(n_sentences):
        if i % len(SENTENCES) == 0:
            parts.append(f"\n\nSection {i // len(SENTENCES) + 1}.")
        parts.append(SENTENCES[i % len(SENTENCES)])
    return " ".join(parts)


def prompt_tokens(llm, n):
    """Exactly n tokens of filler text, tokenized by the model itself."""
    sentences = max(8, n // 10)
    while True:
        toks = llm.tokenize(filler_text(sentences).encode("utf-8"), add_bos=False, special=False)
        if len(toks) >= n:
            return list(toks[:n])
        sentences *= 2


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = os.environ.get("OMNIKV_MODEL") or DEFAULT_MODEL
    p.add_argument("--model", default=model, help=f"GGUF file (default: $OMNIKV_MODEL or {DEFAULT_MODEL})")
    p.add_argument("--context", default="128,2048,8192", help="comma-separated prompt lengths in tokens")
    p.add_argument("--decode-tokens", type=int, default=64, help="tokens generated after each prompt (N)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per context (R)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads (default: all cores)")
    p.add_argument("--n-batch", type=int, default=512, help="prompt chunk size (llama.cpp n_batch = n_ubatch)")
    p.add_argument("--flash-attn", type=int, choices=(0, 1), default=0, help="llama.cpp flash attention")
    p.add_argument("--table-stdout", action="store_true", help="print the human table on stdout too")
    a = p.parse_args(argv)
    try:
        a.contexts = [int(c) for c in a.context.split(",")]
    except ValueError:
        p.error(f"--context {a.context!r}: not a comma-separated list of integers")
    if any(c <= 0 for c in a.contexts) or a.decode_tokens < 1 or a.reps < 1 or a.threads < 1:
        p.error("contexts, --decode-tokens, --reps and --threads must be positive")
    if not os.path.isfile(a.model):
        p.error(f"model {a.model} not found (set --model or OMNIKV_MODEL)")
    return a


def measure(lib, np, llm, prompt, decode_tokens):
    """One repetition: returns (prefill seconds, [decode step seconds]). Only the forward passes are timed
    (as in `omnikv bench`); the greedy argmax of each step's logits is not."""
    n_vocab = llm.n_vocab()
    llm.reset()  # n_tokens = 0; eval() then drops every KV cell from position 0 on
    t0 = time.perf_counter()
    llm.eval(prompt)
    prefill = time.perf_counter() - t0
    steps = []
    for _ in range(decode_tokens):
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
        tok = int(logits.argmax())  # greedy; EOS is not special here
        t0 = time.perf_counter()
        llm.eval([tok])
        steps.append(time.perf_counter() - t0)
    return prefill, steps


def main(argv):
    a = parse_args(argv)
    import numpy as np
    import llama_cpp

    n_ctx = max(a.contexts) + a.decode_tokens + 8
    llm = llama_cpp.Llama(
        model_path=a.model, n_ctx=n_ctx, n_batch=a.n_batch, n_ubatch=a.n_batch, n_threads=a.threads,
        n_threads_batch=a.threads, logits_all=False, flash_attn=bool(a.flash_attn), verbose=False,
    )
    # Warm-up: page the weights in and let the thread pool start.
    llm.reset()
    llm.eval(prompt_tokens(llm, 32))

    rows = []
    for ctx in a.contexts:
        prompt = prompt_tokens(llm, ctx)
        assert len(prompt) == ctx
        prefills, steps = [], []
        for _ in range(a.reps):
            p, s = measure(llama_cpp, np, llm, prompt, a.decode_tokens)
            prefills.append(p)
            steps.extend(s)
        prefill_s = statistics.median(prefills)
        row = {
            "engine": "llama.cpp",
            "version": f"llama-cpp-python {llama_cpp.__version__}",
            "context": ctx,
            "prefill_tokens_per_s": ctx / prefill_s,
            "prefill_s_median": prefill_s,
            "prefill_s": prefills,
            "decode_ms_per_token": statistics.median(steps) * 1e3,
            "decode_ms_p10": statistics.quantiles(steps, n=10)[0] * 1e3 if len(steps) > 1 else steps[0] * 1e3,
            "decode_ms_p90": statistics.quantiles(steps, n=10)[-1] * 1e3 if len(steps) > 1 else steps[0] * 1e3,
            "decode_tokens": a.decode_tokens,
            "reps": a.reps,
            "threads": a.threads,
            "n_batch": a.n_batch,
            "flash_attn": a.flash_attn,
            "kv_type": "f16",
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    out = sys.stdout if a.table_stdout else sys.stderr
    print(f"\nllama-cpp-python {llama_cpp.__version__}, {a.threads} threads, n_batch {a.n_batch}, "
          f"flash_attn {a.flash_attn}, {a.reps} reps, {a.decode_tokens} decode tokens", file=out)
    print(f"{'context':>8} {'prefill tok/s':>14} {'decode ms/tok':>14} {'p10':>7} {'p90':>7}", file=out)
    for r in rows:
        print(f"{r['context']:>8} {r['prefill_tokens_per_s']:>14.1f} {r['decode_ms_per_token']:>14.2f} "
              f"{r['decode_ms_p10']:>7.2f} {r['decode_ms_p90']:>7.2f}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
