package synth

import (
	"encoding/binary"
	"math"
	"runtime"
	"sync"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

func sqrt(x float64) float64 { return math.Sqrt(x) }

// rng is SplitMix64: one stream per chunk of a tensor, so that the values depend on the seed, the tensor's
// name and the chunk only, not on how many goroutines fill.
type rng struct{ state uint64 }

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// fnv64a hashes a tensor name into its streams' seeds.
func fnv64a(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// chunkBytes is the work unit of the fill (rounded down to whole blocks of the tensor's type).
const chunkBytes = 1 << 20

// job is one chunk of one tensor.
type job struct {
	t      *weights.Tensor
	sigma  float32
	off, n int // byte range of t.Data, whole blocks
	seed   uint64
}

// fillAll fills every tensor's Data in parallel, chunk by chunk.
func fillAll(ts []*weights.Tensor, specs []tensorSpec, seed uint64) {
	jobs := make(chan job, 256)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				fillChunk(j)
			}
		}()
	}
	for i, t := range ts {
		bs := t.Type.TypeSize()
		step := max(bs, chunkBytes/bs*bs)
		base := seed ^ fnv64a(t.Name)
		for off, k := 0, uint64(0); off < len(t.Data); off, k = off+step, k+1 {
			jobs <- job{t: t, sigma: specs[i].sigma, off: off, n: min(step, len(t.Data)-off), seed: base + k*0xd1342543de82ef95}
		}
	}
	close(jobs)
	wg.Wait()
}

// fillChunk writes random values of standard deviation sigma (a vector: 1 ± 0.5) in the chunk's blocks:
//
//	F32/F16/BF16: uniform in [-√3σ, √3σ)
//	Q8_0: q uniform int8 (sd 73.9), d = σ/73.9
//	Q4_0: nibbles uniform (q-8 has sd 4.61), d = ±σ/4.61 (sign random per block: mean 0)
//	Q4_1: nibbles uniform, d = σ/4.61, m = -7.5d (mean 0)
//	Q4_K: every byte of scales and nibbles uniform (6-bit sc, mn and 4-bit q), dmin = 7.5d so that
//	      d*sc*q - dmin*mn has mean 0 (sd 258d), d = σ/258
func fillChunk(j job) {
	r := &rng{state: j.seed}
	dst := j.t.Data[j.off : j.off+j.n]
	if len(j.t.Shape) == 1 { // a norm weight (F32)
		for i := 0; i+4 <= len(dst); i += 4 {
			u := float32(r.next()>>40) * 0x1p-24
			binary.LittleEndian.PutUint32(dst[i:], math.Float32bits(0.5+u))
		}
		return
	}
	uni := float32(math.Sqrt(3)) * j.sigma * 0x1p-15 // int16 -> [-√3σ, √3σ)
	switch j.t.Type {
	case weights.F32:
		for i := 0; i+4 <= len(dst); i += 4 {
			binary.LittleEndian.PutUint32(dst[i:], math.Float32bits(float32(int16(r.next()))*uni))
		}
	case weights.F16, weights.BF16: // every shape's rows are whole multiples of 32 elements: no tail
		for i := 0; i+8 <= len(dst); i += 8 {
			v := r.next()
			for k := 0; k < 4; k++ {
				x := float32(int16(v>>(16*k))) * uni
				var h uint16
				if j.t.Type == weights.BF16 {
					h = uint16(math.Float32bits(x) >> 16)
				} else {
					h = weights.F32ToF16(x)
				}
				binary.LittleEndian.PutUint16(dst[i+2*k:], h)
			}
		}
	default:
		fillBlocks(r, dst, j.t.Type, j.sigma)
	}
}

// fillBlocks fills quantized blocks: random payload bytes, then the block's scales.
func fillBlocks(r *rng, dst []byte, t weights.DType, sigma float32) {
	for i := 0; i+8 <= len(dst); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], r.next())
	}
	if rem := len(dst) % 8; rem != 0 {
		v := r.next()
		for i := len(dst) - rem; i < len(dst); i++ {
			dst[i], v = byte(v), v>>8
		}
	}
	bs := t.TypeSize()
	put := func(b []byte, x float32) { binary.LittleEndian.PutUint16(b, weights.F32ToF16(x)) }
	for b := 0; b+bs <= len(dst); b += bs {
		blk := dst[b : b+bs]
		switch t {
		case weights.Q8_0:
			put(blk, sigma/73.9)
		case weights.Q4_0: // q-8 has mean -0.5: a random sign of d per block makes the mean 0
			put(blk, sigma/4.61*float32(1-2*int(blk[0]&1)))
		case weights.Q4_1:
			d := sigma / 4.61
			put(blk, d)
			put(blk[2:], -7.5*d)
		case weights.Q4_K:
			d := sigma / 258
			put(blk, d)
			put(blk[2:], 7.5*d)
		}
	}
}
