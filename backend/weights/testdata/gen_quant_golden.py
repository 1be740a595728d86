#!/usr/bin/env python3
"""Writes quant_golden.bin: expected results of gguf-py's (de)quantization, the reference the Go
DequantizeRow / QuantizeRow / F32ToF16 / F32ToBF16 are checked against bit for bit.

Run with the reference venv:  .cache/refvenv/bin/python backend/weights/testdata/gen_quant_golden.py [model.gguf]
With a model path, rows of real tensors of that GGUF are added (their source bytes are stored too).

File layout (little-endian):
  magic "OKVQG001", u32 version (1), u32 record count, then per record:
  u32 kind (0 = dequantize, 1 = quantize), u32 GGML type, u32 elements, u32 bytes, u32 name length,
  name (UTF-8), then for kind 0: bytes of source, elements*f32 expected;
                     for kind 1: elements*f32 source, bytes of expected.
"""
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import quants

rng = np.random.default_rng(20261128)
records = []


def finite_f16(n, lo=-2.0, hi=2.0):
    """n random finite f16 values, with a few subnormal and zero ones mixed in, as bytes."""
    v = rng.uniform(lo, hi, n).astype(np.float16)
    v[::7] = np.float16(3e-6) * np.sign(v[::7])  # subnormal
    if n > 3:
        v[3] = 0
    return v


def add_dequant(name, qtype, src):
    src = np.frombuffer(bytes(src), dtype=np.uint8)
    out = quants.dequantize(src.reshape(1, -1), qtype).astype(np.float32).reshape(-1)
    records.append((0, int(qtype), out.size, src.size, name, src.tobytes(), out.tobytes()))


def add_quant(name, qtype, x):
    x = np.asarray(x, dtype=np.float32)
    q = quants.quantize(x.reshape(1, -1), qtype)
    q = np.ascontiguousarray(q).view(np.uint8).reshape(-1)
    records.append((1, int(qtype), x.size, q.size, name, x.tobytes(), q.tobytes()))


def synthetic_blocks(qtype, nblocks):
    """Random block bytes with the f16 scale fields set to finite values."""
    bsize, tsize = quants.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(nblocks, tsize), dtype=np.uint8)
    f16_fields = {Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q8_0: [0], Q.Q4_K: [0, 2], Q.Q6_K: [208]}[qtype]
    for off in f16_fields:
        b[:, off:off + 2] = finite_f16(nblocks).view(np.uint8).reshape(nblocks, 2)
    return b.reshape(-1)


# Dequantization of synthetic blocks.
for qt, nb in [(Q.Q4_0, 6), (Q.Q4_1, 6), (Q.Q8_0, 6), (Q.Q4_K, 3), (Q.Q6_K, 3)]:
    add_dequant(f"synthetic {qt.name}", qt, synthetic_blocks(qt, nb))
f32 = rng.standard_normal(64).astype(np.float32)
f32[:4] = [0.0, -0.0, np.inf, -np.inf]
add_dequant("synthetic F32", Q.F32, f32.view(np.uint8))
h = rng.integers(0, 1 << 16, 512, dtype=np.uint16)
h = h[(h & 0x7C00) != 0x7C00]  # no Inf/NaN: a NaN's payload is hardware-dependent in numpy
h = np.concatenate([h, np.array([0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00], np.uint16)])
add_dequant("synthetic F16 bits", Q.F16, h.view(np.uint8))
bf = rng.integers(0, 1 << 16, 256, dtype=np.uint16)
add_dequant("synthetic BF16 bits", Q.BF16, bf.view(np.uint8))

# Quantization.
x = rng.standard_normal(256).astype(np.float32) * 0.1
x[32:64] = 0.0  # an all-zero block
x[64:96] = np.linspace(-1, 1, 32, dtype=np.float32)  # evenly spaced: many exact ties
x[96:128] = rng.uniform(0.5, 3.0, 32).astype(np.float32)  # all positive
x[128:160] = -rng.uniform(0.5, 3.0, 32).astype(np.float32)  # all negative
x[160:192] = 5.0  # constant block
for qt in [Q.Q8_0, Q.Q4_0, Q.Q4_1]:
    add_quant(f"quantize {qt.name}", qt, x)
special = np.array([0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, 1e10, -1e10, np.inf, -np.inf,
                    6.1035156e-05, 6.0e-05, 5.96e-08, 2.98e-08, 2.9802322e-08, 2.9802326e-08, 1e-9,
                    1.0009765625, 1.00048828125, 1.00146484375, 3.0e-3, -7.5e-7], dtype=np.float32)
wide = (rng.standard_normal(512) * np.exp(rng.uniform(-25, 12, 512))).astype(np.float32)
add_quant("quantize F16", Q.F16, np.concatenate([special, wide]))
bfin = np.concatenate([special, wide, np.array([np.nan, -np.nan], np.float32)])
bfin = np.concatenate([bfin, np.frombuffer(np.array([0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x7FA00001],
                                                    np.uint32).tobytes(), np.float32)])
add_quant("quantize BF16", Q.BF16, bfin)

# Real rows of the model, if given.
if len(sys.argv) > 1:
    from gguf import GGUFReader
    r = GGUFReader(sys.argv[1])
    want = {"blk.0.attn_q.weight": [0, 5], "blk.29.ffn_down.weight": [7], "token_embd.weight": [0, 100, 49151],
            "output_norm.weight": [0]}
    for t in r.tensors:
        if t.name not in want:
            continue
        data = np.asarray(t.data)  # (rows, row bytes) for quantized types, (rows, cols) of floats otherwise
        rows = data.reshape(data.shape[0] if data.ndim > 1 else 1, -1).view(np.uint8)
        for i in want[t.name]:
            add_dequant(f"model {t.name} row {i}", t.tensor_type, rows[i])

with open(__file__.rsplit("/", 1)[0] + "/quant_golden.bin", "wb") as f:
    f.write(b"OKVQG001" + struct.pack("<II", 1, len(records)))
    for kind, qt, n, nb, name, a, b in records:
        nm = name.encode()
        f.write(struct.pack("<IIIII", kind, qt, n, nb, len(nm)) + nm + a + b)
print(f"wrote {len(records)} records")
