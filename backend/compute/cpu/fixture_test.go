package cpu

import (
	"math"
	"math/rand/v2"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// SmolLM2-135M attention shapes: 9 query heads, 3 KV heads of 64, fp16 KV in pages of 64 tokens.
const (
	benchHeads, benchKVHeads, benchHD, benchPage = 9, 3, 64, 64
)

// attnFixture is a store holding random KV for some sequences and an attention over them.
type attnFixture struct {
	st     *compute.KVStore
	blocks [][]int32 // (seqs) pages of each sequence
	a      *compute.Attention
	desc   compute.BatchDesc
}

// newAttnFixture writes random KV for sequences of the given lengths (each on its own pages) and sets up an
// attention of rows query rows at the end of each.
func newAttnFixture(d *Device, lengths []int, rows int, dt compute.KVDType) *attnFixture {
	r := rand.New(rand.NewPCG(uint64(lengths[0]), uint64(rows)))
	kvDim, qDim := benchKVHeads*benchHD, benchHeads*benchHD
	f := &attnFixture{desc: compute.BatchDesc{BlockOff: []int32{0}}}
	total := 0
	for _, n := range lengths {
		total += (n + benchPage - 1) / benchPage
	}
	var err error
	if f.st, err = d.NewKVStore(compute.KVSpec{PageTokens: benchPage, KVDim: kvDim, DType: dt}, 1, compute.TierDevice, compute.StoreOptions{}); err != nil {
		panic(err)
	}
	if err := d.GrowKVStore(f.st, total); err != nil {
		panic(err)
	}
	const chunk = 1024
	k, v := d.Tensor(chunk, kvDim), d.Tensor(chunk, kvDim)
	page := int32(0)
	for s, n := range lengths {
		var blocks []int32
		for range (n + benchPage - 1) / benchPage {
			blocks = append(blocks, page)
			page++
		}
		f.blocks = append(f.blocks, blocks)
		for start := 0; start < n; start += chunk {
			for i := range f32(k) {
				f32(k)[i], f32(v)[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			}
			cnt := min(chunk, n-start)
			slots := make([]int32, cnt)
			for i := range slots {
				tok := start + i
				slots[i] = blocks[tok/benchPage]*benchPage + int32(tok%benchPage)
			}
			d.WriteKV(f.st, 0, k, v, slots)
		}
		f.desc.QStart = append(f.desc.QStart, int32(s*rows))
		f.desc.QRows = append(f.desc.QRows, int32(rows))
		f.desc.Pos0 = append(f.desc.Pos0, int32(n-rows))
		f.desc.Len = append(f.desc.Len, int32(n))
		f.desc.Blocks = append(f.desc.Blocks, blocks...)
		f.desc.BlockOff = append(f.desc.BlockOff, int32(len(f.desc.Blocks)))
	}
	b := d.NewBatch()
	d.SetBatch(b, &f.desc)
	q := d.Tensor(rows*len(lengths), qDim)
	for i := range f32(q) {
		f32(q)[i] = float32(r.NormFloat64())
	}
	f.a = &compute.Attention{
		Q: q, Out: d.Tensor(rows*len(lengths), qDim), Store: f.st, Batch: b, Heads: benchHeads, KVHeads: benchKVHeads,
		HeadDim: benchHD, Scale: float32(1 / math.Sqrt(benchHD)),
	}
	return f
}
