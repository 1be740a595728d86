package engine

import (
	"context"
	"slices"
	"testing"
)

// n > 1: the completions share the prompt's prefill (the forks prefill less than a page of it); greedy
// top-1 ones all equal the greedy reference, seeded draws differ; every page goes back to the pool.
func TestSeveralCompletionsSharePrefill(t *testing.T) {
	m := tinyModel(t, false)
	e, err := New(m, Options{PageSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	prompt := make([]int32, 40)
	for i := range prompt {
		prompt[i] = int32(1 + i*7%90)
	}
	want := referenceGreedy(t, m, prompt, 8)
	p := greedyParams(8)
	p.N, p.Temperature, p.TopK = 3, 1, 1 // top-1 draws: greedy (n > 1 with temperature 0 is refused)
	h, err := e.Generate(context.Background(), GenRequest{IDs: prompt, Params: p})
	if err != nil {
		t.Fatal(err)
	}
	all := append([]*Handle{h}, h.Siblings()...)
	if len(all) != 3 {
		t.Fatalf("%d completions", len(all))
	}
	for i, c := range all {
		out, fin := collect(t, c)
		if fin.Err != nil || !slices.Equal(out, want) {
			t.Fatalf("completion %d: %v %v, want %v", i, out, fin.Err, want)
		}
		if wantPrefill := map[bool]int{true: 40, false: 40 - 32}[i == 0]; fin.Stats.PrefillTokens != wantPrefill {
			t.Fatalf("completion %d prefilled %d tokens, want %d", i, fin.Stats.PrefillTokens, wantPrefill)
		}
	}
	p = greedyParams(12)
	p.Temperature, p.N, p.Seed = 1, 3, 7
	h, err = e.Generate(context.Background(), GenRequest{IDs: prompt, Params: p})
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]int32
	for _, c := range append([]*Handle{h}, h.Siblings()...) {
		out, fin := collect(t, c)
		if fin.Err != nil {
			t.Fatal(fin.Err)
		}
		outs = append(outs, out)
	}
	if slices.Equal(outs[0], outs[1]) && slices.Equal(outs[1], outs[2]) {
		t.Fatalf("three seeded draws are identical: %v", outs[0])
	}
	if n := e.Pool().InUse(); n != 0 {
		t.Fatalf("%d pages in use", n)
	}
	// Cancelled before the prompt is in the cache: every completion ends.
	h, err = e.Generate(context.Background(), GenRequest{IDs: prompt, Params: p})
	if err != nil {
		t.Fatal(err)
	}
	h.Cancel()
	for _, c := range append([]*Handle{h}, h.Siblings()...) {
		c.Cancel()
		collect(t, c)
	}
	if _, err := e.Generate(context.Background(), GenRequest{Session: "s", Start: true, IDs: prompt, Params: p}); KindOf(err) != KindInvalid {
		t.Fatalf("n > 1 in a session: %v", err)
	}
}
