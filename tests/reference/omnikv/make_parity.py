#!/usr/bin/env python3
"""Reference index sets for OmniKV's selection rule (backend/llama/omnikv_parity_test.go compares with them).

    .cache/refvenv/bin/python tests/reference/omnikv/make_parity.py [--model DIR] [--out FILE]

The tiny golden model (tinymodel preset tiny_llama_f32, regenerated bit-exactly by Go with mktiny) runs a
fixed prompt of PROMPT_LEN tokens followed by DECODE_LEN teacher-forced tokens in one causal forward pass
(float32, eager attention): row p of every layer is then exactly what the cached decode computes for the
token at position p. At the first filter layer (FILTER_LAYER; every layer below it is dense, so its inputs
are dense ones) a forward pre-hook takes the attention module's input (post input_layernorm) and its
(cos, sin); the queries and keys are recomputed from them in float64 with the module's own q_proj/k_proj
weights and Hugging Face's RoPE formula. A self-check rebuilds the attention output from those q, k, v and
compares it with what the module returned.

Per decode step s (s = 0: the first generated token fed back, at position PROMPT_LEN + s) and per selector
the rule of docs (facts/omnikv.md), in float64:
  candidates j in [0, PROMPT_LEN); scale = 1/sqrt(head_dim); GQA: query head h uses kv head h // group
  last                 s_j = max_h q_h.k_j * scale                       (current query)
  softmax_before_last  s_j = max_h softmax_j(q_h.k_j * scale)            (current query)
  uniform / exp        s_j = sum_i alpha_i max_h softmax_j(q_{i,h}.k_j * scale) over the queries of the
                       last WINDOW tokens, each RoPE'd at its own position; alpha = 1 (uniform) or
                       1, 1/2, 1/4, ... from the newest (exp); the last max(0, WINDOW - s) prompt tokens are
                       forced in and the top-k shrinks by as many.
  top-k: score descending, equal scores by lower index; the set is stored ascending.
Per step also the score gap between the k-th and (k+1)-th ranked free candidates (how close a tie is).

For uniform/exp it also stores the selection under the reference code's quirk (every window query RoPE'd at
the current position), which the project does not follow: the Go test checks that it would notice.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch
import transformers
from transformers import LlamaForCausalLM

FORMAT, VERSION = "omnikv-parity", 1
PRESET = "tiny_llama_f32"
FILTER_LAYER = 1
PROMPT_LEN, DECODE_LEN = 120, 24
BUDGET, WINDOW = 24, 8
SEED = 20261128
SELECTORS = ["last", "softmax_before_last", "uniform", "exp"]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_model(d):
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        subprocess.run(["go", "run", "./tests/reference/tinymodel/cmd/mktiny", "-out", d, "-preset", PRESET],
                       cwd=ROOT, check=True)
    return d


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def capture(model, ids):
    """Runs the model over ids; returns float64 (q_pre, cos, sin, k, v) of FILTER_LAYER: q_pre (T, H, d)
    before RoPE, cos/sin (T, d), k/v (T, KV, d) with k after RoPE."""
    attn = model.model.layers[FILTER_LAYER].self_attn
    got = {}

    def pre(mod, args, kwargs):
        hs = kwargs.get("hidden_states", args[0] if args else None)
        pe = kwargs.get("position_embeddings", args[1] if len(args) > 1 else None)
        got["hs"], got["cos"], got["sin"] = hs.detach(), pe[0].detach(), pe[1].detach()

    def post(mod, args, kwargs, out):
        got["out"] = out[0].detach()

    h1 = attn.register_forward_pre_hook(pre, with_kwargs=True)
    h2 = attn.register_forward_hook(post, with_kwargs=True)
    with torch.no_grad():
        model(torch.tensor([ids]), use_cache=False)
    h1.remove()
    h2.remove()
    cfg = model.config
    H, KV, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    hs = got["hs"][0].double()  # (T, hidden)
    T = hs.shape[0]
    q_pre = (hs @ attn.q_proj.weight.double().T).view(T, H, d)
    k_pre = (hs @ attn.k_proj.weight.double().T).view(T, KV, d)
    v = (hs @ attn.v_proj.weight.double().T).view(T, KV, d)
    cos, sin = got["cos"][0].double(), got["sin"][0].double()  # (T, d)
    k = k_pre * cos[:, None, :] + rotate_half(k_pre) * sin[:, None, :]
    # Self-check: causal attention from these q, k, v, through o_proj, equals the module's output.
    q = rope(q_pre, cos, sin)
    group = H // KV
    kk, vv = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (T, H, d)
    logits = torch.einsum("thd,shd->hts", q, kk) / np.sqrt(d)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    logits = logits.masked_fill(mask, float("-inf"))
    o = torch.einsum("hts,shd->thd", torch.softmax(logits, dim=-1), vv).reshape(T, H * d)
    o = o @ attn.o_proj.weight.double().T
    ref = got["out"][0].double()
    err = ((o - ref).abs().max() / ref.abs().max()).item()
    if err > 1e-4:
        sys.exit(f"capture self-check failed: recomputed attention differs from the module by {err:.2e}")
    return q_pre, cos, sin, k, v, err


def rope(x, cos, sin):
    """x (T, H, d) with cos/sin (T, d) of the rows' positions."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


def head_scores(q, k, n, group, softmax):
    """q (H, d) one query after RoPE, k (T, KV, d): per-head scores over candidates [0, n) -> (H, n)."""
    H, d = q.shape
    kk = k[:n].repeat_interleave(group, dim=1)  # (n, H, d)
    s = torch.einsum("hd,nhd->hn", q, kk) / np.sqrt(d)
    return torch.softmax(s, dim=-1) if softmax else s


def select(scores, k, forced):
    """Top-k of scores (n,) with the last `forced` forced in; returns (sorted indices, gap, kth, next)."""
    n = len(scores)
    free = n - forced
    want = k - forced
    order = sorted(range(free), key=lambda j: (-scores[j], j))  # score descending, then lower index
    chosen = order[:want] + list(range(free, n))
    gap = kth = nxt = None
    if 0 < want < free:
        kth, nxt = scores[order[want - 1]], scores[order[want]]
        gap = kth - nxt
    return sorted(chosen), gap, kth, nxt


def step_scores(sel, step, q_pre, cos, sin, k, n, group, quirk=False):
    p = n + step  # the current token's position
    if sel in ("last", "softmax_before_last"):
        q = rope(q_pre[p:p + 1], cos[p:p + 1], sin[p:p + 1])[0]
        hs = head_scores(q, k, n, group, sel == "softmax_before_last")
        return hs.max(dim=0).values, 0
    rows = list(range(p - WINDOW + 1, p + 1))  # oldest first
    total = torch.zeros(n, dtype=torch.float64)
    for i, r in enumerate(rows):
        pos = p if quirk else r
        q = rope(q_pre[r:r + 1], cos[pos:pos + 1], sin[pos:pos + 1])[0]
        alpha = 1.0 if sel == "uniform" else 2.0 ** (i - WINDOW + 1)
        total += alpha * head_scores(q, k, n, group, True).max(dim=0).values
    return total, min(BUDGET, max(0, WINDOW - step))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, ".cache", "tiny", PRESET))
    ap.add_argument("--out", default=os.path.join(HERE, "testdata", "parity.json"))
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    d = ensure_model(a.model)
    model = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    cfg = model.config
    rng = np.random.default_rng(SEED)
    prompt = [int(x) for x in rng.integers(3, cfg.vocab_size, PROMPT_LEN)]
    decode = [int(x) for x in rng.integers(3, cfg.vocab_size, DECODE_LEN)]
    q_pre, cos, sin, k, v, err = capture(model, prompt + decode)
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    out = {
        "format": FORMAT, "version": VERSION, "model": PRESET,
        "model_sha256": {f: sha256(os.path.join(d, f)) for f in ("config.json", "model.safetensors")},
        "filter_layer": FILTER_LAYER, "budget": BUDGET, "window": WINDOW,
        "prompt": prompt, "decode": decode,
        "notes": {
            "torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__,
            "math": "float64 from the float32 model's layer input; eager attention, CPU",
            "capture_self_check_rel_err": err,
            "steps": "step s feeds decode[s] at position len(prompt)+s; the selection is the one made then",
            "gap": "score of the k-th minus the (k+1)-th ranked free candidate (null when all are taken)",
        },
        "selectors": {}, "quirk": {},
    }
    n = PROMPT_LEN
    for sel in SELECTORS:
        steps = []
        for s in range(DECODE_LEN):
            sc, forced = step_scores(sel, s, q_pre, cos, sin, k, n, group)
            idx, gap, kth, nxt = select(sc.tolist(), BUDGET, forced)
            steps.append({"selected": idx, "forced": forced, "gap": gap, "kth": kth, "next": nxt})
        out["selectors"][sel] = steps
        gaps = [st["gap"] for st in steps if st["gap"] is not None]
        print(f"{sel:20s} min gap {min(gaps):.3e}", file=sys.stderr)
        if sel in ("uniform", "exp"):
            qs = []
            for s in range(DECODE_LEN):
                sc, forced = step_scores(sel, s, q_pre, cos, sin, k, n, group, quirk=True)
                qs.append(select(sc.tolist(), BUDGET, forced)[0])
            out["quirk"][sel] = qs
            same = sum(q == st["selected"] for q, st in zip(qs, steps))
            print(f"{sel:20s} quirk (window RoPE at current position) equals ours at {same}/{DECODE_LEN} steps",
                  file=sys.stderr)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {a.out} ({os.path.getsize(a.out)} bytes); capture self-check {err:.2e}", file=sys.stderr)


if __name__ == "__main__":
    main()
