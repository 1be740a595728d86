"""Reader and writer of the .okvg golden format: the Python twin of the Go package tests/reference/golden.

See tests/reference/golden/doc.go for the byte layout. Both writers emit identical bytes for the same content
(header JSON with sorted keys, compact separators, raw UTF-8), which golden_test.go checks on sample.okvg.

Run as a script to (re)write the cross-language sample:
    python tests/reference/golden_format.py --sample tests/reference/golden/testdata/sample.okvg
Standard library only.
"""

import argparse
import json
import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"OMNIKVGD"
VERSION = 1


@dataclass
class Position:
    top_ids: list  # (k) int
    top_logits: list  # (k) float32, descending
    sum: float
    sum_sq: float
    max: float
    argmax: int


@dataclass
class Case:
    name: str
    prompt_ids: list
    positions: list  # of Position, one per prompt id
    greedy: list = field(default_factory=list)
    greedy_gaps: list = field(default_factory=list)  # best minus second-best logit at each greedy step


@dataclass
class File:
    model: str
    source: str
    model_sha256: str
    vocab: int
    topk: int
    notes: dict
    cases: list


def _header_bytes(f):
    h = {"model": f.model, "model_sha256": f.model_sha256, "notes": dict(f.notes), "source": f.source,
         "topk": f.topk, "vocab": f.vocab}
    return json.dumps(h, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def validate(f):
    if not (0 < f.topk <= f.vocab):
        raise ValueError(f"vocab {f.vocab} / topk {f.topk} invalid")
    for c in f.cases:
        if len(c.positions) != len(c.prompt_ids):
            raise ValueError(f"case {c.name!r}: {len(c.positions)} positions for {len(c.prompt_ids)} prompt ids")
        if len(c.greedy) != len(c.greedy_gaps):
            raise ValueError(f"case {c.name!r}: greedy ids/gaps lengths differ")
        ks = {len(p.top_ids) for p in c.positions}
        if len(ks) > 1 or any(not (0 < k <= f.topk) for k in ks):
            raise ValueError(f"case {c.name!r}: top-K lengths {sorted(ks)} (file topk {f.topk})")
        for p in c.positions:
            if len(p.top_ids) != len(p.top_logits):
                raise ValueError(f"case {c.name!r}: top ids/logits lengths differ")
        for i in list(c.prompt_ids) + list(c.greedy):
            if not 0 <= i < f.vocab:
                raise ValueError(f"case {c.name!r}: id {i} outside vocab {f.vocab}")


def dumps(f):
    validate(f)
    hb = _header_bytes(f)
    out = [struct.pack("<I", len(hb)), hb, struct.pack("<I", len(f.cases))]
    for c in f.cases:
        nb = c.name.encode("utf-8")
        out += [struct.pack("<I", len(nb)), nb]
        out += [struct.pack(f"<I{len(c.prompt_ids)}i", len(c.prompt_ids), *c.prompt_ids)]
        k = len(c.positions[0].top_ids) if c.positions else 0
        out.append(struct.pack("<II", len(c.positions), k))
        for p in c.positions:
            out.append(struct.pack(f"<{k}i{k}fddfi", *p.top_ids, *p.top_logits, p.sum, p.sum_sq, p.max, p.argmax))
        g = len(c.greedy)
        out.append(struct.pack(f"<I{g}i{g}f", g, *c.greedy, *c.greedy_gaps))
    payload = b"".join(out)
    return MAGIC + struct.pack("<I", VERSION) + payload + struct.pack("<I", zlib.crc32(payload) & 0xFFFFFFFF)


def write(path, f):
    b = dumps(f)
    with open(path, "wb") as fh:
        fh.write(b)
    return len(b)


class _Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, fmt):
        n = struct.calcsize(fmt)
        if self.o + n > len(self.b):
            raise ValueError("truncated golden file")
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += n
        return v

    def raw(self, n):
        if self.o + n > len(self.b):
            raise ValueError("truncated golden file")
        v = self.b[self.o:self.o + n]
        self.o += n
        return v


def loads(b):
    if b[:8] != MAGIC:
        raise ValueError("not a golden file")
    (ver,) = struct.unpack_from("<I", b, 8)
    if ver != VERSION:
        raise ValueError(f"golden version {ver}, reader knows {VERSION}")
    payload = b[12:-4]
    (crc,) = struct.unpack_from("<I", b, len(b) - 4)
    if zlib.crc32(payload) & 0xFFFFFFFF != crc:
        raise ValueError("CRC-32 mismatch (file corrupt)")
    r = _Reader(payload)
    (hn,) = r.take("<I")
    h = json.loads(r.raw(hn).decode("utf-8"))
    f = File(h["model"], h["source"], h["model_sha256"], h["vocab"], h["topk"], h["notes"], [])
    (nc,) = r.take("<I")
    for _ in range(nc):
        (nn,) = r.take("<I")
        name = r.raw(nn).decode("utf-8")
        (npr,) = r.take("<I")
        prompt = list(r.take(f"<{npr}i"))
        npos, k = r.take("<II")
        positions = []
        for _ in range(npos):
            v = r.take(f"<{k}i{k}fddfi")
            positions.append(Position(list(v[:k]), list(v[k:2 * k]), v[2 * k], v[2 * k + 1], v[2 * k + 2], v[2 * k + 3]))
        (g,) = r.take("<I")
        v = r.take(f"<{g}i{g}f")
        f.cases.append(Case(name, prompt, positions, list(v[:g]), list(v[g:])))
    if r.o != len(payload):
        raise ValueError("unexpected bytes after the last case")
    validate(f)
    return f


def read(path):
    with open(path, "rb") as fh:
        return loads(fh.read())


def sample():
    """The cross-language sample; golden_test.go builds the same File (sampleFile) and expects the same bytes.
    Values are exactly representable in float32 so that both sides hold identical numbers."""
    return File(
        model="sample", source="golden_format.py --sample", model_sha256="00" * 32, vocab=10, topk=3,
        notes={"b": "two", "a": "one <&> é\n"},
        cases=[
            Case("first", [1, 2], [
                Position([3, 1, 4], [2.5, 1.25, -0.5], 3.25, 9.0625, 2.5, 3),
                Position([0, 9, 5], [0.75, 0.75, 0.5], -1.5, 4.5, 0.75, 0),
            ], greedy=[7, 2, 9], greedy_gaps=[0.5, 0.0, 1.5]),
            Case("empty-greedy", [5], [Position([8, 6], [1.0, -2.0], 0.5, 6.25, 1.0, 8)]),
        ])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", metavar="PATH", help="write the cross-language sample file to PATH")
    ap.add_argument("--dump", metavar="PATH", help="print a summary of a golden file")
    a = ap.parse_args()
    if a.sample:
        n = write(a.sample, sample())
        assert loads(open(a.sample, "rb").read()) == sample()
        print(f"wrote {a.sample} ({n} bytes)")
    if a.dump:
        f = read(a.dump)
        print(f"model={f.model} vocab={f.vocab} topk={f.topk} sha256={f.model_sha256}\nsource={f.source}")
        for k, v in sorted(f.notes.items()):
            print(f"  note {k} = {v[:100]!r}")
        for c in f.cases:
            k = len(c.positions[0].top_ids) if c.positions else 0
            print(f"  case {c.name}: prompt {len(c.prompt_ids)} top-{k} greedy {len(c.greedy)}"
                  f" min gap {min(c.greedy_gaps) if c.greedy_gaps else float('nan'):.4g}")


if __name__ == "__main__":
    main()
