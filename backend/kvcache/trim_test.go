package kvcache

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
)

// recordingDevice records the pages discarded and recommitted per store tier, and can fail discards.
type recordingDevice struct {
	*cpu.Device
	mu          sync.Mutex
	discarded   map[compute.Tier][]int32
	recommitted map[compute.Tier][]int32
	failDiscard compute.Tier // the tier whose discards fail; TierDevice+100: none
}

func newRecordingDevice() *recordingDevice {
	return &recordingDevice{Device: cpu.New(), discarded: map[compute.Tier][]int32{}, recommitted: map[compute.Tier][]int32{}, failDiscard: compute.TierDevice + 100}
}

func (d *recordingDevice) DiscardKVPages(s *compute.KVStore, pages []int32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s.Tier == d.failDiscard {
		return errors.New("madvise: invalid argument")
	}
	d.discarded[s.Tier] = append(d.discarded[s.Tier], pages...)
	return d.Device.DiscardKVPages(s, pages)
}

func (d *recordingDevice) RecommitKVPages(s *compute.KVStore, pages []int32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recommitted[s.Tier] = append(d.recommitted[s.Tier], pages...)
	return d.Device.RecommitKVPages(s, pages)
}

// take returns and forgets what was recorded for tier.
func (d *recordingDevice) take(m map[compute.Tier][]int32, tier compute.Tier) []int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	got := m[tier]
	delete(m, tier)
	slices.Sort(got)
	return got
}

func sorted(ids []int32) []int32 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

// Trim discards free pages only, the longest free first, in every store of their kind; trimmed pages come
// back after the warm ones, recommitted, and before the stores grow.
func TestTrimOrder(t *testing.T) {
	dev := newRecordingDevice()
	// 2 layers (one offloaded): a block id is 128 resident + 128 offload bytes, a staging id 128.
	p, err := NewPool(dev, Config{Layers: 2, KVDim: 8, PageSize: 4, DType: compute.KVF16, Offload: []bool{false, true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	seqs := make([]*Sequence, 4)
	for i := range seqs {
		seqs[i] = p.NewSequence(100)
		if err := reserve(seqs[i], 8); err != nil { // 2 blocks each: ids 2i, 2i+1
			t.Fatal(err)
		}
	}
	if err := seqs[3].ReserveStaging(4); err != nil { // staging id 0
		t.Fatal(err)
	}
	first, second, third := sorted(seqs[1].Blocks()), sorted(seqs[0].Blocks()), sorted(seqs[3].Blocks())
	seqs[1].Release()
	seqs[0].Release()
	seqs[3].Release()
	// Free, coldest first: seqs[1]'s blocks, seqs[0]'s, seqs[3]'s, then seqs[3]'s staging; seqs[2] holds 2.
	if n, err := p.Trim(4*256 + 128); err != nil || n != 2*256 {
		t.Fatalf("Trim: released %d (err %v), want the 512 bytes of the coldest two blocks", n, err)
	}
	for _, tier := range []compute.Tier{compute.TierDevice, compute.TierHost} {
		if got := dev.take(dev.discarded, tier); !slices.Equal(got, first) {
			t.Fatalf("%v store: discarded %v, want the coldest blocks %v", tier, got, first)
		}
	}
	if n, _ := p.Trim(0); n != 4*256+128 {
		t.Fatalf("Trim(0) released %d bytes, want %d", n, 4*256+128)
	}
	if got, want := dev.take(dev.discarded, compute.TierHost), sorted(append(second, third...)); !slices.Equal(got, want) {
		t.Fatalf("host store: discarded %v, want %v", got, want)
	}
	if got, want := dev.take(dev.discarded, compute.TierDevice), sorted(append(append(second, third...), 0)); !slices.Equal(got, want) {
		t.Fatalf("device stores: discarded %v, want %v (4 blocks and staging id 0)", got, want)
	}
	// A warm page goes out before trimmed ones, trimmed ones (recommitted) before new ones.
	s := p.NewSequence(100)
	warm := slices.Clone(seqs[2].Blocks())
	seqs[2].Release()
	r := p.NewSequence(100)
	if err := reserve(r, 8); err != nil { // 2 blocks: the warm ones, nothing recommitted
		t.Fatal(err)
	}
	if got := sorted(r.Blocks()); !slices.Equal(got, sorted(warm)) || len(dev.take(dev.recommitted, compute.TierHost)) != 0 {
		t.Fatalf("with 2 warm and 6 trimmed blocks free, 2 blocks are %v, want the warm %v", got, warm)
	}
	r.Release()
	if err := reserve(s, 4*8); err != nil { // 8 blocks: 2 warm, 6 trimmed
		t.Fatal(err)
	}
	if got := sorted(s.Blocks()); !slices.Equal(got, []int32{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("blocks %v, want the 8 made so far", got)
	}
	if got := dev.take(dev.recommitted, compute.TierHost); len(got) != 6 || slices.ContainsFunc(got, func(id int32) bool { return slices.Contains(warm, id) }) {
		t.Fatalf("recommitted %v, want the 6 trimmed blocks (not the warm %v)", got, warm)
	}
	if u := p.Usage(); u.OffloadTrimmed != 0 || u.ResidentTrimmed != 128 || u.OffloadUsed != 8*128 {
		t.Fatalf("usage %+v", u)
	}
}

// MaybeTrim keeps the watermark (64 MiB by default) and does nothing below it.
func TestMaybeTrimWatermark(t *testing.T) {
	tests := []struct {
		name      string
		watermark int64
		release   int   // blocks released (each 1 MiB: 2 layers of 512 KiB)
		want      int64 // bytes trimmed
	}{
		{"default-below", 0, 64, 0},
		{"default-above", 0, 70, 6 << 20},
		{"small", 3 << 20, 5, 2 << 20},
		{"exact", 5 << 20, 5, 0},
		{"off", -1, 70, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := newRecordingDevice()
			p, err := NewPool(dev, Config{Layers: 2, KVDim: 256, PageSize: 512, DType: compute.KVF16, FreeWatermarkBytes: tc.watermark})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			s := p.NewSequence(1 << 20)
			if err := reserve(s, tc.release*512); err != nil {
				t.Fatal(err)
			}
			s.Release()
			n, err := p.MaybeTrim()
			if err != nil || n != tc.want {
				t.Fatalf("MaybeTrim released %d bytes (err %v), want %d", n, err, tc.want)
			}
			if u := p.Usage(); u.Trimmed() != tc.want || u.ResidentFree != int64(tc.release)<<20-tc.want {
				t.Fatalf("usage %+v after trimming %d", u, tc.want)
			}
			if n, _ := p.MaybeTrim(); n != 0 {
				t.Fatalf("a second MaybeTrim released %d bytes", n)
			}
		})
	}
}

// A discard that fails leaves the pages warm and reports the error once.
func TestTrimFailure(t *testing.T) {
	dev := newRecordingDevice()
	dev.failDiscard = compute.TierHost
	p, err := NewPool(dev, Config{Layers: 2, KVDim: 8, PageSize: 4, DType: compute.KVF16, Offload: []bool{false, true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := p.NewSequence(100)
	if err := reserve(s, 8); err != nil {
		t.Fatal(err)
	}
	s.Release()
	n, err := p.Trim(0)
	if n != 0 || err == nil || !strings.Contains(err.Error(), "host store") || !strings.Contains(err.Error(), "invalid argument") {
		t.Fatalf("Trim: released %d, err %v; want 0 and the host store's error", n, err)
	}
	if u := p.Usage(); u.Trimmed() != 0 || u.OffloadFree != 2*128 {
		t.Fatalf("usage %+v after a failed trim", u)
	}
	dev.failDiscard = compute.TierDevice + 100
	if n, err := p.Trim(0); n != 2*256 || err != nil {
		t.Fatalf("Trim after the failure: released %d, err %v", n, err)
	}
}

// Under a resident budget the tier's memory (in use plus warm free) stays within it: pages of one kind
// about to be backed make the pool trim the other kind's free pages.
func TestBudgetBoundsBackedMemory(t *testing.T) {
	dev := newRecordingDevice()
	// A block id: 128 resident + 128 offload bytes; a staging id 128 resident bytes. Budget: 6 resident pages.
	p, err := NewPool(dev, Config{Layers: 2, KVDim: 8, PageSize: 4, DType: compute.KVF16, Offload: []bool{false, true},
		ResidentBytes: 6 * 128, FreeWatermarkBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	check := func(what string) {
		t.Helper()
		if u := p.Usage(); u.ResidentUsed+u.ResidentFree > u.ResidentBudget {
			t.Fatalf("%s: resident memory %d used + %d free over the budget %d", what, u.ResidentUsed, u.ResidentFree, u.ResidentBudget)
		}
	}
	a := p.NewSequence(100)
	if err := reserve(a, 4*6); err != nil {
		t.Fatal(err)
	}
	a.Release()
	check("blocks released")
	if err := a.ReserveStaging(4 * 4); err != nil { // 4 staging ids: 4 of the 6 free blocks must go
		t.Fatal(err)
	}
	check("staging reserved")
	if got := dev.take(dev.discarded, compute.TierDevice); len(got) != 4 {
		t.Fatalf("discarded %v, want 4 blocks", got)
	}
	a.Release()
	if err := reserve(a, 4*6); err != nil { // 2 warm blocks, 4 trimmed: the 4 staging ids must go
		t.Fatal(err)
	}
	check("blocks reserved again")
	if u := p.Usage(); u.ResidentTrimmed != 4*128 || u.ResidentUsed != 6*128 {
		t.Fatalf("usage %+v", u)
	}
}
