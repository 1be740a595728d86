#!/usr/bin/env python3
"""Writes interop/pywritten_gguf.bin (gguf-py GGUFWriter) and interop/pywritten_safetensors.bin (with
safetensors.torch): small files from the reference writers, read back by the Go tests. They are named
.bin because the repository ignores *.gguf and *.safetensors.

Tensor values follow value(i, n) below; the Go test recomputes them, quantizes with QuantizeRow (bit-exact
with gguf-py) and compares bytes. Q4_K / Q6_K tensors hold the byte pattern pattern(n) instead.

Run: .cache/refvenv/bin/python backend/weights/testdata/gen_interop.py
"""
import os

import numpy as np
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from gguf import GGUFWriter, quants
from safetensors.torch import save_file

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "interop")


def value(n):
    i = np.arange(n, dtype=np.float64)
    return (np.sin(i * 0.731) * (1 + (i % 7))).astype(np.float32)


def pattern(n):
    return ((np.arange(n) * 7 + 3) % 256).astype(np.uint8)


w = GGUFWriter(os.path.join(out, "pywritten_gguf.bin"), "llama")
w.add_custom_alignment(64)
w.add_key_value("t.u8", 200, V.UINT8)
w.add_key_value("t.i8", -100, V.INT8)
w.add_key_value("t.u16", 60000, V.UINT16)
w.add_key_value("t.i16", -30000, V.INT16)
w.add_key_value("t.u32", 4000000000, V.UINT32)
w.add_key_value("t.i32", -2000000000, V.INT32)
w.add_key_value("t.f32", 0.1, V.FLOAT32)
w.add_key_value("t.bool", True, V.BOOL)
w.add_key_value("t.str", "héllo wörld", V.STRING)
w.add_key_value("t.u64", 1 << 60, V.UINT64)
w.add_key_value("t.i64", -(1 << 60), V.INT64)
w.add_key_value("t.f64", 0.1, V.FLOAT64)
w.add_key_value("t.arr_i32", [1, -2, 3], V.ARRAY, sub_type=V.INT32)
w.add_key_value("t.arr_f32", [0.5, -0.25], V.ARRAY, sub_type=V.FLOAT32)
w.add_key_value("t.arr_str", ["a", "", "ccc"], V.ARRAY, sub_type=V.STRING)
w.add_key_value("t.arr_bool", [True, False], V.ARRAY, sub_type=V.BOOL)
w.add_key_value("t.nested", [[1, 2], [3]], V.ARRAY)

shapes = [("f32", Q.F32, (3, 5)), ("f16", Q.F16, (2, 8)), ("bf16", Q.BF16, (4, 4)), ("q8_0", Q.Q8_0, (2, 64)),
          ("q4_0", Q.Q4_0, (3, 32)), ("q4_1", Q.Q4_1, (32,)), ("q4_k", Q.Q4_K, (2, 256)), ("q6_k", Q.Q6_K, (256,))]
for name, qt, shape in shapes:
    n = int(np.prod(shape))
    if qt == Q.F32:
        w.add_tensor(name, value(n).reshape(shape))
    elif qt == Q.F16:
        w.add_tensor(name, value(n).reshape(shape).astype(np.float16))
    elif qt in (Q.Q4_K, Q.Q6_K):
        bsize, tsize = quants.GGML_QUANT_SIZES[qt]
        data = pattern(n // bsize * tsize).reshape(*shape[:-1], shape[-1] // bsize * tsize)
        w.add_tensor(name, data, raw_dtype=qt)
    else:
        w.add_tensor(name, quants.quantize(value(n).reshape(shape), qt), raw_dtype=qt)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

t = {
    "a.f32": torch.from_numpy(value(15).reshape(3, 5)),
    "b.f16": torch.from_numpy(value(16).reshape(2, 8)).to(torch.float16),
    "c.bf16": torch.from_numpy(value(24).reshape(2, 3, 4)).to(torch.bfloat16),
    "d.scalar": torch.tensor(1.5, dtype=torch.float32),
}
save_file(t, os.path.join(out, "pywritten_safetensors.bin"), metadata={"format": "pt", "note": "reference writer"})
print("wrote", os.listdir(out))
