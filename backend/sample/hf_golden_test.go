package sample

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
)

// hfGolden is testdata/hf_golden.json, written by testdata/hf_golden.py with transformers' own
// logits processors.
type hfGolden struct {
	Magic   string   `json:"magic"`
	Version int      `json:"version"`
	Vocab   int      `json:"vocab"`
	Cases   []hfCase `json:"cases"`
}

type hfCase struct {
	Params struct {
		Temperature       float64 `json:"temperature"`
		TopK              int     `json:"top_k"`
		TopP              float64 `json:"top_p"`
		MinP              float64 `json:"min_p"`
		RepetitionPenalty float64 `json:"repetition_penalty"`
	} `json:"params"`
	Logits    []float32    `json:"logits"`    // (vocab)
	History   []int32      `json:"history"`   // (tokens)
	Penalised [][2]float64 `json:"penalised"` // (distinct history ids, [id, logit])
	Greedy    int32        `json:"greedy"`
	Kept      []int32      `json:"kept"`  // surviving ids, increasing
	Probs     []float64    `json:"probs"` // (len(Kept)) their probabilities
}

func loadHFGolden(t *testing.T) hfGolden {
	t.Helper()
	const path = "testdata/hf_golden.json"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var g hfGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if g.Magic != "omnikv-sample-hf-golden" || g.Version != 1 {
		t.Fatalf("%s: magic %q version %d, want omnikv-sample-hf-golden 1", path, g.Magic, g.Version)
	}
	if len(g.Cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return g
}

func (c hfCase) params() Params {
	return Params{
		Temperature:       float32(c.Params.Temperature),
		TopK:              c.Params.TopK,
		TopP:              float32(c.Params.TopP),
		MinP:              float32(c.Params.MinP),
		RepetitionPenalty: float32(c.Params.RepetitionPenalty),
	}
}

// TestHFGolden checks, against transformers' processors, the penalised logits (bit for bit), the
// greedy token, the surviving ids and their probabilities (within 1e-6).
func TestHFGolden(t *testing.T) {
	g := loadHFGolden(t)
	for i, c := range g.Cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if len(c.Logits) != g.Vocab || len(c.Kept) != len(c.Probs) {
				t.Fatalf("malformed case: %d logits, %d kept, %d probs", len(c.Logits), len(c.Kept), len(c.Probs))
			}
			p := c.params()
			s := mustNew(t, p, g.Vocab)

			l := slices.Clone(c.Logits)
			s.penalize(l, c.History)
			want := slices.Clone(c.Logits)
			for _, kv := range c.Penalised {
				want[int(kv[0])] = float32(kv[1])
			}
			if p.RepetitionPenalty != 1 && !slices.Equal(l, want) {
				t.Fatalf("penalised logits differ from transformers:\n got %v\nwant %v", l, want)
			}

			gp := p
			gp.Temperature = 0
			if got := mustNew(t, gp, g.Vocab).Sample(slices.Clone(c.Logits), c.History); got != c.Greedy {
				t.Errorf("greedy = %d, transformers %d", got, c.Greedy)
			}

			k, _, decided := s.process(slices.Clone(c.Logits), c.History)
			if decided {
				t.Fatalf("process decided without a draw")
			}
			ids, probs := survivors(s, k)
			if !slices.Equal(ids, c.Kept) {
				t.Fatalf("kept %v, transformers %v (%+v)", ids, c.Kept, p)
			}
			for j := range ids {
				if d := math.Abs(probs[j] - c.Probs[j]); d > 1e-6 {
					t.Errorf("token %d: probability %.9f, transformers %.9f", ids[j], probs[j], c.Probs[j])
				}
			}
		})
	}
}

// survivors lists the ids that k keeps, in increasing order, with their normalised probabilities.
func survivors(s *Sampler, k kept) ([]int32, []float64) {
	var ids []int32
	if k.dense {
		for i, w := range s.w[:k.n] {
			if w > 0 {
				ids = append(ids, int32(i))
			}
		}
	} else {
		ids = slices.Clone(s.cand[:k.n])
		slices.Sort(ids)
	}
	probs := make([]float64, len(ids))
	for i, id := range ids {
		probs[i] = s.w[id] / k.total
	}
	return ids, probs
}
