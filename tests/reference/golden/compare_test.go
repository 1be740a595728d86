package golden

import (
	"math"
	"sort"
	"strings"
	"testing"
)

// positionOf builds a golden position from a full vector the way make_goldens.py does (top-K by logit
// descending, ties by id; float64 sums).
func positionOf(v []float32, k int) Position {
	ids := make([]int32, len(v))
	for i := range ids {
		ids[i] = int32(i)
	}
	sort.SliceStable(ids, func(a, b int) bool { return v[ids[a]] > v[ids[b]] })
	p := Position{TopIDs: ids[:k], Argmax: ids[0], Max: v[ids[0]]}
	for _, id := range p.TopIDs {
		p.TopLogits = append(p.TopLogits, v[id])
	}
	for _, x := range v {
		p.Sum += float64(x)
		p.SumSq += float64(x) * float64(x)
	}
	return p
}

// testVector is a deterministic logits vector with a clear top, in the range [-8, 12].
func testVector(n int) []float32 {
	v := make([]float32, n)
	x := uint32(12345)
	for i := range v {
		x = x*1664525 + 1013904223
		v[i] = float32(x>>8)/float32(1<<24)*16 - 8
	}
	v[17] = 12
	v[3] = 11
	return v
}

func TestCompare(t *testing.T) {
	const n, k, tol = 2000, 16, 1e-3
	ref := testVector(n)
	pos := positionOf(ref, k)
	scale := 12.0
	for _, tc := range []struct {
		name    string
		edit    func(v []float32) []float32
		wantErr string // "" = must pass
		maxRel  float64
	}{
		{"identical", func(v []float32) []float32 { return v }, "", 0},
		{"noise within tol", func(v []float32) []float32 {
			for i := range v {
				v[i] += float32(0.5 * tol * scale * math.Sin(float64(i)))
			}
			return v
		}, "", tol},
		{"one top logit off", func(v []float32) []float32 { v[pos.TopIDs[5]] += float32(2 * tol * scale); return v },
			"rank 5", 1},
		{"all logits shifted", func(v []float32) []float32 {
			for i := range v {
				v[i] += float32(2 * tol * scale)
			}
			return v
		}, "sum", 1},
		{"non-top logit off (checksums)", func(v []float32) []float32 {
			for i := range v {
				if i%2 == 0 && v[i] < 0 {
					v[i] *= 1.5
				}
			}
			return v
		}, "sum of squares", 0},
		{"outsider climbs into top-K", func(v []float32) []float32 {
			for i := range v {
				if v[i] < 0 { // far below the top-K
					v[i] = v[pos.TopIDs[0]] - 0.5
					break
				}
			}
			return v
		}, "outside the golden top", 0},
		{"argmax swapped beyond near-tie", func(v []float32) []float32 { v[3] = 12.5; return v }, "argmax 3", 1},
		{"NaN", func(v []float32) []float32 { v[100] = float32(math.NaN()); return v }, "NaN", 1},
		{"too short", func(v []float32) []float32 { return v[:10] }, "golden refers to id", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.edit(append([]float32(nil), ref...))
			rel, err := pos.Compare(v, tol)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Compare: unexpected error %v", err)
				}
				if rel > tc.maxRel {
					t.Errorf("rel err %g > %g", rel, tc.maxRel)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Compare: err = %v (rel %g), want one containing %q", err, rel, tc.wantErr)
			}
		})
	}
}

func TestCompareNearTieArgmax(t *testing.T) {
	v := []float32{1, 5, 5 - 1e-6, 0}
	p := positionOf(v, 2) // argmax 1
	v[2], v[1] = 5, 5-1e-6
	if _, err := p.Compare(v, 1e-4); err != nil {
		t.Errorf("swapped near-tie rejected: %v", err)
	}
}
