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

func newPool(t *testing.T, maxPages int) *Pool {
	t.Helper()
	p, err := NewPool(cpu.New(), Config{Layers: 3, KVDim: 8, PageSize: 4, DType: compute.KVF32, MaxPages: maxPages})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPoolRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Layers: 0, KVDim: 8, PageSize: 4},
		{Layers: 1, KVDim: 0, PageSize: 4},
		{Layers: 1, KVDim: 8, PageSize: 0},
	} {
		if _, err := NewPool(cpu.New(), cfg); err == nil {
			t.Errorf("NewPool(%+v) accepted a bad config", cfg)
		}
	}
}

func TestReserveGrowsByPagesWithoutMovingOldOnes(t *testing.T) {
	p := newPool(t, 0)
	s := p.NewSequence(40)
	tests := []struct{ add, wantPages int }{{1, 1}, {3, 1}, {1, 2}, {8, 4}, {27, 10}}
	var first int32 = -1
	for _, tc := range tests {
		if err := s.Reserve(tc.add); err != nil {
			t.Fatal(err)
		}
		s.Commit(tc.add)
		if got := len(s.Blocks()); got != tc.wantPages {
			t.Fatalf("after %d tokens the sequence has %d pages, want %d", s.Len(), got, tc.wantPages)
		}
		if first < 0 {
			first = s.Blocks()[0]
		} else if s.Blocks()[0] != first {
			t.Fatal("growing the sequence replaced its first page")
		}
	}
	if err := s.Reserve(1); err == nil {
		t.Fatal("Reserve past the sequence's limit succeeded")
	}
	if got, want := p.InUse(), 3*10; got != want {
		t.Fatalf("pool has %d pages in use, want %d", got, want)
	}
	if got := s.Slot(13); got != s.Blocks()[3]*4+1 {
		t.Fatalf("slot of position 13 = %d, want page %d offset 1", got, s.Blocks()[3])
	}
	s.Release()
	if p.InUse() != 0 || s.Len() != 0 {
		t.Fatalf("after Release: %d pages in use, len %d", p.InUse(), s.Len())
	}
}

func TestPoolLimitAndReuse(t *testing.T) {
	p := newPool(t, 6) // two pages per layer
	a := p.NewSequence(100)
	if err := a.Reserve(8); err != nil {
		t.Fatal(err)
	}
	b := p.NewSequence(100)
	if err := b.Reserve(1); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Reserve over the pool limit: err %v, want ErrNoMemory", err)
	}
	pages := slices.Clone(a.Blocks())
	a.Release()
	if err := b.Reserve(8); err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(b.Blocks())
	slices.Sort(got)
	slices.Sort(pages)
	if !slices.Equal(got, pages) {
		t.Fatalf("released pages %v, the next sequence got %v", pages, got)
	}
}

// The tiers: offloaded layers take pages of the offload store and staging of their own; the limit counts
// resident pages only; staging is returned with the sequence.
func TestTiersAndStaging(t *testing.T) {
	dev := cpu.New()
	p, err := NewPool(dev, Config{Layers: 4, KVDim: 8, PageSize: 4, DType: compute.KVF16, Offload: []bool{false, true, true, false}, MaxPages: 2*4 + 2*2})
	if err != nil {
		t.Fatal(err)
	}
	if st, i := p.Layer(2); st.Tier != compute.TierHost || i != 1 {
		t.Fatalf("layer 2: tier %v index %d, want host 1", st.Tier, i)
	}
	if st, i := p.Layer(3); st.Tier != compute.TierDevice || i != 1 {
		t.Fatalf("layer 3: tier %v index %d, want device 1", st.Tier, i)
	}
	if st, _ := p.Staging(0); st != nil {
		t.Fatal("a resident layer has staging")
	}
	s := p.NewSequence(100)
	if err := s.Reserve(16); err != nil { // 4 pages x 2 resident layers = 8 resident
		t.Fatal(err)
	}
	if err := s.ReserveStaging(8); err != nil { // 2 pages x 2 offloaded layers = 4 resident
		t.Fatal(err)
	}
	if p.Resident() != 12 || p.Offloaded() != 8 || s.PagesHeld() != 20 {
		t.Fatalf("resident %d, offloaded %d, held %d; want 12, 8, 20", p.Resident(), p.Offloaded(), s.PagesHeld())
	}
	if err := s.Reserve(17); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Reserve past the resident limit: %v", err)
	}
	s.Release()
	if p.InUse() != 0 {
		t.Fatalf("%d pages in use after Release", p.InUse())
	}
	p.Close()
}

func TestConcurrentSequences(t *testing.T) {
	p := newPool(t, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				s := p.NewSequence(64)
				if err := s.Reserve(1 + i%64); err != nil {
					t.Error(err)
					return
				}
				s.Release()
			}
		}()
	}
	wg.Wait()
	if p.InUse() != 0 {
		t.Fatalf("%d pages leaked", p.InUse())
	}
}

// failingDevice fails the first growth of its host-tier stores.
type failingDevice struct {
	*cpu.Device
	failed bool
}

func (d *failingDevice) GrowKVStore(s *compute.KVStore, pages int) error {
	if s.Tier == compute.TierHost && !d.failed {
		d.failed = true
		return errors.New("disk full")
	}
	return d.Device.GrowKVStore(s, pages)
}

// A growth that fails half-way (the resident store grew, the offload one did not) leaves the pool able to
// grow again, with block ids valid in both stores.
func TestGrowthFailureRecovers(t *testing.T) {
	dev := &failingDevice{Device: cpu.New()}
	p, err := NewPool(dev, Config{Layers: 2, KVDim: 8, PageSize: 4, DType: compute.KVF16, Offload: []bool{false, true}})
	if err != nil {
		t.Fatal(err)
	}
	s := p.NewSequence(100)
	if err := s.Reserve(10); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("first Reserve: %v, want the device's error", err)
	}
	if p.InUse() != 0 {
		t.Fatalf("%d pages in use after a failed Reserve", p.InUse())
	}
	if err := s.Reserve(10); err != nil {
		t.Fatalf("second Reserve: %v", err)
	}
	res, _ := p.Layer(0)
	off, _ := p.Layer(1)
	for _, b := range s.Blocks() {
		if int(b) >= res.Pages || int(b) >= off.Pages {
			t.Fatalf("block %d outside the stores' %d and %d pages", b, res.Pages, off.Pages)
		}
	}
	s.Release()
	p.Close()
}

// A fork shares its parent's leading pages; they go back to the pool when the last holder releases them.
func TestForkSharesPages(t *testing.T) {
	p, err := NewPool(cpu.New(), Config{Layers: 2, KVDim: 4, PageSize: 16, DType: compute.KVF16})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := p.NewSequence(100)
	if err := a.Reserve(40); err != nil {
		t.Fatal(err)
	}
	a.Commit(40)
	if _, err := a.Fork(20, 100); err == nil {
		t.Fatal("fork of a partial page accepted")
	}
	b, err := a.Fork(32, 100)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 32 || !slices.Equal(b.Blocks(), a.Blocks()[:2]) {
		t.Fatalf("fork: len %d blocks %v, parent %v", b.Len(), b.Blocks(), a.Blocks())
	}
	if err := b.Reserve(10); err != nil {
		t.Fatal(err)
	}
	if got := p.InUse(); got != 4*2 {
		t.Fatalf("in use %d layer pages, want 8 (3 of the parent, 1 of the fork, 2 layers)", got)
	}
	a.Release()
	if got := p.InUse(); got != 3*2 {
		t.Fatalf("after the parent's release: %d, want 6 (the fork's 3)", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("truncating into shared pages did not panic")
			}
		}()
		b.Truncate(10)
	}()
	b.Release()
	if got := p.InUse(); got != 0 {
		t.Fatalf("after both released: %d", got)
	}
}

// Shrink keeps the pages of the stored tokens and gives back the rest and the staging.
func TestShrink(t *testing.T) {
	p, err := NewPool(cpu.New(), Config{Layers: 2, KVDim: 4, PageSize: 16, DType: compute.KVF16, Offload: []bool{false, true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := p.NewSequence(200)
	if err := s.Reserve(100); err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveStaging(40); err != nil {
		t.Fatal(err)
	}
	s.Commit(20)
	s.Shrink()
	if len(s.Blocks()) != 2 || len(s.StagingBlocks()) != 0 || p.InUse() != 2*2 {
		t.Fatalf("after shrink: %d blocks, %d staging, %d layer pages in use", len(s.Blocks()), len(s.StagingBlocks()), p.InUse())
	}
	s.Release()
	if p.InUse() != 0 {
		t.Fatalf("%d in use", p.InUse())
	}
}
