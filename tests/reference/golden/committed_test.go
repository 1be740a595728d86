package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommittedGoldens checks every committed golden for internal consistency: the top-K agrees with the
// checksummed max/argmax, the greedy continuation starts with the last prompt position's argmax, and the notes
// say how the numbers were made.
func TestCommittedGoldens(t *testing.T) {
	want := []string{"smollm2.okvg", "tiny_llama_f32.okvg", "tiny_llama_bf16.okvg", "tiny_qwen2.okvg",
		"tiny_llama_linear_rope.okvg", "tiny_qwen2_tied.okvg"}
	var total int64
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatalf("committed golden missing (run tests/reference/make_goldens.py): %v", err)
			}
			total += st.Size()
			f, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"transformers", "torch", "dtype", "attn_implementation", "greedy_stop"} {
				if f.Notes[key] == "" {
					t.Errorf("notes lack %q", key)
				}
			}
			if len(f.ModelSHA256) != 64 {
				t.Errorf("model_sha256 %q is not a hex sha256", f.ModelSHA256)
			}
			if len(f.Cases) < 8 {
				t.Errorf("%d cases, want >= 8", len(f.Cases))
			}
			for _, c := range f.Cases {
				for i, p := range c.Positions {
					if p.TopLogits[0] != p.Max || p.TopIDs[0] != p.Argmax {
						t.Errorf("case %s position %d: top-1 (%d, %g) != max/argmax (%d, %g)", c.Name, i,
							p.TopIDs[0], p.TopLogits[0], p.Argmax, p.Max)
					}
					if k := len(p.TopLogits); p.SumSq < float64(p.Max)*float64(p.Max) ||
						p.SumSq < float64(p.TopLogits[k-1])*float64(p.TopLogits[k-1]) {
						t.Errorf("case %s position %d: sum of squares %g below a stored logit squared", c.Name, i, p.SumSq)
					}
				}
				if len(c.Greedy) == 0 {
					t.Errorf("case %s: no greedy continuation", c.Name)
					continue
				}
				if last := c.Positions[len(c.Positions)-1]; c.Greedy[0] != last.Argmax {
					t.Errorf("case %s: greedy starts with %d, last prompt position's argmax is %d", c.Name,
						c.Greedy[0], last.Argmax)
				}
				if strings.HasPrefix(name, "tiny_") && len(c.Greedy) != 64 {
					t.Errorf("case %s: %d greedy tokens, tiny goldens always generate 64", c.Name, len(c.Greedy))
				}
			}
		})
	}
	if total > 5<<20 {
		t.Errorf("committed goldens total %d bytes, over the 5 MiB budget", total)
	}
}
