package kernels

import (
	"slices"
	"testing"
)

func TestKernels(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{"extern \"C\" __global__ void a(int x) {}\n  extern \"C\" __global__ void b_2(float *y,\n", []string{"a", "b_2"}},
		{"extern \"C\" __global__ void __launch_bounds__(1024) sel(const int *s) {", []string{"sel"}},
		{"__device__ void helper(int x) {}\n// extern \"C\" __global__ void commented(", nil},
	} {
		if got := Kernels(tc.src); !slices.Equal(got, tc.want) {
			t.Errorf("Kernels(%q) = %v, want %v", tc.src, got, tc.want)
		}
	}
}

// Every kernel name is defined once across the files (the device looks them up by name).
func TestKernelNamesUnique(t *testing.T) {
	seen := map[string]string{}
	for _, s := range Sources() {
		for _, k := range Kernels(s.Text) {
			if f, ok := seen[k]; ok {
				t.Errorf("kernel %s in %s and %s", k, f, s.Name)
			}
			seen[k] = s.Name
		}
	}
}
