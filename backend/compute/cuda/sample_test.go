//go:build cgo

package cuda

import (
	"math"
	"testing"
)

// Sampling on the device (skips without a GPU): greedy ties, top-k 1, top-p cutting to the likeliest id,
// reproducible draws, and frequencies near the distribution.
func TestSampleOnGPU(t *testing.T) { testSample(t, openOrSkip(t)) }

func testSample(t *testing.T, d *Device) {
	const vocab = 3000
	logits := make([]float32, 2*vocab)
	for i := range logits {
		logits[i] = -30
	}
	logits[17], logits[2999], logits[5] = 4, 4, 3 // row 0: tie between 17 and 2999
	logits[vocab+7], logits[vocab+9] = 0, float32(math.Log(3))
	x, err := d.NewTensor(0, 2, vocab)
	if err != nil {
		t.Fatal(err)
	}
	d.Write(x, 0, logits)
	ids, err := d.Argmax(x, 2)
	if err != nil || ids[0] != 17 || ids[1] != 9 {
		t.Fatalf("argmax %v, %v: want [17 9]", ids, err)
	}
	for _, tc := range []struct {
		p    SampleParams
		want int32
	}{
		{SampleParams{Temperature: 1, TopK: 1, Seed: 9}, 17},     // ties at the k-th value are all kept: 17 or 2999
		{SampleParams{Temperature: 5, TopK: 2, Seed: 4}, 17},     // id 5 (logit 3) is cut
		{SampleParams{Temperature: 0.7, TopP: 0.5, Seed: 3}, 17}, // 17 and 2999 hold ~0.42 each: the set needs both
		{SampleParams{Temperature: 1, TopK: 1, Seed: 9}, -1},     // row 1: only id 9
	} {
		ps := []SampleParams{tc.p}
		row := 0
		if tc.want < 0 {
			ps, row = []SampleParams{{}, tc.p}, 1
		}
		for c := uint64(0); c < 20; c++ {
			ps[row].Counter = c
			got, err := d.Sample(x, ps)
			if err != nil {
				t.Fatal(err)
			}
			if row == 1 && got[1] != 9 {
				t.Fatalf("%+v: %d, want 9", tc.p, got[1])
			}
			if row == 0 && got[0] != 17 && got[0] != 2999 {
				t.Fatalf("%+v: %d, want 17 or 2999", tc.p, got[0])
			}
		}
	}
	// Row 1: ids 7 and 9 with probabilities 1/4 and 3/4 (the rest ~e^-30).
	ones := 0
	const draws = 1000
	for c := 0; c < draws; c += 100 {
		ps := make([]SampleParams, 2)
		for j := 0; j < 100; j++ {
			ps[1] = SampleParams{Temperature: 1, Seed: 42, Counter: uint64(c + j)}
			got, err := d.Sample(x, ps)
			if err != nil {
				t.Fatal(err)
			}
			if c == 0 { // the same (seed, counter) draws the same id
				if again, _ := d.Sample(x, ps); got[1] != again[1] {
					t.Fatalf("seed 42 counter %d: %d then %d", c+j, got[1], again[1])
				}
			}
			if got[1] == 9 {
				ones++
			} else if got[1] != 7 {
				t.Fatalf("drew id %d", got[1])
			}
		}
	}
	if f := float64(ones) / draws; f < 0.69 || f > 0.81 { // 4.4 standard deviations
		t.Fatalf("id 9 drawn %.3f of the time, want ~0.75", f)
	}
	if got, _ := d.Sample(x, []SampleParams{{}, {Temperature: 1, TopP: 0.6, Seed: 1}}); got[1] != 9 {
		t.Fatalf("top-p 0.6 drew %d, want 9 (which holds 0.75)", got[1])
	}
}
