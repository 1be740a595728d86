package cpu

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// countBody counts how often each index is visited.
type countBody struct{ hits []atomic.Int32 }

func (b *countBody) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		b.hits[i].Add(1)
	}
}

// workerBody records, per index, which worker ran it, and fails on two workers sharing an id at once.
type workerBody struct {
	busy []atomic.Int32 // per worker
	hits []atomic.Int32
	bad  atomic.Int32
}

func (b *workerBody) runW(w, lo, hi int) {
	if w < 0 || w >= len(b.busy) || b.busy[w].Add(1) != 1 {
		b.bad.Add(1)
		return
	}
	for i := lo; i < hi; i++ {
		b.hits[i].Add(1)
	}
	b.busy[w].Add(-1)
}

func TestParallelForCoversEachIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 8, 100, 1000, 12345} {
		b := &countBody{hits: make([]atomic.Int32, n)}
		parallelFor(n, b)
		for i := range b.hits {
			if h := b.hits[i].Load(); h != 1 {
				t.Fatalf("parallelFor(%d): index %d run %d times", n, i, h)
			}
		}
		for _, chunk := range []int{0, 1, 5, 64} {
			wb := &workerBody{busy: make([]atomic.Int32, poolWorkers()), hits: make([]atomic.Int32, n)}
			parallelForW(n, chunk, wb)
			if wb.bad.Load() != 0 {
				t.Fatalf("parallelForW(%d, %d): worker id out of range or shared", n, chunk)
			}
			for i := range wb.hits {
				if h := wb.hits[i].Load(); h != 1 {
					t.Fatalf("parallelForW(%d, %d): index %d run %d times", n, chunk, i, h)
				}
			}
		}
	}
}

// nestedBody runs a parallel loop inside each chunk of an outer one.
type nestedBody struct{ inner []*countBody }

func (b *nestedBody) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		parallelFor(len(b.inner[i].hits), b.inner[i])
	}
}

func TestParallelForNestedAndConcurrent(t *testing.T) {
	outer := &nestedBody{}
	for i := 0; i < 16; i++ {
		outer.inner = append(outer.inner, &countBody{hits: make([]atomic.Int32, 50+i)})
	}
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ { // three callers at once, each with nested loops
		wg.Add(1)
		go func() {
			defer wg.Done()
			parallelFor(len(outer.inner), outer)
		}()
	}
	wg.Wait()
	for k, in := range outer.inner {
		for i := range in.hits {
			if h := in.hits[i].Load(); h != 3 {
				t.Fatalf("inner loop %d index %d run %d times, want 3", k, i, h)
			}
		}
	}
}

type sumBody struct {
	x    []float32
	part []float32 // one slot per chunk start
}

func (b *sumBody) run(lo, hi int) { b.part[lo] = dotF32(b.x[lo:hi], b.x[lo:hi]) }

func TestParallelForNoAllocs(t *testing.T) {
	b := &sumBody{x: make([]float32, 4096), part: make([]float32, 4096)}
	parallelFor(len(b.x), b)
	if a := testing.AllocsPerRun(100, func() { parallelFor(len(b.x), b) }); a != 0 {
		t.Fatalf("parallelFor: %v allocations per call, want 0", a)
	}
	wb := &workerBody{busy: make([]atomic.Int32, poolWorkers()), hits: make([]atomic.Int32, 4096)}
	if a := testing.AllocsPerRun(100, func() { parallelForW(4096, 16, wb) }); a != 0 {
		t.Fatalf("parallelForW: %v allocations per call, want 0", a)
	}
}

type nopBody struct{ n atomic.Int64 }

func (b *nopBody) run(lo, hi int) { b.n.Add(int64(hi - lo)) }

// BenchmarkParallelForDispatch measures the fixed cost of one parallel loop (waking the helpers and
// waiting for them), the overhead each matmul of a decode step pays.
func BenchmarkParallelForDispatch(b *testing.B) {
	body := &nopBody{}
	for i := 0; i < b.N; i++ {
		parallelFor(64, body)
	}
}

// TestParallelForManyLoops runs many short loops back to back: helpers that poll, park and get late wake
// tokens must run each loop exactly once (a helper running one twice once drove the WaitGroup negative).
// Run it with GOMAXPROCS=8 or more too: more helpers, more interleavings.
func TestParallelForManyLoops(t *testing.T) {
	b := &nopBody{}
	const loops = 30000
	for i := 0; i < loops; i++ {
		parallelFor(64, b)
	}
	if got := b.n.Load(); got != 64*loops {
		t.Fatalf("%d indices run, want %d", got, 64*loops)
	}
}

// panicBody panics on one index.
type panicBody struct{ at int }

func (b panicBody) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		if i == b.at {
			panic(fmt.Sprintf("index %d", i))
		}
	}
}

// A panic in a loop body, on the caller or on a helper, comes out of parallelFor on the caller's goroutine,
// and the pool works (in parallel) afterwards.
func TestParallelForPanic(t *testing.T) {
	for _, at := range []int{0, 999, 500} {
		func() {
			defer func() {
				if r := recover(); r == nil || r != fmt.Sprintf("index %d", at) {
					t.Errorf("panic at %d: recovered %v", at, r)
				}
			}()
			parallelFor(1000, panicBody{at})
		}()
		if !thePool().mu.TryLock() {
			t.Fatal("the pool stays locked after a panic")
		}
		thePool().mu.Unlock()
	}
	var sum atomic.Int64
	parallelFor(1000, addBody{&sum})
	if sum.Load() != 1000*999/2 {
		t.Fatalf("after panics the pool computed %d", sum.Load())
	}
}

type addBody struct{ sum *atomic.Int64 }

func (b addBody) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		b.sum.Add(int64(i))
	}
}
