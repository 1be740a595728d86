//go:build amd64 && !purego

package cpu

import "testing"

// forEachImpl runs f once with the assembly kernels (when the CPU has them) and once with the pure-Go
// fallback that CPUs without AVX2/FMA/F16C get.
func forEachImpl(t *testing.T, f func(t *testing.T)) {
	saved := hasAVX2
	defer func() { hasAVX2 = saved }()
	if saved {
		t.Run("asm", f)
	} else {
		t.Log("CPU lacks AVX2/FMA/F16C: assembly kernels not tested")
	}
	hasAVX2 = false
	t.Run("go", f)
}
