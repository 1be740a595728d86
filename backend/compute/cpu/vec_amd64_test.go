//go:build amd64 && !purego

package cpu

import "testing"

// forEachImpl runs f with the AVX-512 kernels (when the CPU has them), with the AVX2 assembly kernels (when
// it has those), and with the pure-Go fallback that CPUs without AVX2/FMA/F16C get.
func forEachImpl(t *testing.T, f func(t *testing.T)) {
	saved, saved512 := hasAVX2, hasAVX512
	defer func() { hasAVX2, hasAVX512 = saved, saved512 }()
	if saved512 {
		if !hasVNNI {
			t.Log("CPU lacks AVX-512 VNNI: the packed decode kernels run as their Go twins")
		}
		t.Run("avx512", f)
	} else {
		t.Log("CPU lacks AVX-512 F/BW/VL: AVX-512 kernels not tested")
	}
	hasAVX512 = false
	if saved {
		t.Run("asm", f)
	} else {
		t.Log("CPU lacks AVX2/FMA/F16C: assembly kernels not tested")
	}
	hasAVX2 = false
	t.Run("go", f)
}
