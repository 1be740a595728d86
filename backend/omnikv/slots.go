package omnikv

import "slices"

// Slots keeps the staging slots of one selection: which context token each of Cap slots holds. Update
// moves to a new selection, keeping every token that stays selected where it is, so that only newly selected
// rows are fetched from the offload tier.
type Slots struct {
	tok   []int32 // (cap) token in each slot, -1 when empty
	byTok []int32 // (cap) slots in use, ordered by their token
	// Scratch for Update, reused.
	fetchRows, fetchSlots, used, free, next []int32
}

// Reset empties the slots and sets their number.
func (s *Slots) Reset(capacity int) {
	s.tok = slices.Grow(s.tok[:0], capacity)[:capacity]
	for i := range s.tok {
		s.tok[i] = -1
	}
	s.byTok = s.byTok[:0]
}

// Cap returns the number of slots.
func (s *Slots) Cap() int { return len(s.tok) }

// Update installs sel (ascending token indices, len(sel) <= Cap) and returns the rows to fetch with the
// slot each goes to, and the slots now in use (ascending). The returned slices are valid until the next call.
func (s *Slots) Update(sel []int32) (rows, slots, used []int32) {
	s.fetchRows, s.fetchSlots, s.free, s.next = s.fetchRows[:0], s.fetchSlots[:0], s.free[:0], s.next[:0]
	// Merge the old (by token) and new selections, both ascending by token.
	i, j := 0, 0
	for i < len(s.byTok) || j < len(sel) {
		switch {
		case j == len(sel) || (i < len(s.byTok) && s.tok[s.byTok[i]] < sel[j]):
			s.free = append(s.free, s.byTok[i]) // no longer selected
			i++
		case i == len(s.byTok) || sel[j] < s.tok[s.byTok[i]]:
			s.fetchRows = append(s.fetchRows, sel[j]) // newly selected
			j++
		default: // kept
			s.next = append(s.next, s.byTok[i])
			i++
			j++
		}
	}
	// Newly selected rows take freed slots, then never-used ones.
	for _, slot := range s.free {
		s.tok[slot] = -1
	}
	nextEmpty := 0
	for _, r := range s.fetchRows {
		var slot int32
		if k := len(s.free); k > 0 {
			slot, s.free = s.free[k-1], s.free[:k-1]
		} else {
			for s.tok[nextEmpty] != -1 {
				nextEmpty++
			}
			slot = int32(nextEmpty)
		}
		s.tok[slot] = r
		s.fetchSlots = append(s.fetchSlots, slot)
		s.next = append(s.next, slot)
	}
	s.byTok = append(s.byTok[:0], s.next...)
	slices.SortFunc(s.byTok, func(a, b int32) int { return int(s.tok[a]) - int(s.tok[b]) })
	s.used = append(s.used[:0], s.byTok...)
	slices.Sort(s.used)
	return s.fetchRows, s.fetchSlots, s.used
}

// Token returns the token in a slot (-1 when empty).
func (s *Slots) Token(slot int) int32 { return s.tok[slot] }
