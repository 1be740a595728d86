package kvcache

import (
	"errors"
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
	var first *compute.KVPage
	for _, tc := range tests {
		if err := s.Reserve(tc.add); err != nil {
			t.Fatal(err)
		}
		s.Commit(tc.add)
		for l := 0; l < 3; l++ {
			if got := len(s.Pages(l)); got != tc.wantPages {
				t.Fatalf("after %d tokens layer %d has %d pages, want %d", s.Len(), l, got, tc.wantPages)
			}
		}
		if first == nil {
			first = s.Pages(0)[0]
		} else if s.Pages(0)[0] != first {
			t.Fatal("growing the sequence replaced its first page")
		}
	}
	if err := s.Reserve(1); err == nil {
		t.Fatal("Reserve past the sequence's limit succeeded")
	}
	if got, want := p.InUse(), 3*10; got != want {
		t.Fatalf("pool has %d pages in use, want %d", got, want)
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
	pages := append([]*compute.KVPage(nil), a.Pages(0)...)
	a.Release()
	if err := b.Reserve(8); err != nil {
		t.Fatal(err)
	}
	reused := 0
	for l := 0; l < 3; l++ {
		for _, pg := range b.Pages(l) {
			for _, old := range pages {
				if pg == old {
					reused++
				}
			}
		}
	}
	if reused != len(pages) {
		t.Fatalf("%d of %d released pages were reused", reused, len(pages))
	}
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
