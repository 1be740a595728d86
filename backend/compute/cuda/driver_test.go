//go:build cgo

package cuda

import (
	"strings"
	"testing"
)

// Without a driver (this CI machine) or with one pointed elsewhere, Probe fails with a message naming what is
// missing; with a GPU it describes it.
func TestProbe(t *testing.T) {
	info, err := Probe(0)
	if err != nil {
		if !strings.Contains(err.Error(), "libcuda.so.1") && !strings.Contains(err.Error(), "cuInit") {
			t.Fatalf("Probe without a GPU: %v (want the missing driver or cuInit named)", err)
		}
		t.Logf("no GPU here: %v", err)
		return
	}
	t.Logf("%v", info)
	if info.Major < 7 || info.Memory <= 0 {
		t.Fatalf("implausible GPU: %+v", info)
	}
	if _, err := Probe(1 << 20); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("GPU 1<<20: %v", err)
	}
}
