"""Writes tests/reference/chat/expected_templates.json: chat templates rendered by Hugging Face transformers'
apply_chat_template (tokenize=False), the golden backend/tokenizer's TestTemplateGolden compares the Go
renderer (github.com/ardanlabs/jinja with the globals of backend/tokenizer/chat.go) with.

Templates: SmolLM2's (from the model's GGUF: env OMNIKV_MODEL or .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf)
and those tests/reference/chat/fetch.sh puts in .cache/chat/templates (Llama-3.1, Llama-3.2, Qwen2.5,
Mistral-Nemo). Each is wrapped in a PreTrainedTokenizerFast that carries the model's special tokens, so that
apply_chat_template passes them as the template's bos_token/eos_token/... as it does for the real model. The
golden keeps, per case: the template's name, the special tokens, extra template variables, the messages,
add_generation_prompt, and the rendered text or the error the template raised. No torch needed.

    tests/reference/chat/fetch.sh --venv
    .cache/chatref/bin/python tests/reference/chat/make_template_golden.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = os.path.join(HERE, "expected_templates.json")
TEMPLATES = os.path.join(ROOT, ".cache", "chat", "templates")

# The special tokens each model's tokenizer_config.json declares (as transformers loads them).
SPECIAL = {
    "llama3_1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3_2": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen2_5": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "mistral_nemo": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
}

U = "user"
A = "assistant"
S = "system"
CONVERSATIONS = [
    [(U, "What is 2+2?")],
    [(S, "You are a terse assistant."), (U, "What is 2+2?")],
    [(U, "Hi!"), (A, "Hello! How can I help?"), (U, "Tell me a joke.")],
    [(S, "  Be kind.\n"), (U, "  leading and trailing spaces  "), (A, "\nnewlines\n\n"), (U, "tab\there\r\nCRLF")],
    [(U, "Ünïcödé ✓ 日本語 🙂 — “quotes” and 'apostrophes' {{ not a tag }} {% neither %}")],
    [(U, "Answer with JSON."), (A, '{"answer": 4, "note": "a \\"quoted\\" word"}')],
    [(U, "")],
    [(S, "Only a system message.")],
    # Mistral refuses these (roles must alternate user/assistant after an optional system message).
    [(U, "one"), (U, "two")],
    [(U, "one"), (A, "two"), (S, "a system message late")],
]
# A tool, its keys sorted at every level (the Go test reads it back from JSON into Go maps, whose keys the
# renderer orders; Python keeps the order written): the templates print it with |tojson (Llama's with indent).
TOOL = {"function": {"description": "The weather in a city, in °C.", "name": "get_weather",
                     "parameters": {"properties": {"city": {"description": "The city's name", "type": "string"}},
                                    "required": ["city"], "type": "object"}},
        "type": "function"}
VARS = {"llama3_2": [{}, {"date_string": "02 Dec 2026"}],
        "llama3_1": [{}, {"date_string": "02 Dec 2026"}, {"tools": [TOOL]}],
        "qwen2_5": [{}, {"tools": [TOOL]}],
        "mistral_nemo": [{}, {"tools": [TOOL]}]}


def smol_template():
    from gguf import GGUFReader
    p = os.environ.get("OMNIKV_MODEL") or os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    r = GGUFReader(p)
    f = lambda name: r.fields[name].contents()
    tokens = f("tokenizer.ggml.tokens")
    special = {"bos_token": tokens[f("tokenizer.ggml.bos_token_id")], "eos_token": tokens[f("tokenizer.ggml.eos_token_id")]}
    for key, name in (("unk_token", "tokenizer.ggml.unknown_token_id"), ("pad_token", "tokenizer.ggml.padding_token_id")):
        if name in r.fields:
            special[key] = tokens[f(name)]
    return f("tokenizer.chat_template"), special


def hf_tokenizer(template, special):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    vocab = {"<unk-placeholder>": 0}
    for tok in special.values():
        vocab.setdefault(tok, len(vocab))
    t = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk-placeholder>"))
    return PreTrainedTokenizerFast(tokenizer_object=t, chat_template=template, **special)


def main():
    templates = {"smollm2": smol_template()}
    for name, special in SPECIAL.items():
        with open(os.path.join(TEMPLATES, name + ".jinja"), encoding="utf-8") as f:
            templates[name] = (f.read(), special)
    cases = []
    for name, (template, special) in templates.items():
        tok = hf_tokenizer(template, special)
        for extra in VARS.get(name, [{}]):
            for conv in CONVERSATIONS:
                msgs = [{"role": r, "content": c} for r, c in conv]
                for gen in (True, False):
                    case = {"template": name, "special": special, "vars": extra, "messages": msgs, "add_generation_prompt": gen}
                    try:
                        case["text"] = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen, **extra)
                    except Exception as e:  # the template's raise_exception: jinja2 TemplateError
                        case["error"] = str(e)
                    cases.append(case)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(json.dumps(cases, ensure_ascii=False, indent=1) + "\n")
    errors = sum("error" in c for c in cases)
    print(f"wrote {OUT}: {len(cases)} cases ({errors} raise) over {len(templates)} templates")


if __name__ == "__main__":
    main()
