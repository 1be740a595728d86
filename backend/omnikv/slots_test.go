package omnikv

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSlotsKeepRowsAndFetchOnlyNewOnes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const capacity, n = 16, 60
	var s Slots
	s.Reset(capacity)
	var prev []int32
	for step := 0; step < 300; step++ {
		k := 1 + r.IntN(capacity)
		perm := r.Perm(n)[:k]
		sel := make([]int32, k)
		for i, p := range perm {
			sel[i] = int32(p)
		}
		slices.Sort(sel)
		before := make(map[int32]int32) // token -> slot
		for slot := 0; slot < capacity; slot++ {
			if tok := s.Token(slot); tok >= 0 {
				before[tok] = int32(slot)
			}
		}
		rows, slots, used := s.Update(sel)
		// Exactly the newly selected rows are fetched.
		var want []int32
		for _, tok := range sel {
			if !slices.Contains(prev, tok) {
				want = append(want, tok)
			}
		}
		if !slices.Equal(rows, want) {
			t.Fatalf("step %d: fetched %v, want %v", step, rows, want)
		}
		// Slots hold exactly the selection; kept tokens did not move; fetched ones land where reported.
		var held []int32
		for _, slot := range used {
			held = append(held, s.Token(int(slot)))
		}
		slices.Sort(held)
		if !slices.Equal(held, sel) || len(used) != k || !slices.IsSorted(used) {
			t.Fatalf("step %d: slots %v hold %v, want %v", step, used, held, sel)
		}
		for tok, slot := range before {
			if slices.Contains(sel, tok) && s.Token(int(slot)) != tok {
				t.Fatalf("step %d: token %d moved out of slot %d", step, tok, slot)
			}
		}
		for i, slot := range slots {
			if s.Token(int(slot)) != rows[i] {
				t.Fatalf("step %d: fetched row %d reported in slot %d holding %d", step, rows[i], slot, s.Token(int(slot)))
			}
		}
		prev = sel
	}
}
