//go:build cgo

package cuda

import (
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// Stats counts Gather calls, the rows and bytes they moved (on the device) and the fence waits; a second
// step that keeps its selection moves nothing.
func TestStatsOnGPU(t *testing.T) { testStats(t, openOrSkip(t)) }

func testStats(t *testing.T, d *Device) {
	const page, kvDim, n, k = 8, 16, 64, 10
	spec := compute.KVSpec{PageTokens: page, KVDim: kvDim, DType: compute.KVF16}
	mk := func(pages int) *compute.KVStore {
		s, err := d.NewKVStore(spec, 1, compute.TierHost, compute.StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.GrowKVStore(s, pages); err != nil {
			t.Fatal(err)
		}
		return s
	}
	src, stage := mk(n/page), mk((k+page)/page+1)
	defer d.Free(src)
	defer d.Free(stage)
	seq := func(pages, length int) *compute.Batch {
		desc := compute.BatchDesc{QStart: []int32{0}, QRows: []int32{0}, Pos0: []int32{0}, Len: []int32{int32(length)}, BlockOff: []int32{0, int32(pages)}}
		for p := 0; p < pages; p++ {
			desc.Blocks = append(desc.Blocks, int32(p))
		}
		b := d.NewBatch()
		d.SetBatch(b, &desc)
		return b
	}
	sb, db := seq(n/page, n), seq((k+page)/page+1, k+1)
	st, err := d.NewSelState(compute.SelSpec{Window: 1, QDim: kvDim, KVHeads: 1})
	if err != nil {
		t.Fatal(err)
	}
	d.BeginTurn(st, n, k, n+1)
	d.ResetStats()
	for step := int32(0); step < 2; step++ {
		d.Select(&compute.Select{Mode: compute.SelSinkRecent, States: []*compute.SelState{st}, Forced: []int32{0}, Step: []int32{step}})
		d.Wait(d.Gather(&compute.Gather{Src: src, SrcBatch: sb, Dst: stage, DstBatch: db, States: []*compute.SelState{st}}))
	}
	s := d.Stats()
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	// Step 0 fetches all k sink-recent rows, step 1 none (the same selection stays in its slots).
	if s.Gathers != 2 || s.FenceWaits != 2 || s.RowsMoved != k || s.BytesMoved != int64(k*2*kvDim*2) || s.WaitMs < 0 {
		t.Fatalf("stats %+v, want 2 gathers, 2 waits, %d rows, %d bytes", s, k, k*2*kvDim*2)
	}
	if info := d.ReadSel(st); info.RowsFetched != k || info.LastFetched != 0 {
		t.Fatalf("selection state: %d rows fetched this turn, %d at the last step; want %d and 0", info.RowsFetched, info.LastFetched, k)
	}
}
