package weights

import "fmt"

// DType is the storage type of a weight tensor. The numeric values are GGML's type ids, so that a GGUF
// tensor's type field converts directly; safetensors dtypes map onto the same set.
type DType uint32

// The storage types this project reads. Quantized types store blocks of BlockSize elements in TypeSize bytes.
const (
	F32  DType = 0
	F16  DType = 1
	Q4_0 DType = 2  // block 32: f16 d, 16 bytes of nibbles; x = (q - 8) * d
	Q4_1 DType = 3  // block 32: f16 d, f16 m, 16 bytes of nibbles; x = q * d + m
	Q8_0 DType = 8  // block 32: f16 d, 32 int8; x = q * d
	Q4_K DType = 12 // super-block 256: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
	Q6_K DType = 14 // super-block 256: 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, f16 d
	BF16 DType = 30
)

type typeInfo struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

var typeInfos = map[DType]typeInfo{
	F32:  {"F32", 1, 4},
	F16:  {"F16", 1, 2},
	BF16: {"BF16", 1, 2},
	Q4_0: {"Q4_0", 32, 18},
	Q4_1: {"Q4_1", 32, 20},
	Q8_0: {"Q8_0", 32, 34},
	Q4_K: {"Q4_K", 256, 144},
	Q6_K: {"Q6_K", 256, 210},
}

// Known reports whether t is a storage type this project can compute with.
func (t DType) Known() bool { _, ok := typeInfos[t]; return ok }

func (t DType) String() string {
	if ti, ok := typeInfos[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("DType(%d)", uint32(t))
}

// BlockSize is the number of elements in one block (1 for plain float types).
func (t DType) BlockSize() int { return typeInfos[t].blockSize }

// TypeSize is the number of bytes of one block.
func (t DType) TypeSize() int { return typeInfos[t].typeSize }

// RowBytes is the size in bytes of a row of n elements, or an error when n is not a whole number of blocks
// or the type is unknown.
func (t DType) RowBytes(n int) (int, error) {
	ti, ok := typeInfos[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %v", t)
	}
	if n < 0 || n%ti.blockSize != 0 {
		return 0, fmt.Errorf("row of %d elements is not a whole number of %v blocks of %d", n, t, ti.blockSize)
	}
	return n / ti.blockSize * ti.typeSize, nil
}
