package cpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Device is the CPU compute device. The zero value is ready to use. One goroutine at a time may run
// operations on a Device (the engine's scheduler); use one Device per engine.
type Device struct {
	attn   attnTask   // Attend's reusable task and per-worker scratch
	sel    selectTask // SelectScores's reusable task and logits buffer
	gather gatherTask // GatherKV's reusable task
	swiglu swigluTask // SwiGLU's reusable task
}

// New returns the CPU device.
func New() *Device { return &Device{} }

var _ compute.Device = (*Device)(nil)

// Name implements compute.Device.
func (*Device) Name() string { return "cpu" }

// NewTensor implements compute.Device.
func (*Device) NewTensor(rows, cols int) *compute.Tensor {
	return &compute.Tensor{Rows: rows, Cols: cols, F32: make([]float32, rows*cols)}
}

// Upload implements compute.Device.
func (d *Device) Upload(rows, cols int, data []float32) *compute.Tensor {
	t := d.NewTensor(rows, cols)
	copy(t.F32, data)
	return t
}

// Bind implements compute.Device: the weight keeps pointing at the tensor's bytes (memory-mapped file).
func (*Device) Bind(t *weights.Tensor) (*compute.Weight, error) {
	if !t.Type.Known() {
		return nil, fmt.Errorf("tensor %s: unsupported type %v", t.Name, t.Type)
	}
	rows, cols := t.Rows(), t.Cols()
	rb, err := t.Type.RowBytes(cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if len(t.Data) != rows*rb {
		return nil, fmt.Errorf("tensor %s: %d bytes of data, want %d for shape %v of %v", t.Name, len(t.Data), rows*rb, t.Shape, t.Type)
	}
	data := t.Data
	if t.Type == weights.F32 && len(data) > 0 && uintptr(unsafe.Pointer(&data[0]))%4 != 0 {
		data = append(make([]byte, 0, len(data)+4), data...) // a fresh allocation is 8-byte aligned
	}
	w := &compute.Weight{Name: t.Name, Type: t.Type, Rows: rows, Cols: cols, Data: data}
	if packKernels() && canPack(t.Type, rows, cols) {
		// Matmuls read the packed copy (Handle); Data stays for row lookups (the embedding), so the
		// file's pages of this tensor are released until such a lookup touches them again.
		p, err := packShared(data, t.Type, rows, cols)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		w.Handle = p
		t.DropPages()
	}
	return w, nil
}

// NewKVPage implements compute.Device.
func (*Device) NewKVPage(page, kvDim int, dt compute.KVDType) *compute.KVPage {
	if dt == compute.KVF32 {
		return &compute.KVPage{K32: make([]float32, page*kvDim), V32: make([]float32, page*kvDim)}
	}
	return &compute.KVPage{K16: make([]uint16, page*kvDim), V16: make([]uint16, page*kvDim)}
}

// Read implements compute.Device.
func (*Device) Read(dst []float32, t *compute.Tensor, i int) { copy(dst, t.Row(i)) }

// Embed implements compute.Device.
func (*Device) Embed(out *compute.Tensor, table *compute.Weight, ids []int32) {
	rb, _ := table.Type.RowBytes(table.Cols)
	for i, id := range ids {
		row := table.Data[int(id)*rb : (int(id)+1)*rb]
		if err := weights.DequantizeRow(table.Type, row, out.Row(i)); err != nil {
			panic(fmt.Sprintf("embed %s: %v", table.Name, err))
		}
	}
}

// MatMul implements compute.Device.
func (*Device) MatMul(out, x *compute.Tensor, w *compute.Weight, n int) {
	checkShapes(out, x, w, n)
	if p, ok := w.Handle.(*packedWeight); ok {
		matmulPacked(out.F32[:n*w.Rows], x.F32[:n*w.Cols], n, p)
		return
	}
	matmul(out.F32[:n*w.Rows], x.F32[:n*w.Cols], n, w.Data, w.Type, w.Rows, w.Cols)
}

// checkShapes panics unless out (>= n, w.Rows) = x (>= n, w.Cols) · wᵀ fits.
func checkShapes(out, x *compute.Tensor, w *compute.Weight, n int) {
	if x.Cols != w.Cols || out.Cols != w.Rows || n > x.Rows || n > out.Rows {
		panic(fmt.Sprintf("matmul %s: x (%d, %d), out (%d, %d), w (%d, %d), n %d", w.Name, x.Rows, x.Cols, out.Rows, out.Cols, w.Rows, w.Cols, n))
	}
}

// maxShared is the most weights MatMuls runs as one loop.
const maxShared = 4

// MatMuls implements compute.Device: packed weights in a decode (n < 3) run as one parallel loop over all
// their rows with x encoded once (matmulPackedShared); anything else runs weight by weight.
func (d *Device) MatMuls(outs []*compute.Tensor, x *compute.Tensor, ws []*compute.Weight, n int) {
	if len(outs) != len(ws) {
		panic(fmt.Sprintf("matmuls: %d outputs for %d weights", len(outs), len(ws)))
	}
	var ps [maxShared]*packedWeight
	var os [maxShared][]float32
	fuse := n > 0 && len(ws) > 1 && len(ws) <= maxShared
	for i, w := range ws {
		checkShapes(outs[i], x, w, n)
		p, ok := w.Handle.(*packedWeight)
		if !ok || n >= prefillMinTokens(p.typ) {
			fuse = false
		}
		if fuse {
			ps[i], os[i] = p, outs[i].F32[:n*w.Rows]
		}
	}
	if !fuse {
		for i, w := range ws {
			d.MatMul(outs[i], x, w, n)
		}
		return
	}
	matmulPackedShared(os[:len(ws)], x.F32[:n*x.Cols], n, ps[:len(ws)])
}

// AddBias implements compute.Device.
func (*Device) AddBias(x *compute.Tensor, b *compute.Weight, n int) {
	bias := vector(b)
	for i := 0; i < n; i++ {
		row := x.Row(i)
		for j := range row {
			row[j] += bias[j]
		}
	}
}

// vector returns the float32 values of a float32 vector weight (norm weights, biases).
func vector(w *compute.Weight) []float32 {
	if w.Type != weights.F32 || w.Rows != 1 {
		panic(fmt.Sprintf("weight %s: want a float32 vector, have %v (%d, %d)", w.Name, w.Type, w.Rows, w.Cols))
	}
	return f32s(w.Data)
}

// RMSNorm implements compute.Device.
func (*Device) RMSNorm(out, x *compute.Tensor, w *compute.Weight, eps float32, n int) {
	g := vector(w)
	for i := 0; i < n; i++ {
		in, o := x.Row(i), out.Row(i)
		ss := sumSquaresF64(in)
		r := float32(1 / math.Sqrt(float64(float32(ss/float64(len(in)))+eps)))
		mulScaleF32(o, g, in, r)
	}
}

// ApplyRoPE implements compute.Device.
func (*Device) ApplyRoPE(x *compute.Tensor, r *compute.RoPE, pos []int32, n int) {
	half := r.HeadDim / 2
	for i := 0; i < n; i++ {
		tab := r.Table.Row(int(pos[i]))
		cos, sin := tab[:half], tab[half:]
		row := x.Row(i)
		for h := 0; h < r.Heads; h++ {
			v := row[h*r.HeadDim : (h+1)*r.HeadDim]
			if r.Interleaved {
				for j := 0; j < half; j++ {
					a, b := v[2*j], v[2*j+1]
					v[2*j] = a*cos[j] - b*sin[j]
					v[2*j+1] = b*cos[j] + a*sin[j]
				}
			} else {
				ropeHalf(v, cos, sin)
			}
		}
	}
}

// SwiGLU implements compute.Device: gate = silu(gate) * up, in chunks of swigluChunk values spread over
// the worker pool.
func (d *Device) SwiGLU(gate, up *compute.Tensor, n int) {
	t := &d.swiglu
	t.g, t.u = gate.F32[:n*gate.Cols], up.F32[:n*up.Cols]
	parallelFor((len(t.g)+swigluChunk-1)/swigluChunk, t)
	t.g, t.u = nil, nil
}

const swigluChunk = 256

// swigluTask is SwiGLU's reusable loop body over chunks of swigluChunk values.
type swigluTask struct{ g, u []float32 }

func (t *swigluTask) run(lo, hi int) {
	var e [swigluChunk]float32 // e^-g for one chunk, through the vectorized expF32 (within 2 ulp)
	for c := lo; c < hi; c++ {
		gc := t.g[c*swigluChunk : min((c+1)*swigluChunk, len(t.g))]
		uc, ec := t.u[c*swigluChunk:c*swigluChunk+len(gc)], e[:len(gc)]
		for k, v := range gc {
			ec[k] = -v
		}
		expF32(ec)
		for k, v := range gc {
			gc[k] = v / (1 + ec[k]) * uc[k]
		}
	}
}

// Add implements compute.Device.
func (*Device) Add(dst, src *compute.Tensor, n int) {
	d, s := dst.F32[:n*dst.Cols], src.F32[:n*src.Cols]
	for i := range d {
		d[i] += s[i]
	}
}

// WriteKV implements compute.Device.
func (*Device) WriteKV(pages []*compute.KVPage, page int, start int, k, v *compute.Tensor, row0, n int) {
	kvDim := k.Cols
	for i := 0; i < n; i++ {
		t := start + i
		p, off := pages[t/page], (t%page)*kvDim
		kr, vr := k.Row(row0+i), v.Row(row0+i)
		if p.K32 != nil {
			copy(p.K32[off:off+kvDim], kr)
			copy(p.V32[off:off+kvDim], vr)
			continue
		}
		cvtF32ToF16(p.K16[off:off+kvDim], kr)
		cvtF32ToF16(p.V16[off:off+kvDim], vr)
	}
}

// f32s views float32 data stored as bytes (little-endian, 4-byte aligned).
func f32s(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// CopyRow implements compute.Device.
func (*Device) CopyRow(dst *compute.Tensor, di int, src *compute.Tensor, si int) {
	copy(dst.Row(di), src.Row(si))
}
