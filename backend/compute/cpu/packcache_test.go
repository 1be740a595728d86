package cpu

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
	"weak"
)

// TestPackShared: equal bytes (two copies, as two mappings of one file would be) share one packed weight;
// other bytes of the same shape do not; the entry goes once nothing uses the packed weight.
func TestPackShared(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	var keys []packKey
	for _, typ := range packedTypes {
		a := randWeights(rng, typ, 48, 96)
		a2 := append([]byte(nil), a...)
		b := randWeights(rng, typ, 48, 96)
		pa, err := packShared(a, typ, 48, 96)
		if err != nil {
			t.Fatal(err)
		}
		pa2, _ := packShared(a2, typ, 48, 96)
		pb, _ := packShared(b, typ, 48, 96)
		if pa != pa2 {
			t.Errorf("%v: equal bytes packed twice", typ)
		}
		if pb == pa {
			t.Errorf("%v: different bytes share a packed weight", typ)
		}
		if !pa.matches(a) || pa.matches(b) {
			t.Errorf("%v: matches(own) %v, matches(other) %v", typ, pa.matches(a), pa.matches(b))
		}
		if _, err := packShared(a[:10], typ, 48, 96); err == nil {
			t.Errorf("%v: short weight accepted", typ)
		}
		// A key collision, forced: the bytes are compared, so the other weight's entry is not reused.
		packCache.Lock()
		packCache.m[packKeyOf(b, typ, 48, 96)] = weak.Make(pa)
		packCache.Unlock()
		if pc, _ := packShared(b, typ, 48, 96); pc == pa || !pc.matches(b) {
			t.Errorf("%v: a colliding entry was reused", typ)
		}
		runtime.KeepAlive(pb)
		keys = append(keys, packKeyOf(a, typ, 48, 96), packKeyOf(b, typ, 48, 96))
	}

	// Dropped: the cleanup removes the entries.
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		n := 0
		packCache.Lock()
		for _, k := range keys {
			if _, ok := packCache.m[k]; ok {
				n++
			}
		}
		packCache.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d packed weights still cached after their last use", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
