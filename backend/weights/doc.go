// Package weights owns reading model weights from disk: GGUF (v2/v3) files and safetensors files or
// Hugging Face model directories (single or sharded), memory-mapped read-only and exposed in place as
// Tensors that keep their storage type (F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K). Nothing here expands a
// model to float32: callers get the bytes of each tensor and its DType, and the compute layer dispatches on
// it.
//
// The package also holds the reference numerics of those storage types: DequantizeRow (bit-exact with
// GGML / gguf-py), QuantizeRow (GGML's simple reference quantizers, for tests that need synthetic
// quantized weights), half-precision conversions, and writers for both file formats (WriteGGUF,
// WriteSafetensors) used by tests and tools.
//
// Shapes are row-major, outermost first (PyTorch order): a (out, in) matrix has Shape {out, in} and each of
// its out rows holds in elements. GGUF lists dims innermost first; the reader reverses them.
//
// All readers treat their input as untrusted: malformed files yield errors naming the file and the
// tensor or field at fault, never a panic or a huge allocation.
package weights
