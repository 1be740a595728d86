package cpu

import (
	"fmt"
	"slices"
	"sort"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// kvRange is bytes [lo, hi) of a chunk's memory: one layer's keys (or values) of a run of pages, or several
// such runs that lie end to end.
type kvRange struct {
	c      *kvChunk
	lo, hi int
}

// ranges returns the byte ranges that pages cover in every layer, merged where they touch, in address order
// within each chunk. Page ids outside the store are a programming error.
func (st *kvStore) ranges(s *compute.KVStore, pages []int32) []kvRange {
	ids := slices.Clone(pages)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > 0 && (ids[0] < 0 || int(ids[len(ids)-1]) >= s.Pages) {
		panic(fmt.Sprintf("cpu: KV pages %d..%d outside the store's %d", ids[0], ids[len(ids)-1], s.Pages))
	}
	half := st.half * st.spec.DType.Bytes() // bytes of one layer's keys of one page
	var out []kvRange
	for len(ids) > 0 {
		ci := sort.Search(len(st.chunks), func(i int) bool { return st.chunks[i].first > int(ids[0]) }) - 1
		c := &st.chunks[ci]
		// The run of consecutive ids that starts at ids[0] and stays in the chunk.
		n := 1
		for n < len(ids) && ids[n] == ids[n-1]+1 && int(ids[n]) < c.first+c.pages {
			n++
		}
		i0, i1 := int(ids[0])-c.first, int(ids[n-1])+1-c.first
		ids = ids[n:]
		if c.mem == nil {
			continue
		}
		for j := 0; j < 2*st.layers; j++ { // layer j/2's keys (j even) or values
			lo, hi := (j*c.pages+i0)*half, (j*c.pages+i1)*half
			if k := len(out) - 1; k >= 0 && out[k].c == c && out[k].hi == lo {
				out[k].hi = hi
				continue
			}
			out = append(out, kvRange{c: c, lo: lo, hi: hi})
		}
	}
	return out
}

// DiscardKVPages implements compute.Device (see kvdiscard_linux.go for what it does to memory).
func (*Device) DiscardKVPages(s *compute.KVStore, pages []int32) error {
	st := storeOf(s)
	for _, r := range st.ranges(s, pages) {
		if err := st.discard(r); err != nil {
			return fmt.Errorf("cpu: discard KV pages of a %v store: %w", s.Tier, err)
		}
	}
	return nil
}

// RecommitKVPages implements compute.Device.
func (*Device) RecommitKVPages(s *compute.KVStore, pages []int32) error {
	st := storeOf(s)
	if st.file == nil {
		return nil // RAM is faulted in on first write
	}
	for _, r := range st.ranges(s, pages) {
		if err := st.recommit(r); err != nil {
			return fmt.Errorf("cpu: recommit KV pages of a %v store: %w", s.Tier, err)
		}
	}
	return nil
}
