package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/fault"
)

// rangeFunc is a loop body over a range of indices [lo, hi).
type rangeFunc interface{ run(lo, hi int) }

// workerRangeFunc is a loop body that is also told which worker runs it, 0 <= worker < poolWorkers(), so
// that it can use per-worker scratch memory. Two calls with the same worker never run at the same time.
type workerRangeFunc interface{ runW(worker, lo, hi int) }

// spinFor is how long an idle helper polls for the next loop before it parks, and how long the caller polls
// for the helpers to finish before it parks: a decode step runs hundreds of short loops back to back, and
// waking a parked goroutine costs microseconds each time.
const spinFor = 50 * time.Microsecond

// workPool is a set of persistent goroutines that share the chunks of one parallel loop at a time. The
// calling goroutine works too (as worker 0); helpers are workers 1..n-1. A loop is published by bumping gen;
// helpers that are polling see it at once, parked ones are woken through their channel. Chunks are handed
// out dynamically through an atomic counter, so a worker slowed by other load on the machine takes fewer.
type workPool struct {
	mu      sync.Mutex // held for the duration of one parallel loop
	helpers []*poolHelper
	gen     atomic.Uint64  // loops published so far
	left    atomic.Int32   // helpers still working on the current loop
	done    sync.WaitGroup // the same count, for a caller that parks

	// The current loop; written under mu before gen is bumped.
	body   rangeFunc
	bodyW  workerRangeFunc
	n      int
	chunk  int
	cursor atomic.Int64 // next unclaimed index

	panicked atomic.Pointer[any] // the first panic of a helper in the current loop
}

// poolHelper is one helper goroutine's parking state. sleeping is set by the helper just before it parks
// and cleared by exactly one of the helper (it saw a new loop after all) or the caller (which then sends
// one wake token), so that a token is sent only to a helper that will receive it.
type poolHelper struct {
	id       int
	wake     chan struct{} // buffered 1
	sleeping atomic.Bool
	_        [64]byte // keep helpers' flags on separate cache lines
}

var (
	poolOnce sync.Once
	pool     *workPool
)

// thePool returns the package's pool, starting workers-1 helper goroutines on first use: one worker per
// CPU, or GOMAXPROCS if that is lower. (Giving the Triton backend one P more than the CPUs, so that the
// goroutines that send responses would not take a worker's P, was measured and made one stream's
// inter-token time worse: 5.8-8.0 ms against 4.9-5.4 ms, the OS then time-slicing three threads on two
// CPUs.)
func thePool() *workPool {
	poolOnce.Do(func() {
		p := &workPool{}
		for i := 1; i < min(runtime.NumCPU(), runtime.GOMAXPROCS(0)); i++ {
			h := &poolHelper{id: i, wake: make(chan struct{}, 1)}
			p.helpers = append(p.helpers, h)
			go p.helperLoop(h)
		}
		pool = p
	})
	return pool
}

// poolWorkers is the number of workers (helpers plus the caller), an upper bound for worker indices.
func poolWorkers() int { return len(thePool().helpers) + 1 }

// spinUntil polls cond for up to spinFor and reports whether it became true.
func spinUntil(cond func() bool) bool {
	var deadline time.Time
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		if i%64 == 63 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(spinFor)
			} else if now.After(deadline) {
				return false
			}
			runtime.Gosched()
		}
	}
}

func (p *workPool) helperLoop(h *poolHelper) {
	var seen uint64
	newLoop := func() bool { return p.gen.Load() != seen }
	for {
		if !spinUntil(newLoop) {
			h.sleeping.Store(true)
			if !newLoop() || !h.sleeping.CompareAndSwap(true, false) {
				<-h.wake // the caller cleared sleeping and sent a token (or is about to)
			}
			if !newLoop() {
				// A late token: the caller of the loop this helper already ran (it saw that loop while
				// polling) reached it in its wake-up pass only after the helper had parked again.
				continue
			}
		}
		seen = p.gen.Load() // the caller cannot publish another loop before this one's Done below
		p.workSafe(h.id)
		p.left.Add(-1)
		p.done.Done()
	}
}

// work claims chunks of the current loop until none are left.
func (p *workPool) work(id int) {
	fault.Hit(fault.Device) // a no-op unless built with -tags faultinject
	n, chunk := int64(p.n), int64(p.chunk)
	for {
		lo := p.cursor.Add(chunk) - chunk
		if lo >= n {
			return
		}
		hi := min(lo+chunk, n)
		if p.bodyW != nil {
			p.bodyW.runW(id, int(lo), int(hi))
		} else {
			p.body.run(int(lo), int(hi))
		}
	}
}

// parallelFor runs body.run(lo, hi) over [0, n) split into chunks across the worker pool and waits for all
// of them. It does not allocate when body is a pointer. When the pool is busy (a concurrent or nested call),
// the loop runs on the calling goroutine alone.
func parallelFor(n int, body rangeFunc) {
	if n <= 0 {
		return
	}
	p := thePool()
	chunk := max(1, n/(4*(len(p.helpers)+1)))
	if n <= chunk || len(p.helpers) == 0 || !p.mu.TryLock() {
		body.run(0, n)
		return
	}
	p.body, p.bodyW = body, nil
	p.start(n, chunk)
}

// parallelForW runs body.runW(worker, lo, hi) over [0, n) in chunks of chunk indices (the last may be
// shorter) across the worker pool and waits. When the pool is busy it runs on the caller as worker 0.
func parallelForW(n, chunk int, body workerRangeFunc) {
	if n <= 0 {
		return
	}
	chunk = max(1, chunk)
	p := thePool()
	if n <= chunk || len(p.helpers) == 0 || !p.mu.TryLock() {
		for lo := 0; lo < n; lo += chunk {
			body.runW(0, lo, min(lo+chunk, n))
		}
		return
	}
	p.body, p.bodyW = nil, body
	p.start(n, chunk)
}

// start runs the loop set in p.body/p.bodyW with every helper and the caller as worker 0, then releases
// p.mu.
func (p *workPool) start(n, chunk int) {
	p.n, p.chunk = n, chunk
	p.cursor.Store(0)
	p.left.Store(int32(len(p.helpers)))
	p.done.Add(len(p.helpers))
	p.gen.Add(1)
	for _, h := range p.helpers {
		if h.sleeping.Load() && h.sleeping.CompareAndSwap(true, false) {
			h.wake <- struct{}{}
		}
	}
	callerPanic := p.workCaller()
	spinUntil(p.helpersDone)
	p.done.Wait()
	helperPanic := p.panicked.Swap(nil)
	p.body, p.bodyW = nil, nil
	p.mu.Unlock()
	// A loop body's panic (a programming error) goes on on the caller's goroutine, where the engine turns
	// it into the step's error, after every helper has left the loop.
	if callerPanic != nil {
		panic(callerPanic)
	}
	if helperPanic != nil {
		panic(*helperPanic)
	}
}

// workCaller is work for the caller (worker 0); it returns a panic of the loop body instead of raising it,
// so that the caller first waits for the helpers.
func (p *workPool) workCaller() (panicked any) {
	defer func() { panicked = recover() }()
	p.work(0)
	return nil
}

// keepPanic records a helper's panic (the first of the loop).
func (p *workPool) keepPanic(r any) { p.panicked.CompareAndSwap(nil, &r) }

// workSafe is work for a helper: a panic in the loop body is kept for the caller to raise.
func (p *workPool) workSafe(id int) {
	defer func() {
		if r := recover(); r != nil {
			p.keepPanic(r)
		}
	}()
	p.work(id)
}

func (p *workPool) helpersDone() bool { return p.left.Load() == 0 }
