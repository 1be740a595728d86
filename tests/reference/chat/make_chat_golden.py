"""Fills the contexts of backend/engine/testdata/chat_turns.json from Hugging Face transformers.

For each recorded conversation and each turn k, the context is
    tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
over the messages so far: every earlier user turn with the assistant's recorded answer, then user turn k.
The tokenizer is SmolLM2's, built from the GGUF's vocabulary, merges, special tokens and chat template
(as transformers' GGUF converter builds it, with SmolLM2's digit splitting; tests/reference/tokenizer has
the tokenizer's own golden), wrapped in transformers' PreTrainedTokenizerFast, so that apply_chat_template is
transformers' own. No torch needed.

    OMNIKV_RECORD_CHAT=1 go test -run TestChatContextMatchesTemplate ./backend/engine/   # answers
    .cache/chatref/bin/python tests/reference/chat/make_chat_golden.py                   # contexts
(.cache/chatref, pinned: tests/reference/chat/fetch.sh --venv creates it)
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
GOLDEN = os.path.join(ROOT, "backend", "engine", "testdata", "chat_turns.json")


def model_path():
    p = os.environ.get("OMNIKV_MODEL") or os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    return p


def gguf_tokenizer(path):
    from gguf import GGUFReader
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, AddedToken
    from transformers import PreTrainedTokenizerFast

    r = GGUFReader(path)
    def field(name):
        return r.fields[name].contents()
    tokens = field("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field("tokenizer.ggml.merges")]
    types = field("tokenizer.ggml.token_type")
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False, byte_fallback=False)
    t = Tokenizer(bpe)
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    t.decoder = decoders.ByteLevel()
    # Control tokens (type 3) are special, as transformers marks them.
    t.add_special_tokens([AddedToken(tok, special=True, normalized=False) for tok, ty in zip(tokens, types) if ty == 3])
    bos = tokens[field("tokenizer.ggml.bos_token_id")]
    eos = tokens[field("tokenizer.ggml.eos_token_id")]
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token=bos, eos_token=eos,
                                   chat_template=field("tokenizer.chat_template"))


def main():
    tok = gguf_tokenizer(model_path())
    with open(GOLDEN, encoding="utf-8") as f:
        cases = json.load(f)
    for case in cases:
        msgs, contexts = [], []
        for k, turn in enumerate(case["turns"]):
            msgs.append({"role": "user", "content": turn["user"]})
            ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
            if hasattr(ids, "keys"):  # newer transformers return a BatchEncoding
                ids = ids["input_ids"]
            contexts.append([int(i) for i in ids])
            msgs.append({"role": "assistant", "content": case["answers"][k]})
        case["contexts"] = contexts
    with open(GOLDEN, "w", encoding="utf-8") as f:
        f.write(json.dumps(cases, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {GOLDEN}: {len(cases)} conversations")


if __name__ == "__main__":
    main()
