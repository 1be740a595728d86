package tinymodel

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/tests/reference/golden"
)

func TestSplitMix64KnownAnswer(t *testing.T) {
	// First outputs for state 0, as published with the reference C implementation (splitmix64.c).
	g := splitMix64{}
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := g.next(); got != want {
			t.Errorf("output %d = %#x, want %#x", i, got, want)
		}
	}
}

func TestNormalMoments(t *testing.T) {
	g := tensorRNG(7, "x")
	const n = 200000
	var s, s2 float64
	for i := 0; i < n; i++ {
		v := g.normal()
		if v < -6 || v > 6 {
			t.Fatalf("sample %g outside ±6", v)
		}
		s += v
		s2 += v * v
	}
	mean, variance := s/n, s2/n-(s/n)*(s/n)
	if math.Abs(mean) > 0.01 || math.Abs(variance-1) > 0.02 {
		t.Errorf("mean %g variance %g, want about 0 and 1", mean, variance)
	}
}

func TestToBF16(t *testing.T) {
	for _, tc := range []struct {
		in   uint32 // float32 bits
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1.0
		{0x3f808000, 0x3f80}, // halfway, even below: stays
		{0x3f818000, 0x3f82}, // halfway, odd below: rounds up to even
		{0x3f808001, 0x3f81}, // just above halfway
		{0xbf807fff, 0xbf80}, // just below halfway, negative
		{0x7f7fffff, 0x7f80}, // max float rounds to +Inf
		{0x7f800000, 0x7f80}, // +Inf
		{0x7f800001, 0x7fc0}, // signalling NaN stays a (quiet) NaN
		{0x00000000, 0x0000},
	} {
		if got := toBF16(math.Float32frombits(tc.in)); got != tc.want {
			t.Errorf("toBF16(%#08x) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
}

// parseSafetensors is an independent minimal reader: header entries and the data section.
func parseSafetensors(t *testing.T, b []byte) (map[string]struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}, []byte) {
	t.Helper()
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 {
		t.Errorf("header length %d leaves data unaligned", n)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		t.Fatalf("header: %v", err)
	}
	out := map[string]struct {
		DType   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}{}
	for k, v := range raw {
		if k == "__metadata__" {
			continue
		}
		e := out[k]
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatalf("tensor %s: %v", k, err)
		}
		out[k] = e
	}
	return out, b[8+n:]
}

func TestEncodeLayoutAndValues(t *testing.T) {
	for _, s := range Presets() {
		t.Run(s.Name, func(t *testing.T) {
			_, w, err := Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			hdr, data := parseSafetensors(t, w)
			specs := s.tensors()
			if len(hdr) != len(specs) {
				t.Fatalf("%d tensors in file, %d in spec", len(hdr), len(specs))
			}
			covered := 0
			for _, ts := range specs {
				e, ok := hdr[ts.name]
				if !ok {
					t.Fatalf("tensor %s missing", ts.name)
				}
				vals := ts.values(s.Seed)
				elem := 4
				if s.DType == BFloat16 {
					elem = 2
				}
				if e.Offsets[1]-e.Offsets[0] != elem*len(vals) || e.Offsets[1] > len(data) {
					t.Fatalf("tensor %s: offsets %v for %d values", ts.name, e.Offsets, len(vals))
				}
				covered += e.Offsets[1] - e.Offsets[0]
				for _, i := range []int{0, len(vals) / 2, len(vals) - 1} {
					at := data[e.Offsets[0]+elem*i:]
					var got float32
					if elem == 4 {
						got = math.Float32frombits(binary.LittleEndian.Uint32(at))
					} else {
						got = math.Float32frombits(uint32(binary.LittleEndian.Uint16(at)) << 16)
						if rel := math.Abs(float64(got-vals[i])) / math.Abs(float64(vals[i])); rel > 1.0/256 {
							t.Errorf("tensor %s[%d]: bf16 %g vs f32 %g", ts.name, i, got, vals[i])
						}
						continue
					}
					if got != vals[i] {
						t.Errorf("tensor %s[%d] = %g, want %g", ts.name, i, got, vals[i])
					}
				}
			}
			if covered != len(data) {
				t.Errorf("tensors cover %d of %d data bytes", covered, len(data))
			}
		})
	}
}

func TestConfigJSON(t *testing.T) {
	for _, s := range Presets() {
		c, _, err := Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(c, &m); err != nil {
			t.Fatalf("%s: config.json: %v", s.Name, err)
		}
		if m["model_type"] != s.ModelType || m["hidden_size"] != float64(s.Hidden) ||
			m["num_key_value_heads"] != float64(s.KVHeads) || m["tie_word_embeddings"] != s.TieEmbeddings ||
			m["torch_dtype"] != string(s.DType) {
			t.Errorf("%s: config.json fields do not match the spec: %s", s.Name, c)
		}
		if (s.RopeScaling == nil) != (m["rope_scaling"] == nil) {
			t.Errorf("%s: rope_scaling presence wrong: %v", s.Name, m["rope_scaling"])
		}
		if s.RopeScaling != nil && !strings.Contains(string(c), `"factor": `+string(jsonFloat(s.RopeScaling.Factor))) {
			t.Errorf("%s: factor not written as a float: %s", s.Name, c)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(s *Spec)
	}{
		{"zero hidden", "Hidden", func(s *Spec) { s.Hidden = 0 }},
		{"gqa mismatch", "multiple of KVHeads", func(s *Spec) { s.KVHeads = 3 }},
		{"odd head dim", "odd", func(s *Spec) { s.HeadDim = 15 }},
		{"bad dtype", "DType", func(s *Spec) { s.DType = "float16" }},
		{"bad model type", "ModelType", func(s *Spec) { s.ModelType = "gpt2" }},
		{"qwen2 without bias", "qwen2", func(s *Spec) { s.ModelType = "qwen2" }},
		{"eos outside vocab", "EOS", func(s *Spec) { s.EOS = s.Vocab }},
		{"bad rope type", "rope_scaling type", func(s *Spec) { s.RopeScaling.Type = "yarn" }},
		{"llama3 freq factors", "freq factor", func(s *Spec) { s.RopeScaling.HighFreqFactor = 0.5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := with(TinyLlamaF32, func(*Spec) {})
			tc.edit(&s)
			if err := Write(t.TempDir(), s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Write: err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Preset("nope"); err == nil {
		t.Error("Preset(nope): no error")
	}
}

// TestGoldenHashes regenerates every preset and checks the sha256 recorded in the committed goldens: the
// files transformers computed the references from must be exactly what the generator writes today.
func TestGoldenHashes(t *testing.T) {
	for _, s := range Presets() {
		t.Run(s.Name, func(t *testing.T) {
			path, err := golden.TestdataPath(s.Name + ".okvg")
			if err != nil {
				t.Fatalf("golden for preset %s missing (run tests/reference/make_goldens.py): %v", s.Name, err)
			}
			g, err := golden.Read(path)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := Write(dir, s); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{ConfigFile, WeightsFile} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(b)
				got, want := hex.EncodeToString(sum[:]), g.Notes["sha256/"+f]
				if got != want {
					t.Errorf("%s/%s: sha256 %s, golden %s recorded %s: generator drifted", s.Name, f, got, path, want)
				}
			}
			if g.ModelSHA256 != g.Notes["sha256/"+WeightsFile] {
				t.Errorf("%s: header model_sha256 %s != notes sha256/%s", path, g.ModelSHA256, WeightsFile)
			}
		})
	}
}
