package llama_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
)

// TestPackedWeightsReleaseFilePages: where the CPU device repacks the weights, the pages of the model
// file that the packing read must leave the process (the issue caps resident memory at 2x the file; with
// the packed copy on the heap and the file's pages still mapped it was 2.2x). Measured on the file's own
// mapping in /proc/self/smaps after a load and a forward pass.
func TestPackedWeightsReleaseFilePages(t *testing.T) {
	if !cpu.PacksWeights() {
		t.Skip("this CPU does not repack weights")
	}
	path := testmodel.SmolLM2(t)
	m, seq := smolWithSequence(t, 8)
	if _, err := m.Forward(m.MustState(4, 1), []llama.Step{{Seq: seq, Tokens: []int32{1, 42, 7}}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	rss, ok := mappedRSS(t, path)
	if !ok {
		t.Skip("no /proc/self/smaps entry for the model file")
	}
	t.Logf("model file %d MB, resident in its mapping %d MB", fi.Size()>>20, rss>>20)
	if rss > fi.Size()/5 {
		t.Fatalf("%d of the file's %d bytes still resident in its mapping after packing", rss, fi.Size())
	}
}

// mappedRSS sums the Rss of this process's mappings of path.
func mappedRSS(t *testing.T, path string) (int64, bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var total int64
	found, in := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") { // a mapping's header line
			in = len(fields) >= 6 && fields[len(fields)-1] == abs
			found = found || in
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += kb << 10
		}
	}
	return total, found
}
