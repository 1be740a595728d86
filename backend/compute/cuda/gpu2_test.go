//go:build cgo

package cuda

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// The quantized small-batch matvecs equal the dequantized weights (weights.DequantizeRow, bit-exact with
// GGML) times x.
func TestMatvecQ4_1OnGPU(t *testing.T) { testMatvecOnGPU(t, "matvec_q4_1", weights.Q4_1, 67, 576, 3) }
func TestMatvecQ4KOnGPU(t *testing.T)  { testMatvecOnGPU(t, "matvec_q4_k", weights.Q4_K, 33, 512, 2) }

// testMatvecOnGPU fills random blocks of type dt (scales small and positive, the rest random bytes) and
// compares the kernel with a float64 product over the dequantized rows.
func testMatvecOnGPU(t *testing.T, kernel string, dt weights.DType, nOut, k, batch int) {
	g := onGPU(t)
	r := rand.New(rand.NewPCG(uint64(dt), 8))
	layout := map[weights.DType][2]int{weights.Q4_1: {32, 20}, weights.Q4_K: {256, 144}}[dt] // elements, bytes per block
	blockElems, blockBytes := layout[0], layout[1]
	rowBytes := k / blockElems * blockBytes
	w := make([]byte, nOut*rowBytes)
	for blk := 0; blk < nOut*k/blockElems; blk++ {
		b := w[blk*blockBytes:]
		binary.LittleEndian.PutUint16(b, weights.F32ToF16(float32(r.Float64()*0.01)))
		binary.LittleEndian.PutUint16(b[2:], weights.F32ToF16(float32(r.Float64()*0.02-0.01)))
		for i := 4; i < blockBytes; i++ {
			b[i] = byte(r.IntN(256))
		}
	}
	x := randF32(r, batch*k)
	want := make([]float32, batch*nOut)
	row := make([]float32, k)
	for n := range nOut {
		if err := weights.DequantizeRow(dt, w[n*rowBytes:(n+1)*rowBytes], row); err != nil {
			t.Fatal(err)
		}
		for b := range batch {
			s := 0.0
			for i := range k {
				s += float64(row[i]) * float64(x[b*k+i])
			}
			want[b*nOut+n] = float32(s)
		}
	}
	y := g.put(make([]byte, 4*batch*nOut))
	if err := g.fn(kernel).Launch(Dim3{X: (nOut + 3) / 4}, Dim3{X: 128}, g.put(w), g.put(f32bytes(x)), y, int32(nOut), int32(k), int32(batch)); err != nil {
		t.Fatal(err)
	}
	near(t, kernel, g.getF32(y, batch*nOut), want, 1e-4)
}

// topk_radix picks the k largest scores per sequence, ties to the lower index, in index order.
func TestTopKOnGPU(t *testing.T) {
	g := onGPU(t)
	r := rand.New(rand.NewPCG(9, 10))
	maxCtx, kCap := 5000, 300
	cand := []int32{5000, 1200, 40}
	ks := []int{300, 300, 300}
	scores := make([]float32, len(cand)*maxCtx)
	for i := range scores {
		scores[i] = float32(r.IntN(50)) / 7 // many ties
	}
	out, outN := g.put(make([]byte, 4*len(cand)*kCap)), g.put(make([]byte, 4*len(cand)))
	if err := g.fn("topk_radix").Launch(Dim3{X: len(cand)}, Dim3{X: 1024}, g.put(f32bytes(scores)), g.put(i32bytes(cand)), out, outN,
		int32(maxCtx), int32(ks[0]), int32(kCap)); err != nil {
		t.Fatal(err)
	}
	ob, nb := make([]byte, 4*len(cand)*kCap), make([]byte, 4*len(cand))
	CopyOut(ob, out)
	CopyOut(nb, outN)
	for b, n := range cand {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		s := scores[b*maxCtx:]
		sort.SliceStable(idx, func(i, j int) bool { return s[idx[i]] > s[idx[j]] })
		want := slices.Clone(idx[:min(ks[b], int(n))])
		slices.Sort(want)
		gotN := int(binary.LittleEndian.Uint32(nb[4*b:]))
		if gotN != len(want) {
			t.Fatalf("seq %d: %d selected, want %d", b, gotN, len(want))
		}
		for i, w := range want {
			if got := int(binary.LittleEndian.Uint32(ob[4*(b*kCap+i):])); got != w {
				t.Fatalf("seq %d: selection[%d] = %d, want %d", b, i, got, w)
			}
		}
	}
}
