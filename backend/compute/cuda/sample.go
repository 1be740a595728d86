//go:build cgo

package cuda

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// SampleParams configure the device's token choice for one logit row. The seam has no sampling op: an
// engine on this device calls Sample (or Argmax) on the step's logits in place of reading them back, and
// reads one id per sequence (4 bytes instead of vocab*4).
type SampleParams struct {
	Temperature float32 // <= 0: greedy (argmax, the lowest id on ties)
	TopK        int     // keep the TopK largest logits (0 or >= vocab: all; ties at the k-th value all kept)
	TopP        float32 // then the smallest set of most likely ids holding TopP of the mass (<= 0 or >= 1: all)
	Seed        uint64  // the sequence's seed
	Counter     uint64  // e.g. the index of the token being drawn: one (Seed, Counter), one draw
}

// Sample chooses one id for each of the first len(params) rows of logits (rows, vocab) on the device
// (kernels/sample.cu) and returns them. The random stream is the device's own counter-based generator,
// not the CPU sampler's: a seeded request gives reproducible ids on a GPU, but not the CPU's ids.
func (d *Device) Sample(logits *compute.Tensor, params []SampleParams) ([]int32, error) {
	n := len(params)
	if n > logits.Rows || logits.DType != compute.F32 {
		panic(fmt.Sprintf("cuda sample: %d rows of a (%d, %d) %v tensor", n, logits.Rows, logits.Cols, logits.DType))
	}
	if n == 0 || !d.ok() {
		return nil, d.err
	}
	temp, topP := make([]float32, n), make([]float32, n)
	topK := make([]int32, n)
	seed, ctr := make([]uint64, n), make([]uint64, n)
	for i, p := range params {
		temp[i], topP[i], topK[i], seed[i], ctr[i] = p.Temperature, p.TopP, int32(p.TopK), p.Seed, p.Counter
	}
	op := "Sample"
	a := d.upload(&d.computeArgs, op, f32b(temp), f32b(topP), i32b(topK), u64b(seed), u64b(ctr))
	if a == nil {
		return nil, d.err
	}
	if !d.grow(&d.ids, 4*n, op) {
		return nil, d.err
	}
	d.launch("sample_rows", [3]int{n, 1, 1}, [3]int{1024, 1, 1}, op, tmem(logits), int32(logits.Cols), a[0], a[1], a[2], a[3], a[4], d.ids.p)
	out := make([]int32, n)
	if d.read(i32b(out), d.ids.p, op) != nil {
		return nil, d.err
	}
	return out, nil
}

// Argmax returns the greedy choice for each of the first n rows of logits.
func (d *Device) Argmax(logits *compute.Tensor, n int) ([]int32, error) {
	return d.Sample(logits, make([]SampleParams, n))
}
