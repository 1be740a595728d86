package golden

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sampleFile is the same content as sample() in tests/reference/golden_format.py.
func sampleFile() *File {
	return &File{
		Model: "sample", Source: "golden_format.py --sample", ModelSHA256: strings.Repeat("00", 32), Vocab: 10,
		TopK: 3, Notes: map[string]string{"b": "two", "a": "one <&> é\n"},
		Cases: []Case{
			{Name: "first", PromptIDs: []int32{1, 2}, Positions: []Position{
				{TopIDs: []int32{3, 1, 4}, TopLogits: []float32{2.5, 1.25, -0.5}, Sum: 3.25, SumSq: 9.0625, Max: 2.5, Argmax: 3},
				{TopIDs: []int32{0, 9, 5}, TopLogits: []float32{0.75, 0.75, 0.5}, Sum: -1.5, SumSq: 4.5, Max: 0.75, Argmax: 0},
			}, Greedy: []int32{7, 2, 9}, GreedyGaps: []float32{0.5, 0, 1.5}},
			{Name: "empty-greedy", PromptIDs: []int32{5}, Positions: []Position{
				{TopIDs: []int32{8, 6}, TopLogits: []float32{1, -2}, Sum: 0.5, SumSq: 6.25, Max: 1, Argmax: 8},
			}, Greedy: []int32{}, GreedyGaps: []float32{}},
		},
	}
}

// TestPythonSample reads the file golden_format.py wrote and checks both content and byte identity.
func TestPythonSample(t *testing.T) {
	path := filepath.Join("testdata", "sample.okvg")
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleFile(); !reflect.DeepEqual(got, want) {
		t.Errorf("Read(%s) =\n%+v\nwant\n%+v", path, got, want)
	}
	py, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	goBytes, err := Marshal(sampleFile())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(goBytes, py) {
		t.Errorf("Go Marshal (%d bytes) differs from Python's %s (%d bytes)", len(goBytes), path, len(py))
	}
}

// bigFile is a synthetic file with many positions and odd values.
func bigFile() *File {
	f := &File{Model: "big", Source: "test", ModelSHA256: "ab", Vocab: 1000, TopK: 7, Notes: map[string]string{}}
	for c := 0; c < 3; c++ {
		cs := Case{Name: strings.Repeat("x", c), Greedy: []int32{}, GreedyGaps: []float32{}}
		for p := 0; p < 50*c+1; p++ {
			pos := Position{Sum: float64(p) / 3, SumSq: 1e300, Max: 1e30, Argmax: int32(p % 1000)}
			for k := 0; k < 7-c; k++ {
				pos.TopIDs = append(pos.TopIDs, int32((p*7+k)%1000))
				pos.TopLogits = append(pos.TopLogits, float32(-k)*1.1e-3)
			}
			cs.PromptIDs = append(cs.PromptIDs, int32(999-p))
			cs.Positions = append(cs.Positions, pos)
			cs.Greedy = append(cs.Greedy, int32(p))
			cs.GreedyGaps = append(cs.GreedyGaps, float32(p)*0.5)
		}
		f.Cases = append(f.Cases, cs)
	}
	return f
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *File
	}{{"sample", sampleFile()}, {"big", bigFile()}, {"no cases", &File{Model: "m", Vocab: 1, TopK: 1, Notes: map[string]string{}}}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.okvg")
			if err := Write(path, tc.f); err != nil {
				t.Fatal(err)
			}
			got, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.f) {
				t.Errorf("round trip changed the file:\n%+v\nwant\n%+v", got, tc.f)
			}
		})
	}
}

// recrc rewrites the trailing CRC so that a deliberately inconsistent payload reaches the parser.
func recrc(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[12:len(b)-4]))
	return b
}

func TestUnmarshalRejects(t *testing.T) {
	good, err := Marshal(sampleFile())
	if err != nil {
		t.Fatal(err)
	}
	hdrLen := int(binary.LittleEndian.Uint32(good[12:]))
	cases0 := 16 + hdrLen // offset of the case count
	for _, tc := range []struct {
		name, want string
		edit       func(b []byte) []byte
	}{
		{"empty", "magic", func(b []byte) []byte { return nil }},
		{"bad magic", "magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"bad version", "version 2", func(b []byte) []byte { b[8] = 2; return b }},
		{"flipped payload byte", "CRC-32", func(b []byte) []byte { b[40] ^= 1; return b }},
		{"truncated", "CRC-32", func(b []byte) []byte { return b[:len(b)-9] }},
		{"huge case count", "over limit", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[cases0:], 1<<30)
			return recrc(b)
		}},
		{"one case too many", "truncated", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[cases0:], 3)
			return recrc(b)
		}},
		{"trailing bytes", "unexpected bytes", func(b []byte) []byte {
			b = append(b[:len(b)-4], 0, 0, 0, 0, 0)
			return recrc(b)
		}},
		{"bad header json", "header JSON", func(b []byte) []byte { b[16] = '['; return recrc(b) }},
		{"prompt id outside vocab", "outside vocab", func(b []byte) []byte {
			// first case: name length 4 + "first" 5 bytes, prompt count 4, first prompt id
			binary.LittleEndian.PutUint32(b[cases0+4+4+5+4:], 10)
			return recrc(b)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(append([]byte(nil), good...))
			_, err := Unmarshal(b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Unmarshal: err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(f *File)
	}{
		{"topk over vocab", "topk", func(f *File) { f.TopK = 11 }},
		{"positions != prompt", "positions for", func(f *File) { f.Cases[0].PromptIDs = []int32{1} }},
		{"gaps != greedy", "greedy gaps", func(f *File) { f.Cases[0].GreedyGaps = nil }},
		{"not descending", "not descending", func(f *File) { f.Cases[0].Positions[0].TopLogits[2] = 9 }},
		{"uneven k", "top-K lengths", func(f *File) { f.Cases[0].Positions[1].TopIDs = []int32{1, 2} }},
		{"greedy outside vocab", "greedy id", func(f *File) { f.Cases[0].Greedy[1] = -1 }},
		{"argmax outside vocab", "argmax", func(f *File) { f.Cases[1].Positions[0].Argmax = 10 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sampleFile()
			tc.edit(f)
			if _, err := Marshal(f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Marshal: err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
