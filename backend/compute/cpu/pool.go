package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// rangeFunc is a loop body over a range of indices [lo, hi).
type rangeFunc interface{ run(lo, hi int) }

// workerRangeFunc is a loop body that is also told which worker runs it, 0 <= worker < poolWorkers(), so
// that it can use per-worker scratch memory. Two calls with the same worker never run at the same time.
type workerRangeFunc interface{ runW(worker, lo, hi int) }

// workPool is a set of persistent goroutines that share the chunks of one parallel loop at a time. The
// calling goroutine works too (as worker 0); helpers are workers 1..n-1. Chunks are handed out dynamically
// through an atomic counter, so a worker slowed by other load on the machine takes fewer of them.
type workPool struct {
	mu   sync.Mutex      // held for the duration of one parallel loop
	wake []chan struct{} // one per helper, buffered 1: "a loop is ready"
	done sync.WaitGroup  // helpers still working on the current loop

	// The current loop; written under mu before helpers are woken.
	body   rangeFunc
	bodyW  workerRangeFunc
	n      int
	chunk  int
	cursor atomic.Int64 // next unclaimed index
}

var (
	poolOnce sync.Once
	pool     *workPool
)

// thePool returns the package's pool, starting GOMAXPROCS-1 helper goroutines on first use.
func thePool() *workPool {
	poolOnce.Do(func() {
		p := &workPool{}
		for i := 1; i < runtime.GOMAXPROCS(0); i++ {
			c := make(chan struct{}, 1)
			p.wake = append(p.wake, c)
			go p.helper(i, c)
		}
		pool = p
	})
	return pool
}

// poolWorkers is the number of workers (helpers plus the caller), an upper bound for worker indices.
func poolWorkers() int { return len(thePool().wake) + 1 }

func (p *workPool) helper(id int, wake <-chan struct{}) {
	for range wake {
		p.work(id)
		p.done.Done()
	}
}

// work claims chunks of the current loop until none are left.
func (p *workPool) work(id int) {
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
	p := thePool()
	chunk := max(1, n/(4*(len(p.wake)+1)))
	if n <= 0 {
		return
	}
	if n <= chunk || len(p.wake) == 0 || !p.mu.TryLock() {
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
	if n <= chunk || len(p.wake) == 0 || !p.mu.TryLock() {
		for lo := 0; lo < n; lo += chunk {
			body.runW(0, lo, min(lo+chunk, n))
		}
		return
	}
	p.body, p.bodyW = nil, body
	p.start(n, chunk)
}

// start runs the loop set in p.body/p.bodyW with the caller as worker 0, then releases p.mu.
func (p *workPool) start(n, chunk int) {
	p.n, p.chunk = n, chunk
	p.cursor.Store(0)
	helpers := min(len(p.wake), (n+chunk-1)/chunk-1) // no more helpers than chunks beyond the caller's
	p.done.Add(helpers)
	for _, c := range p.wake[:helpers] {
		c <- struct{}{}
	}
	p.work(0)
	p.done.Wait()
	p.body, p.bodyW = nil, nil
	p.mu.Unlock()
}
