"""Writes hf_golden.json: Hugging Face transformers' logits processors applied to random logits.

For each case: float32 logits, a token history, sampling params, and what transformers' own
RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper and
MinPLogitsWarper (in generate's order) make of them: the penalised logits of the history ids, the greedy token, the
surviving ids and their probabilities. Logits are continuous (no ties), so top-k's tie rule, where
this backend and transformers differ, is not exercised.

Run: .cache/refvenv/bin/python backend/sample/testdata/hf_golden.py
"""

import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

VOCAB = 64
CASES = 40


def f32(x):
    return float(torch.tensor(x, dtype=torch.float32).item())


def short(x):
    """The shortest decimal that reads back as the same float32, as a JSON number."""
    return json.loads(np.format_float_positional(np.float32(x), unique=True, trim="0"))


def main():
    g = torch.Generator().manual_seed(1234)
    pick = lambda seq: seq[int(torch.randint(len(seq), (1,), generator=g))]
    cases = []
    for i in range(CASES):
        scale = pick([0.5, 2.0, 5.0])
        logits = (torch.randn(VOCAB, generator=g) * scale).to(torch.float32)
        hist_len = int(torch.randint(0, 25, (1,), generator=g))
        history = torch.randint(0, VOCAB, (hist_len,), generator=g)
        p = {
            "temperature": f32(pick([0.5, 0.8, 1.0, 1.3])),
            "top_k": pick([0, 0, 5, 20, 50]),
            "top_p": f32(pick([1.0, 0.5, 0.8, 0.95])),
            "min_p": f32(pick([0.0, 0.0, 0.05, 0.2])),
            "repetition_penalty": f32(pick([1.0, 1.2, 0.8, 1.5])),
        }
        ids = history.view(1, -1)
        penalised = logits.view(1, -1).clone()
        if p["repetition_penalty"] != 1.0:
            penalised = RepetitionPenaltyLogitsProcessor(p["repetition_penalty"])(ids, penalised)
        warpers = LogitsProcessorList()
        if p["temperature"] != 1.0:
            warpers.append(TemperatureLogitsWarper(p["temperature"]))
        if p["top_k"] != 0:
            warpers.append(TopKLogitsWarper(top_k=p["top_k"]))
        if p["top_p"] < 1.0:
            warpers.append(TopPLogitsWarper(top_p=p["top_p"]))
        if p["min_p"] > 0.0:
            warpers.append(MinPLogitsWarper(min_p=p["min_p"]))
        final = warpers(ids, penalised.clone())
        probs = torch.softmax(final, dim=-1)[0]
        kept = torch.nonzero(torch.isfinite(final[0])).flatten().tolist()
        cases.append({
            "params": p,
            "logits": [short(v) for v in logits.tolist()],
            "history": history.tolist(),
            # penalised logits of the distinct history ids, in increasing id order (others are unchanged)
            "penalised": [[k, short(penalised[0, k])] for k in sorted(set(history.tolist()))],
            "greedy": int(torch.argmax(penalised[0])),
            "kept": kept,
            "probs": [float("%.9g" % float(probs[k])) for k in kept],
        })
    out = {
        "magic": "omnikv-sample-hf-golden",
        "version": 1,
        "generator": "backend/sample/testdata/hf_golden.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "vocab": VOCAB,
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}: {len(cases)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
