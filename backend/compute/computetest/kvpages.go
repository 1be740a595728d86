package computetest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// testDiscardKVPages discards the pages of one sequence while two others, whose pages are interleaved with
// them (sharing the device's memory pages where the KV pages are small), keep theirs: the others' attention
// stays the same bit for bit; the discarded pages, recommitted and written again, give the reference
// attention.
func testDiscardKVPages(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(41, 42))
	const heads, kvHeads = 4, 2
	for _, tc := range []struct {
		name     string
		hd, page int
		dt       compute.KVDType
	}{{"small-fp32", 4, 4, compute.KVF32}, {"odd-fp16", 12, 7, compute.KVF16}, {"large-fp16", 64, 64, compute.KVF16}} {
		t.Run(tc.name, func(t *testing.T) {
			kvDim, qd, length := kvHeads*tc.hd, heads*tc.hd, 5*tc.page-1
			st := newStore(t, dev, compute.KVSpec{PageTokens: tc.page, KVDim: kvDim, DType: tc.dt}, 2, 15)
			defer dev.Free(st)
			var pages [3][]int32 // sequence i has pages i, i+3, i+6, ...
			for p := int32(0); p < 15; p++ {
				pages[p%3] = append(pages[p%3], p)
			}
			var kvs [3]kvSeq
			for i := range kvs {
				kvs[i] = writeSeq(t, dev, r, st, 1, pages[i], length, 1)
			}
			q := randVec(r, qd, 1)
			scale := 1 / math.Sqrt(float64(tc.hd))
			attend := func(i int) []float32 {
				out := tensor(t, dev, 1, qd)
				dev.Attend(&compute.Attention{Q: upload(t, dev, 1, qd, q), Out: out, Store: st, Layer: 1,
					Batch: batchOf(dev, [][4]int{{0, 1, length - 1, length}}, [][]int32{pages[i]}),
					Heads: heads, KVHeads: kvHeads, HeadDim: tc.hd, Scale: float32(scale)})
				return read(dev, out, 1)
			}
			before := [3][]float32{attend(0), attend(1), attend(2)}
			if err := dev.DiscardKVPages(st, pages[1]); err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{0, 2} {
				for j, v := range attend(i) {
					if math.Float32bits(v) != math.Float32bits(before[i][j]) {
						t.Fatalf("sequence %d, value %d: %v after discarding another's pages, %v before", i, j, v, before[i][j])
					}
				}
			}
			if err := dev.RecommitKVPages(st, pages[1]); err != nil {
				t.Fatal(err)
			}
			kvs[1] = writeSeq(t, dev, r, st, 1, pages[1], length, 1)
			want := refAttention(q, kvs[1].k, kvs[1].v, 1, length-1, heads, kvHeads, tc.hd, scale, nil)
			closeTo(t, "attention over recommitted pages", attend(1), want, 2e-6)
			if err := dev.Sync(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
