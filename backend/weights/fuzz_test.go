package weights

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// checkSet verifies the invariants every successfully opened Set must hold.
func checkSet(t *testing.T, s *Set) {
	for name, tt := range s.Tensors {
		if tt.Name != name {
			t.Fatalf("tensor %q filed under %q", tt.Name, name)
		}
		rb, err := tt.Type.RowBytes(tt.Cols())
		if err != nil {
			t.Fatalf("tensor %q: %v", name, err)
		}
		if len(tt.Data) != tt.Rows()*rb {
			t.Fatalf("tensor %q: %d bytes, want %d", name, len(tt.Data), tt.Rows()*rb)
		}
		if tt.Rows() > 0 && tt.Cols() > 0 {
			dst := make([]float32, tt.Cols())
			if err := DequantizeRow(tt.Type, tt.Row(tt.Rows()-1), dst); err != nil {
				t.Fatalf("tensor %q: %v", name, err)
			}
		}
	}
}

// fuzzSeeds builds small valid files of each format with the writers.
func fuzzSeeds(t testing.TB) (gguf, st [][]byte) {
	r := rand.New(rand.NewPCG(9, 10))
	dir := t.TempDir()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	kv := []KV{{"general.architecture", "llama"}, {"n", uint32(2)}, {"f", float32(0.5)},
		{"toks", []string{"a", "b"}}, {"nested", []any{[]int32{1}, []bool{true}}}}
	for i, ts := range [][]*Tensor{
		{randomTensor(t, "w", Q8_0, r, 2, 32), randomTensor(t, "n", F32, r, 3)},
		{randomTensor(t, "k", Q4_K, r, 256), randomTensor(t, "b", BF16, r, 2, 2)},
		{randomTensor(t, "q", Q4_1, r, 32), randomTensor(t, "h", Q6_K, r, 256)},
	} {
		p := filepath.Join(dir, strconv.Itoa(i)+".gguf")
		if err := WriteGGUF(p, kv[:i+3], ts); err != nil {
			t.Fatal(err)
		}
		gguf = append(gguf, read(p))
		p = filepath.Join(dir, strconv.Itoa(i)+".safetensors")
		if err := WriteSafetensors(p, []*Tensor{randomTensor(t, "x", F16, r, 2, 3), randomTensor(t, "y", F32, r, i+1)},
			map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		st = append(st, read(p))
	}
	return gguf, st
}

// fuzzDir is one temp directory per test process for fuzz inputs (a t.TempDir per input slows the
// fuzzer to a crawl); fuzzMu serializes its use.
var (
	fuzzMu  sync.Mutex
	fuzzDir string
)

// fuzzOpen writes data to a temp file named name and opens it: it must fail cleanly or give a valid Set.
func fuzzOpen(t *testing.T, name string, data []byte) {
	fuzzMu.Lock()
	defer fuzzMu.Unlock()
	if fuzzDir == "" {
		d, err := os.MkdirTemp("", "weights-fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		fuzzDir = d
	}
	p := filepath.Join(fuzzDir, name)
	defer os.Remove(p)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p)
	if err != nil {
		return
	}
	checkSet(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func FuzzGGUF(f *testing.F) {
	seeds, _ := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOpen(t, "f.gguf", data) })
}

func FuzzSafetensors(f *testing.F) {
	_, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOpen(t, "f.safetensors", data) })
}

// TestWriteFuzzCorpus regenerates the committed seed corpora under testdata/fuzz when
// OMNIKV_WRITE_FUZZ_CORPUS=1 (the same files f.Add uses, kept on disk so that `go test` runs them even
// without the writers).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("OMNIKV_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set OMNIKV_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz seeds")
	}
	g, s := fuzzSeeds(t)
	for target, seeds := range map[string][][]byte{"FuzzGGUF": g, "FuzzSafetensors": s} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range seeds {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, "seed"+strconv.Itoa(i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fuzzDir != "" {
		os.RemoveAll(fuzzDir)
	}
	os.Exit(code)
}
