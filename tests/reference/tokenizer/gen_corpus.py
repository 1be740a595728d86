"""Writes corpus.jsonl: the strings whose token ids the Go tokenizer must reproduce exactly.

Hand-written cases plus systematic combinations (contractions in every case, whitespace runs, digit runs).
Run: python3 gen_corpus.py  (no dependencies; output is deterministic and committed).
"""
import json
import os
import random

HAND = [
    "", " ", "  ", "\t", "\n", "\r\n", "a", "Hello world", "Hello, world!", " Hello", "Hello ",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?", "I'm fine, thanks. And you?",
    "héllo wörld", "e\u0301te\u0301", "naïve café résumé", "Ångström", "Straße", "ǅemal", "ﬁnance",
    "日本語のテキストです。", "中文字符测试，标点符号！", "한국어 텍스트", "東京タワー 333m",
    "مرحبا بالعالم", "שלום עולם", "Привет, мир!", "Γειά σου Κόσμε", "नमस्ते दुनिया", "ไทย ภาษา",
    "🙂", "😀😃😄", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "👍🏽 thumbs", "❤️", "a🙂b", " 🙂 ", "🇫🇷🇩🇪",
    "\u200b zero width", "non\u00a0breaking\u00a0space", "em\u2003space", "ideo\u3000space",
    "tab\tseparated\tvalues", "line1\nline2\nline3", "windows\r\nline\r\nend\r\n", "mixed \t\n \r\n  x",
    "trailing spaces   ", "   leading spaces", "many          spaces", "\n\n\n", "\t\t\tindent",
    " \n ", "a \n b", "x\n\n\ny", "end.\n", "  \n\n  ", "\r", "\r\r\n\n", "a\r\nb",
    "0", "7", "42", "123", "1234", "12345", "123456789", "3.14159265358979", "1,000,000", "-273.15",
    "2026-11-28T15:15:17Z", "+1 (555) 010-9999", "0x7fffffff", "1e-9", "v1.2.3", "٣٤٥ arabic digits",
    "²³ superscripts ½ fractions", "Ⅻ roman numeral", "abc123def456", "a1b2c3", " 1 2 3", "99 bottles",
    "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "if x != None and y >= 3: print('ok')", "console.log(`template ${x}`);",
    "<div class=\"a\">text</div>", "SELECT * FROM users WHERE id = 42;", "#include <stdio.h>",
    "fn main() { println!(\"hi\"); }", "x = [1, 2, 3]  # comment", "$ ls -la | grep '^d'",
    "https://example.com/path?q=1&r=two#frag", "http://localhost:8000/v2/models/omnikv/infer",
    "user@example.org", "C:\\Windows\\System32", "/usr/local/bin/python3",
    "<|im_start|>", "<|im_end|>", "<|im_start|>user\nhi<|im_end|>\n", "text <|im_start|> inside",
    "partial <|im_ and <|im_star", "<|im_start", "im_start|>", "<s>", "</s>", "<s> hello </s>",
    "<unk>", "<|endoftext|>", "a<|endoftext|>b", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>x",
    "<<|im_end|>>", "<|im_end|><|im_end|>", "< s >", "<repo_name>name<filename>", "<|reserved_special_token_5|>",
    "DON'T", "don't", "Don't", "we'Ve", "WE'VE", "we've", "I'LL", "i'll", "she'S", "SHE'S", "they'RE",
    "It'D", "I'M", "i'm", "can't won't shouldn't", "'s", "'", "''", "' s", "rock 'n' roll", "O'Neil's",
    "l'été", "’s curly apostrophe", "quote\"s", "x's'", "'ll'll", "'ſ long s",
    "THEY'REALLY", "it'Self", "O'DONNELL", "we'VEry", "she'Dance", "'TIS", "I'Mmm", "you'LLama",
    "!!!", "???", "...", "—", "–-", "«guillemets»", "(parentheses)", "[brackets]", "{braces}",
    "a.b.c", "a,b,c", ";;", "@@", "##", "$$$ 100", "%d %s", "^_^", "~/~", "*bold* _it_", "|pipe|",
    "ALL CAPS SENTENCE", "MiXeD CaSe", "camelCaseIdentifier", "snake_case_identifier", "kebab-case",
    "Supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ababababababababababab", "the the the the the",
    "\u00e9", "e\u0301", "\u0041\u030a", "\u1e9b\u0323", "क्षि", "g̈", "Z͑ͫ̓ͪ̂ͫ̽͏̴̙̤̞͉͚̯̞̠͍algo",
    "\x7f", "\x01\x02", "\x04\x16 bytes SmolLM2 has no token for", "\U00040000 plane 4", "\U0010fffd", "\u00ad soft hyphen", "\ufeffBOM", "\u2028 line sep", "\u0085 nel",
    "½ cup", "3×4=12", "∑∫∂√∞", "α+β=γ", "°C", "€100 £50 ¥1000", "™®©",
    "Mr. Smith went to Washington, D.C., on Jan. 5th.", "Q: What's 2+2? A: 4.",
    "The year 1999 and 2000 and 2026.", "Call me at 5551234567 tomorrow.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.",
    "Tiếng Việt: nhiều việc hợp điều ngoài nhiên biệt", "gelmektedir kaldıldı lardan", "در ایران", "характер",
    "jeho práce", "Once upon a time, in a land far, far away, there lived a small dragon who loved to read books.",
]

CONTRACTIONS = ["s", "t", "re", "ve", "m", "ll", "d"]

# Pools for the seeded random strings: character classes whose boundaries the split patterns care about.
POOLS = ["abcXYZ", "0123456789", "  ", "\t", "\n", "\r\n", "\r", ".,!?;:-()[]{}\"", "'", "sStTrReEvVmMlLdD",
         "日本語中文한국", "🙂👍🏽👨‍👩‍👧", "\u0301\u0308\u0323", "مرحبا", "²³½Ⅻ٣", "\u00a0\u2003\u3000\u200b",
         "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<|eot_id|>", "ſK", "éàü", "\x7f\x01"]


def random_strings(n, seed=7):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 30)):
            pool = rng.choice(POOLS)
            parts.append(rng.choice(pool) if rng.random() < 0.8 else pool)
        out.append("".join(parts))
    return out


def cases_of(word):
    alternating = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(word))
    return sorted({word.lower(), word.upper(), word.capitalize(), alternating})


def build():
    out = list(HAND)
    for c in CONTRACTIONS:
        for v in cases_of(c):
            out.append("it'" + v)
            out.append("THEY'" + v + " here")
    for n in range(1, 21):
        out.append("".join(str((i * 7 + 3) % 10) for i in range(n)))
    for n in [1, 2, 3, 4, 5, 8]:
        out.append("x" + " " * n + "y")
        out.append("x" + "\t" * n + "y")
        out.append("x" + "\n" * n + "y")
        out.append("x" + " " * n)
        out.append(" " * n + "x")
        out.append("x" + " \n" * n + "y")
    out.extend(random_strings(300))
    seen, uniq = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    return uniq


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = build()
    with open(os.path.join(here, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for s in corpus:
            f.write(json.dumps({"text": s}, ensure_ascii=False) + "\n")
    print(len(corpus), "strings")
