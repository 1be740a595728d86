package synth

import (
	"crypto/sha256"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

func TestParseSpec(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{in: "llama3-8b", want: "llama3-8b:bf16@1"},
		{in: "llama3-8b:q4", want: "llama3-8b:q4_0@1"},
		{in: "llama3-8b:q4k", want: "llama3-8b:q4_k@1"},
		{in: "tiny:f32@7", want: "tiny:f32@7"},
		{in: "smollm2-135m:q4_1", want: "smollm2-135m:q4_1@1"},
		{in: "llama3-70b", err: `unknown shape "llama3-70b"`},
		{in: "tiny:q3", err: `unknown type "q3"`},
		{in: "tiny@x", err: `bad seed "x"`},
		{in: "smollm2-135m:q4k", err: "not a whole number of Q4_K blocks"}, // hidden 576 is not a multiple of 256
	} {
		s, err := ParseSpec(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseSpec(%q): error %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || s.String() != c.want {
			t.Errorf("ParseSpec(%q) = %v, %v; want %s", c.in, s, err, c.want)
		}
	}
}

// The Llama-3-8B shape's bytes, by hand: per layer q and o 4096x4096, k and v 1024x4096, gate, up and down
// 14336x4096 = 218,103,808 weights; embedding and head 128256x4096 each; 65 norm vectors of 4096 f32.
func TestWeightBytes(t *testing.T) {
	const perLayer, table, norms = 218103808, 128256 * 4096, 65 * 4096 * 4
	for _, c := range []struct {
		spec string
		want int64
	}{
		{"llama3-8b:bf16", 2*(32*perLayer+2*table) + norms}, // 16,061,054,976 bytes = 14.96 GiB
		{"llama3-8b:q4", 32*perLayer/32*18 + 2*table/32*34 + norms},
		{"llama3-8b:q4k", 32*perLayer/256*144 + 2*table/32*34 + norms},
	} {
		s, err := ParseSpec(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.WeightBytes(); got != c.want {
			t.Errorf("%s: %d weight bytes, want %d", c.spec, got, c.want)
		}
	}
}

// Every type's values have mean ~0 and the standard deviation its tensor asks for (so activations stay near
// unit size and logits are peaked, not flat).
func TestValueScale(t *testing.T) {
	for _, typ := range []string{"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4k"} {
		t.Run(typ, func(t *testing.T) {
			s, err := ParseSpec("tiny:" + typ)
			if err != nil {
				t.Fatal(err)
			}
			set, err := NewSet(s, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, sp := range s.tensors() {
				if !strings.Contains(sp.name, "layers.0.") && !strings.HasPrefix(sp.name, "model.embed") {
					continue
				}
				w := set.Tensors[sp.name]
				row := make([]float32, w.Cols())
				var sum, sq float64
				for i := 0; i < w.Rows(); i++ {
					if err := weights.DequantizeRow(w.Type, w.Row(i), row); err != nil {
						t.Fatal(err)
					}
					for _, x := range row {
						sum, sq = sum+float64(x), sq+float64(x)*float64(x)
					}
				}
				n := float64(w.NumElements())
				mean, sd := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
				want := float64(sp.sigma)
				if sp.sigma == 0 { // norm weights: uniform in [0.5, 1.5)
					want = 1 / math.Sqrt(12)
					mean--
				}
				if math.Abs(sd/want-1) > 0.1 || math.Abs(mean) > 0.05*want+1e-3 {
					t.Errorf("%s (%v): mean %.4g, sd %.4g; want mean 0 (norms 1), sd %.4g", sp.name, w.Type, mean, sd, want)
				}
			}
		})
	}
}

// The values depend on the seed only, not on how many goroutines fill them.
func TestDeterministic(t *testing.T) {
	sum := func(spec string, procs int) [32]byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		s, err := ParseSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		set, err := NewSet(s, 0)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		for _, sp := range s.tensors() {
			h.Write(set.Tensors[sp.name].Data)
		}
		return [32]byte(h.Sum(nil))
	}
	a, b, c := sum("tiny:q4@3", 1), sum("tiny:q4@3", 4), sum("tiny:q4@4", 4)
	if a != b {
		t.Error("the same seed gave different weights with 1 and 4 goroutines")
	}
	if a == c {
		t.Error("seeds 3 and 4 gave the same weights")
	}
}

// Each type runs the real forward pass on the CPU device: a prompt and a few greedy steps, every logit
// finite and their spread that of a peaked distribution.
func TestForwardCPU(t *testing.T) {
	for _, typ := range []string{"f32", "bf16", "f16", "q8_0", "q4", "q4_1", "q4k"} {
		t.Run(typ, func(t *testing.T) {
			s, err := ParseSpec("tiny:" + typ)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Load(s, cpu.New(), llama.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Layers != 4 || m.Hidden != 256 || m.KVHeads != 2 || m.Vocab != 1024 {
				t.Fatalf("model %v, want the tiny shape", m)
			}
			pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 16, DType: compute.KVF16})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			st := m.MustState(32, 1)
			seq := llama.NewSequence(pool, 40)
			defer seq.Release()
			ids := RandomIDs(m.Vocab, 32, 9)
			var logits []float32
			for step := 0; step < 4; step++ {
				if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: ids}}); err != nil {
					t.Fatal(err)
				}
				logits = m.ReadLogits(st, logits)
				var sq float64
				best := 0
				for i, x := range logits {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						t.Fatalf("step %d: logit %d is %v", step, i, x)
					}
					sq += float64(x) * float64(x)
					if x > logits[best] {
						best = i
					}
				}
				if rms := math.Sqrt(sq / float64(len(logits))); rms < 1 || rms > 20 {
					t.Errorf("step %d: logits' rms %.3g, want 1..20", step, rms)
				}
				ids = []int32{int32(best)}
			}
		})
	}
}
