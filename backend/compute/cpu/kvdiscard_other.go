//go:build !linux

package cpu

// discard does nothing off linux: the pages keep their memory and their contents (madvise's semantics for
// releasing memory differ between systems, and some have no hole punching).
func (*kvStore) discard(kvRange) error { return nil }

// recommit has nothing to do: discard released nothing.
func (*kvStore) recommit(kvRange) error { return nil }
