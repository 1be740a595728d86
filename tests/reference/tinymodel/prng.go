package tinymodel

// splitMix64 is Steele, Lea and Flood's SplitMix64 generator (the seeding generator of xoshiro). Its output
// sequence is fixed by the constants below, forever.
type splitMix64 struct{ state uint64 }

func (s *splitMix64) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// normal returns an approximately standard-normal value: the Irwin-Hall sum of twelve uniform 32-bit values
// in [0,1), minus 6 (mean 0, variance 1, bounded by ±6). The sum is exact in integers; scaling by 2^-32 and
// subtracting 6 are exact in float64, so the result does not depend on the platform's floating point.
func (s *splitMix64) normal() float64 {
	var sum uint64
	for i := 0; i < 6; i++ {
		v := s.next()
		sum += v & 0xffffffff
		sum += v >> 32
	}
	return float64(sum)*0x1p-32 - 6
}

// fnv64a hashes a tensor name so that each tensor draws from its own stream: adding or reordering tensors
// never changes the values of the others.
func fnv64a(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// tensorRNG returns the generator for one tensor of a model with the given seed.
func tensorRNG(seed uint64, name string) *splitMix64 {
	g := splitMix64{state: seed ^ fnv64a(name)}
	g.next() // decorrelate nearby seeds
	return &g
}
