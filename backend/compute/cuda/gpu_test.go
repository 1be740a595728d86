//go:build cgo

package cuda

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
	"github.com/omnikv-triton/omnikv-triton/kernels"
)

// gpu holds what the kernel tests need on a GPU: the compiled modules and a locked thread with the context.
type gpu struct {
	t    *testing.T
	mods map[string]*Module // by kernel name
	free []DevicePtr
}

// compiledImages keeps the kernels compiled by onGPU for the test process (each test would otherwise compile
// every file again: seconds each on the GPU machine, where the conformance step has a time cap).
var compiledImages = map[string][]byte{}

// onGPU compiles every kernel for the GPU's architecture and loads it; without a GPU the test skips, or fails
// when OMNIKV_REQUIRE_GPU is set (the device script sets it).
func onGPU(t *testing.T, defines ...string) *gpu {
	t.Helper()
	info, err := Probe(0)
	if err != nil {
		if os.Getenv("OMNIKV_REQUIRE_GPU") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	if err := Context(0); err != nil {
		t.Fatal(err)
	}
	n, inc := nvrtcOrSkip(t)
	g := &gpu{t: t, mods: map[string]*Module{}}
	for _, src := range kernels.Sources() {
		key := src.Name + "|" + info.Arch() + "|" + strings.Join(defines, " ")
		img, ok := compiledImages[key]
		if !ok {
			var err error
			if img, err = n.Compile(src.Name, src.Text, CompileOptions{Arch: info.Arch(), Includes: inc, Headers: headers(), Extra: defines}); err != nil {
				t.Fatal(err)
			}
			compiledImages[key] = img
		}
		m, err := LoadModule(img)
		if err != nil {
			t.Fatalf("%s on %v: %v", src.Name, info, err)
		}
		t.Cleanup(func() { m.Unload() })
		for _, k := range kernels.Kernels(src.Text) {
			g.mods[k] = m
		}
	}
	t.Cleanup(func() {
		for _, p := range g.free {
			Free(p)
		}
	})
	return g
}

func (g *gpu) fn(name string) *Function {
	f, err := g.mods[name].Function(name)
	if err != nil {
		g.t.Fatal(err)
	}
	return f
}

func (g *gpu) put(b []byte) DevicePtr {
	p, err := Alloc(max(len(b), 4))
	if err != nil {
		g.t.Fatal(err)
	}
	g.free = append(g.free, p)
	if err := CopyIn(p, b); err != nil {
		g.t.Fatal(err)
	}
	return p
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func i32bytes(v []int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

func f16bytes(v []float32) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], weights.F32ToF16(x))
	}
	return b
}

func (g *gpu) getF32(p DevicePtr, n int) []float32 {
	b := make([]byte, 4*n)
	if err := CopyOut(b, p); err != nil {
		g.t.Fatal(err)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func randF32(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func near(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+math.Abs(float64(want[i]))) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %v, want %v (tolerance %g)", what, i, got[i], want[i], tol)
		}
	}
}

func TestRMSNormOnGPU(t *testing.T) {
	g := onGPU(t)
	r := rand.New(rand.NewPCG(1, 2))
	rows, dim := 3, 576
	x, w := randF32(r, rows*dim), randF32(r, dim)
	want := make([]float32, rows*dim)
	for i := range rows {
		ss := 0.0
		for _, v := range x[i*dim : (i+1)*dim] {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/float64(dim)+1e-5)
		for j := range dim {
			want[i*dim+j] = float32(float64(x[i*dim+j]) * inv * float64(w[j]))
		}
	}
	y := g.put(make([]byte, 4*rows*dim))
	if err := g.fn("rmsnorm_f32").Launch(Dim3{X: rows}, Dim3{X: 256}, g.put(f32bytes(x)), g.put(f32bytes(w)), y, int32(dim), float32(1e-5)); err != nil {
		t.Fatal(err)
	}
	near(t, "rmsnorm", g.getF32(y, rows*dim), want, 1e-5)
}

func TestArgmaxOnGPU(t *testing.T) {
	g := onGPU(t)
	vocab := 49152
	logits := make([]float32, 2*vocab)
	logits[7], logits[40000] = 3, 3 // a tie: the lower id wins
	logits[vocab+12345] = float32(math.NaN())
	logits[vocab+99] = 1
	out := g.put(make([]byte, 8))
	if err := g.fn("argmax_f32").Launch(Dim3{X: 2}, Dim3{X: 1024}, g.put(f32bytes(logits)), out, int32(vocab)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	CopyOut(b, out)
	if a, c := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]); a != 7 || c != 99 {
		t.Fatalf("argmax %d, %d; want 7 (tie to the lower id), 99 (NaN never wins)", a, c)
	}
}

// Paged GQA decode attention split over the context equals a direct softmax(qK)V in float64 over the same
// fp16 rows.
func TestDecodeAttentionOnGPU(t *testing.T) {
	g := onGPU(t)
	const hd = 64 // HEAD_DIM's default
	r := rand.New(rand.NewPCG(3, 4))
	seqs, kvHeads, group, pageTokens, maxBlocks, splits := 2, 3, 3, 16, 20, 3
	heads := kvHeads * group
	ctx := []int32{200, 37}
	slots := maxBlocks * seqs * pageTokens
	k, v := randF32(r, slots*kvHeads*hd), randF32(r, slots*kvHeads*hd)
	for i := range k { // the rows the kernel reads are fp16
		k[i] = weights.F16ToF32(weights.F32ToF16(k[i]))
		v[i] = weights.F16ToF32(weights.F32ToF16(v[i]))
	}
	tables := make([]int32, seqs*maxBlocks) // a shuffled page per block
	perm := r.Perm(seqs * maxBlocks)
	for i := range tables {
		tables[i] = int32(perm[i])
	}
	q := randF32(r, seqs*heads*hd)
	scale := float32(1 / math.Sqrt(hd))
	want := make([]float32, seqs*heads*hd)
	for b := range seqs {
		for h := range heads {
			kh := h / group
			var scores []float64
			mx := math.Inf(-1)
			for tok := range int(ctx[b]) {
				slot := int(tables[b*maxBlocks+tok/pageTokens])*pageTokens + tok%pageTokens
				s := 0.0
				for d := range hd {
					s += float64(q[(b*heads+h)*hd+d]*scale) * float64(k[(slot*kvHeads+kh)*hd+d])
				}
				scores = append(scores, s)
				mx = math.Max(mx, s)
			}
			var z float64
			acc := make([]float64, hd)
			for tok, s := range scores {
				slot := int(tables[b*maxBlocks+tok/pageTokens])*pageTokens + tok%pageTokens
				p := math.Exp(s - mx)
				z += p
				for d := range hd {
					acc[d] += p * float64(v[(slot*kvHeads+kh)*hd+d])
				}
			}
			for d := range hd {
				want[(b*heads+h)*hd+d] = float32(acc[d] / z)
			}
		}
	}
	chunk := (200 + splits - 1) / splits
	pm, pl := g.put(make([]byte, 4*seqs*heads*splits)), g.put(make([]byte, 4*seqs*heads*splits))
	pacc, out := g.put(make([]byte, 4*seqs*heads*splits*hd)), g.put(make([]byte, 4*seqs*heads*hd))
	if err := g.fn("attn_decode_partial").Launch(Dim3{X: seqs, Y: kvHeads, Z: splits}, Dim3{X: 128},
		g.put(f32bytes(q)), g.put(f16bytes(k)), g.put(f16bytes(v)), g.put(i32bytes(tables)), g.put(i32bytes(ctx)),
		pm, pl, pacc, int32(kvHeads), int32(group), int32(pageTokens), int32(maxBlocks), int32(chunk), scale); err != nil {
		t.Fatal(err)
	}
	if err := g.fn("attn_decode_combine").Launch(Dim3{X: seqs, Y: heads}, Dim3{X: 32}, pm, pl, pacc, out, int32(splits)); err != nil {
		t.Fatal(err)
	}
	near(t, "attention", g.getF32(out, seqs*heads*hd), want, 1e-4)
}

// Selected rows gathered from pinned host memory (zero-copy) land in their staging slots.
func TestGatherOnGPU(t *testing.T) {
	g := onGPU(t)
	kvDim, slots, rows := 192, 64, 5
	src, err := AllocPinned(2 * 2 * slots * kvDim)
	if err != nil {
		t.Fatal(err)
	}
	defer FreePinned(src)
	r := rand.New(rand.NewPCG(5, 6))
	vals := randF32(r, 2*slots*kvDim)
	copy(src.Host, f16bytes(vals))
	srcSlots, dstSlots := []int32{3, 60, 7, 7, 0}, []int32{0, 4, 1, 2, 3}
	dk, dv := g.put(make([]byte, 2*8*kvDim)), g.put(make([]byte, 2*8*kvDim))
	if err := g.fn("gather_rows_f16").Launch(Dim3{X: (rows + 3) / 4}, Dim3{X: 128}, src.Dev, src.Dev+DevicePtr(2*slots*kvDim), dk, dv,
		g.put(i32bytes(srcSlots)), g.put(i32bytes(dstSlots)), int32(rows), int32(kvDim)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dst  DevicePtr
		base int
	}{{dk, 0}, {dv, slots * kvDim}} {
		b := make([]byte, 2*8*kvDim)
		CopyOut(b, c.dst)
		for i, s := range srcSlots {
			for d := range kvDim {
				got := binary.LittleEndian.Uint16(b[2*(int(dstSlots[i])*kvDim+d):])
				if want := weights.F32ToF16(vals[c.base+int(s)*kvDim+d]); got != want {
					t.Fatalf("row %d dim %d: %#x, want %#x", i, d, got, want)
				}
			}
		}
	}
}
