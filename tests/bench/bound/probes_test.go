package main

import (
	"math/rand/v2"
	"testing"
)

func TestSumKernels(t *testing.T) {
	avx2, _ := kernelSupport()
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 63, 64, 65, 1000, 4096 + 17} {
		x := make([]float32, n) // (n,)
		var want float64
		for i := range x {
			x[i] = float32(r.IntN(16)) // small integers: every partial sum is exact in float32
			want += float64(x[i])
		}
		if got := goSum(x); float64(got) != want {
			t.Errorf("goSum n=%d: %v, want %v", n, got, want)
		}
		if !avx2 {
			continue
		}
		if got := asmSum(x); float64(got) != want {
			t.Errorf("asmSum n=%d: %v, want %v", n, got, want)
		}
	}
}

func TestFMAKernels(t *testing.T) {
	avx2, avx512 := kernelSupport()
	tests := []struct {
		name string
		ok   bool
		f    func(int) float32
	}{
		{"AVX2", avx2, fmaAVX2},
		{"AVX-512", avx512, fmaAVX512},
	}
	for _, tc := range tests {
		if !tc.ok {
			t.Logf("%s: not supported here, skipped", tc.name)
			continue
		}
		for _, n := range []int{0, 1, 5, 1000} {
			if got := tc.f(n); got != float32(n) {
				t.Errorf("%s(%d) = %v: the loop did not run n iterations", tc.name, n, got)
			}
		}
	}
	if got := goFMA(0); got != 0 {
		t.Errorf("goFMA(0) = %v", got)
	}
}

func TestProbesReportRates(t *testing.T) {
	buf := make([]float32, 1<<16)
	if bw := bandwidth(buf, 2, 1, goSum); bw <= 0 {
		t.Errorf("bandwidth %v", bw)
	}
	if bw := copyBandwidth(buf, 2, 1); bw <= 0 {
		t.Errorf("copy bandwidth %v", bw)
	}
	if r := flopRate(2, 1, 1000, 16, goFMA); r <= 0 {
		t.Errorf("flop rate %v", r)
	}
}
