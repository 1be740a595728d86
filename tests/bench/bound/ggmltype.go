package main

import "fmt"

// ggmlType is a GGUF tensor type id (GGML's enum). The bound tool keeps its own table, wider than the
// set the engine computes with (backend/weights), so that it can size any GGUF file's tensors.
type ggmlType uint32

type ggmlTypeInfo struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

var ggmlTypes = map[ggmlType]ggmlTypeInfo{
	0: {"F32", 1, 4}, 1: {"F16", 1, 2}, 2: {"Q4_0", 32, 18}, 3: {"Q4_1", 32, 20},
	6: {"Q5_0", 32, 22}, 7: {"Q5_1", 32, 24}, 8: {"Q8_0", 32, 34}, 9: {"Q8_1", 32, 36},
	10: {"Q2_K", 256, 84}, 11: {"Q3_K", 256, 110}, 12: {"Q4_K", 256, 144}, 13: {"Q5_K", 256, 176},
	14: {"Q6_K", 256, 210}, 15: {"Q8_K", 256, 292}, 24: {"I8", 1, 1}, 25: {"I16", 1, 2},
	26: {"I32", 1, 4}, 27: {"I64", 1, 8}, 28: {"F64", 1, 8}, 30: {"BF16", 1, 2},
}

func (t ggmlType) Known() bool { _, ok := ggmlTypes[t]; return ok }

func (t ggmlType) String() string {
	if ti, ok := ggmlTypes[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// RowBytes is the stored size of a row of n elements.
func (t ggmlType) RowBytes(n int) (int, error) {
	ti, ok := ggmlTypes[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %v", t)
	}
	if n < 0 || n%ti.blockSize != 0 {
		return 0, fmt.Errorf("row of %d elements is not a whole number of %v blocks of %d", n, t, ti.blockSize)
	}
	return n / ti.blockSize * ti.typeSize, nil
}
