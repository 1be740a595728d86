package main

import (
	"math"
	"runtime"
	"sync"
	"time"
)

// goSum is the pure-Go streaming read: 8 independent accumulators so the loop is not latency bound.
func goSum(x []float32) float32 { // x: (n,)
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		s0 += v[0]
		s1 += v[1]
		s2 += v[2]
		s3 += v[3]
		s4 += v[4]
		s5 += v[5]
		s6 += v[6]
		s7 += v[7]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// asmSum is sumAVX2 over x, with a Go tail for the last len(x)%64 elements.
func asmSum(x []float32) float32 { // x: (n,)
	n := len(x) &^ 63
	var s float32
	if n > 0 {
		s = sumAVX2(&x[0], n)
	}
	return s + goSum(x[n:])
}

// goFMA runs n iterations of 8 independent float64 fused multiply-adds (16 FLOPs each): the rate plain
// Go code reaches without vector instructions.
func goFMA(n int) float64 {
	var a0, a1, a2, a3, a4, a5, a6, a7 float64
	m := 1 + 1/float64(n+1)
	for range n {
		a0 = math.FMA(a0, m, 1)
		a1 = math.FMA(a1, m, 1)
		a2 = math.FMA(a2, m, 1)
		a3 = math.FMA(a3, m, 1)
		a4 = math.FMA(a4, m, 1)
		a5 = math.FMA(a5, m, 1)
		a6 = math.FMA(a6, m, 1)
		a7 = math.FMA(a7, m, 1)
	}
	return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7
}

// parallel runs work(i) on threads goroutines, each locked to its own OS thread, starts them together
// and returns the wall time until the last one finishes.
func parallel(threads int, work func(i int)) time.Duration {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(threads)
	done.Add(threads)
	for i := range threads {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ready.Done()
			<-start
			work(i)
			done.Done()
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()
	return time.Since(t0)
}

// bandwidth returns the best rate in bytes/s over reps runs of threads workers, each reading its share
// of buf with read. The workers' shares are disjoint, contiguous and 256-byte aligned in size.
func bandwidth(buf []float32, threads, reps int, read func([]float32) float32) float64 {
	chunk := len(buf) / threads &^ 63
	results := make([]float32, threads) // kept, so that no read can be optimized away
	best := 0.0
	for range reps {
		d := parallel(threads, func(i int) { results[i] = read(buf[i*chunk : (i+1)*chunk]) })
		best = max(best, float64(chunk*threads*4)/d.Seconds())
	}
	return best
}

// copyBandwidth returns the best copy rate in bytes copied per second (each byte copied is read once and
// written once) with threads workers, each copying its half-share of buf onto the other half.
func copyBandwidth(buf []float32, threads, reps int) float64 {
	half := len(buf) / 2
	src, dst := buf[:half], buf[half:2*half]
	chunk := half / threads
	best := 0.0
	for range reps {
		d := parallel(threads, func(i int) { copy(dst[i*chunk:(i+1)*chunk], src[i*chunk:(i+1)*chunk]) })
		best = max(best, float64(chunk*threads*4)/d.Seconds())
	}
	return best
}

// flopRate returns the best rate in FLOP/s over reps runs of threads workers, each calling kernel(iters)
// once; flopsPerIter is the arithmetic of one kernel iteration.
func flopRate(threads, reps, iters int, flopsPerIter float64, kernel func(int) float64) float64 {
	results := make([]float64, threads) // kept, so that no loop can be optimized away
	best := 0.0
	for range reps {
		d := parallel(threads, func(i int) { results[i] = kernel(iters) })
		best = max(best, float64(threads)*float64(iters)*flopsPerIter/d.Seconds())
	}
	return best
}
