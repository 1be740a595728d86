"""Derives Metaspace variants of the Llama-2-style tokenizer.json (stdlib only; called by fetch.sh).

The @lenml Llama-2 tokenizer.json uses the legacy Prepend + Replace normalizers. Newer SentencePiece BPE
tokenizer.json files (Mistral, Llama-2 with legacy=false) use a Metaspace pre-tokenizer instead, with the same
Replace/ByteFallback/Fuse/Strip decoder. This writes two such variants beside it, same vocab and merges:
  llama2_meta_first   Metaspace prepend_scheme "first", split false
  llama2_meta_always  Metaspace prepend_scheme "always", split true
Usage: python3 derive_metaspace.py .cache/tok
"""
import json
import os
import sys

VARIANTS = {"llama2_meta_first": ("first", False), "llama2_meta_always": ("always", True)}


def main(tok_dir):
    src = os.path.join(tok_dir, "llama2")
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        base = json.load(f)
    with open(os.path.join(src, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = f.read()
    for name, (scheme, split) in VARIANTS.items():
        out = os.path.join(tok_dir, name)
        if os.path.exists(os.path.join(out, "tokenizer.json")):
            continue
        t = dict(base)
        t["normalizer"] = None
        meta = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split}
        t["pre_tokenizer"] = meta
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(t, f, ensure_ascii=False)
        with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            f.write(cfg)
        print("derive_metaspace.py:", out, "ready")


if __name__ == "__main__":
    main(sys.argv[1])
