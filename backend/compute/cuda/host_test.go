//go:build cgo

package cuda

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/kernels"
)

// These tests check the device's host-side logic; they need no GPU.

func TestPoolClass(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {4096, 4096}, {4097, 8192}, {1 << 20, 1 << 20},
		{1<<20 + 1, 2 << 20}, {5<<20 + 3, 6 << 20},
	} {
		if got := class(tc.n); got != tc.want {
			t.Errorf("class(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// The window ring keeps the newest Window rows, oldest first, as the CPU device's shifting window does.
func TestWindowRing(t *testing.T) {
	for _, w := range []int{1, 3, 4} {
		st := &selState{spec: compute.SelSpec{Window: w, QDim: 1, KVHeads: 1}}
		ring := make([]int, w)
		var all []int
		for row := 0; row < 11; row++ {
			ring[st.push()] = row
			all = append(all, row)
			var got []int
			for i := 0; i < st.winLen; i++ {
				got = append(got, ring[(st.winStart+i)%w])
			}
			if want := all[max(0, len(all)-w):]; !slices.Equal(got, want) {
				t.Fatalf("window %d after row %d: %v, want %v", w, row, got, want)
			}
		}
	}
}

// SelDev's bytes follow kernels/device.cuh: 10 pointers, then n, k, win_len, win_start, win_cap, qdim,
// kv_heads, hm_len, forced, step, valid.
func TestSelDevLayout(t *testing.T) {
	st := &selState{spec: compute.SelSpec{Window: 5, QDim: 6, KVHeads: 7}, n: 11, k: 12, winLen: 3, winStart: 4, hmLen: 13}
	st.counts.p, st.mark.p = 0x1000, 0x2000
	b := st.dev(14, 15)
	if len(b) != 128 {
		t.Fatalf("%d bytes", len(b))
	}
	if binary.LittleEndian.Uint64(b[0:]) != 0x1000 || binary.LittleEndian.Uint64(b[72:]) != 0x2000 {
		t.Fatalf("pointers: counts %#x, mark %#x", binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[72:]))
	}
	var ints []int32
	for i := 80; i < 128; i += 4 {
		ints = append(ints, int32(binary.LittleEndian.Uint32(b[i:])))
	}
	if want := []int32{11, 12, 3, 4, 5, 6, 7, 13, 14, 15, 1, 0}; !slices.Equal(ints, want) {
		t.Fatalf("ints %v, want %v", ints, want)
	}
	var nilState *selState
	if nb := nilState.dev(0, 0); binary.LittleEndian.Uint32(nb[120:]) != 0 {
		t.Fatal("a missing state is valid")
	}
}

// Every kernel the device launches by name is defined in kernels/*.cu (a typo would otherwise first show on
// a GPU, as a panic at the op).
func TestLaunchedKernelsExist(t *testing.T) {
	defined := map[string]bool{}
	for _, s := range kernels.Sources() {
		for _, k := range kernels.Kernels(s.Text) {
			defined[k] = true
		}
	}
	files, _ := filepath.Glob("*.go")
	re := regexp.MustCompile(`(?:launch|get)\("([a-z0-9_]+)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			n++
			if !defined[m[1]] {
				t.Errorf("%s launches %s, which no kernel file defines", f, m[1])
			}
		}
	}
	// cvt kernels are chosen at run time (blaslt.go): check them by name too.
	for _, k := range []string{"cvt_f32_f16", "cvt_f32_bf16"} {
		if !defined[k] {
			t.Errorf("kernel %s missing", k)
		}
	}
	if n < 20 {
		t.Fatalf("found %d launches; the pattern no longer matches the code", n)
	}
}
