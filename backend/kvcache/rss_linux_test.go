//go:build linux

package kvcache

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
)

// rss is the process's resident memory in bytes (/proc/self/statm).
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// Trim gives the memory back: a pool that wrote 256 MiB of pages (resident and host tiers) and released
// them shrinks the process by what Trim says it released, first down to a watermark, then to nothing.
func TestTrimReleasesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	dev := cpu.New()
	// 2 layers (one offloaded) of 256 KiB pages (64 tokens, KV dim 512, fp32): a block id is 512 KiB.
	const kvDim, page, blocks = 512, 64, 512
	p, err := NewPool(dev, Config{Layers: 2, KVDim: kvDim, PageSize: page, DType: compute.KVF32, Offload: []bool{false, true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := p.NewSequence(blocks * page)
	if err := s.Reserve(blocks * page); err != nil {
		t.Fatal(err)
	}
	const rows = 4096
	kv := dev.Tensor(rows, kvDim)
	vals := make([]float32, rows*kvDim)
	for i := range vals {
		vals[i] = 1 + float32(i%7)
	}
	dev.Write(kv, 0, vals)
	slots := make([]int32, rows)
	for l := 0; l < 2; l++ {
		st, li := p.Layer(l)
		for pos := 0; pos < blocks*page; pos += rows {
			for i := range slots {
				slots[i] = s.Slot(pos + i)
			}
			dev.WriteKV(st, li, kv, kv, slots)
		}
	}
	s.Commit(blocks * page)
	s.Release()
	debug.FreeOSMemory() // the heap's own returns must not count as the pool's
	steps := []struct {
		keep, want int64
	}{{64 << 20, 192 << 20}, {0, 64 << 20}}
	for _, st := range steps {
		before := rss(t)
		n, err := p.Trim(st.keep)
		after := rss(t)
		if err != nil || n != st.want {
			t.Fatalf("Trim(%d MiB): released %d bytes (err %v), want %d", st.keep>>20, n, err, st.want)
		}
		// Slack: a tenth of the release (the runtime's own allocations between the two readings).
		if drop := before - after; drop < st.want*9/10 {
			t.Fatalf("Trim(%d MiB) released %d MiB, but the process shrank by %.1f MiB (%d -> %d MiB resident)",
				st.keep>>20, st.want>>20, float64(drop)/(1<<20), before>>20, after>>20)
		}
		if u := p.Usage(); u.ResidentFree+u.OffloadFree != st.keep || u.Trimmed() != 256<<20-st.keep {
			t.Fatalf("after Trim(%d MiB): usage %+v", st.keep>>20, u)
		}
	}
	// Reused trimmed pages cost nothing until written.
	before := rss(t)
	if err := s.Reserve(blocks * page); err != nil {
		t.Fatal(err)
	}
	if grew := rss(t) - before; grew > 16<<20 {
		t.Fatalf("reserving trimmed pages grew the process by %d MiB", grew>>20)
	}
	s.Release()
}
