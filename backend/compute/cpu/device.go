package cpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

func init() {
	compute.Register("cpu", func(ordinal int) (compute.Device, error) {
		if ordinal != 0 {
			return nil, fmt.Errorf("there is one CPU device (cpu or cpu:0), not %d", ordinal)
		}
		return New(), nil
	})
}

// Device is the CPU compute device. The zero value is ready to use. One goroutine at a time may run
// operations on a Device (the engine's scheduler); use one Device per engine. Ops run when called, spread
// over the process's worker pool, so fences are always complete.
type Device struct {
	err    error      // the sticky error (see compute.Device): the CPU device has no asynchronous failures yet
	attn   attnTask   // Attend's reusable task and per-worker scratch
	sel    selectTask // SelectScores's reusable task and logits buffer
	choose chooseTask // Select's reusable task
	gather gatherTask // Gather's reusable task
	swiglu swigluTask // SwiGLU's reusable task
}

// New returns the CPU device.
func New() *Device { return &Device{} }

var _ compute.Device = (*Device)(nil)

// Name implements compute.Device.
func (*Device) Name() string { return "cpu" }

// Err implements compute.Device.
func (d *Device) Err() error { return d.err }

// Sync implements compute.Device: ops have already run.
func (d *Device) Sync() error { return d.err }

// Tensors keep their storage in Handle: a []float32 (F32) or []int32 (I32).

// f32 returns the storage of a float32 tensor.
func f32(t *compute.Tensor) []float32 {
	v, ok := t.Handle.([]float32)
	if !ok {
		panic(fmt.Sprintf("cpu: tensor (%d, %d) of %v is not a CPU float32 tensor", t.Rows, t.Cols, t.DType))
	}
	return v
}

// rowOf returns row i of a float32 tensor.
func rowOf(t *compute.Tensor, i int) []float32 { return f32(t)[i*t.Cols : (i+1)*t.Cols] }

// NewTensor implements compute.Device.
func (*Device) NewTensor(dt compute.DType, rows, cols int) (*compute.Tensor, error) {
	if rows < 0 || cols < 0 {
		return nil, fmt.Errorf("cpu: tensor shape (%d, %d)", rows, cols)
	}
	t := &compute.Tensor{Rows: rows, Cols: cols, DType: dt}
	switch dt {
	case compute.F32:
		t.Handle = make([]float32, rows*cols)
	case compute.I32:
		t.Handle = make([]int32, rows*cols)
	default:
		return nil, fmt.Errorf("cpu: tensor type %v", dt)
	}
	return t, nil
}

// Tensor allocates a float32 tensor; for tests and tools that hold a *Device.
func (d *Device) Tensor(rows, cols int) *compute.Tensor {
	t, err := d.NewTensor(compute.F32, rows, cols)
	if err != nil {
		panic(err)
	}
	return t
}

// Write implements compute.Device.
func (*Device) Write(t *compute.Tensor, row0 int, src []float32) {
	dst := f32(t)
	if len(src)%max(1, t.Cols) != 0 || row0 < 0 || row0*t.Cols+len(src) > len(dst) {
		panic(fmt.Sprintf("cpu write: %d values at row %d of a (%d, %d) tensor", len(src), row0, t.Rows, t.Cols))
	}
	copy(dst[row0*t.Cols:], src)
}

// Read implements compute.Device.
func (*Device) Read(dst []float32, t *compute.Tensor) {
	src := f32(t)
	if len(dst) > len(src) || len(dst)%max(1, t.Cols) != 0 {
		panic(fmt.Sprintf("cpu read: %d values from a (%d, %d) tensor", len(dst), t.Rows, t.Cols))
	}
	copy(dst, src)
}

// weight is a bound weight's storage.
type weight struct {
	data   []byte        // (Rows, RowBytes(Cols)) row-major GGML blocks: the memory-mapped file, or a copy
	packed *packedWeight // the packed copy that matmuls read, or nil
}

// weightOf returns the storage of a weight bound by a CPU device.
func weightOf(w *compute.Weight) *weight {
	s, ok := w.Handle.(*weight)
	if !ok {
		panic(fmt.Sprintf("cpu: weight %s is not bound to a CPU device", w.Name))
	}
	return s
}

// Bind implements compute.Device: the weight keeps pointing at the tensor's bytes (memory-mapped file).
func (*Device) Bind(t *weights.Tensor) (*compute.Weight, error) {
	if _, err := t.CheckData(); err != nil {
		return nil, err
	}
	rows, cols := t.Rows(), t.Cols()
	data := t.Data
	if t.Type == weights.F32 && len(data) > 0 && uintptr(unsafe.Pointer(&data[0]))%4 != 0 {
		data = append(make([]byte, 0, len(data)+4), data...) // a fresh allocation is 8-byte aligned
	}
	s := &weight{data: data}
	w := &compute.Weight{Name: t.Name, Type: t.Type, Rows: rows, Cols: cols, Handle: s}
	if packKernels() && canPack(t.Type, rows, cols) {
		// Matmuls read the packed copy; data stays for row lookups (the embedding), so the file's pages of
		// this tensor are released until such a lookup touches them again.
		p, err := packShared(data, t.Type, rows, cols)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		s.packed = p
		t.DropPages()
	}
	return w, nil
}

// Free implements compute.Device: memory is the garbage collector's; a mapped store is unmapped.
func (*Device) Free(obj any) {
	switch o := obj.(type) {
	case *compute.Tensor:
		o.Handle = nil
	case *compute.Weight:
		o.Handle = nil
	case *compute.KVStore:
		if s, ok := o.Handle.(*kvStore); ok {
			s.free()
		}
		o.Handle, o.Pages = nil, 0
	case *compute.Batch:
		o.Handle = nil
	case *compute.SelState:
		o.Handle = nil
	case nil:
	default:
		panic(fmt.Sprintf("cpu free: %T is not a device object", obj))
	}
}

// Embed implements compute.Device.
func (*Device) Embed(out *compute.Tensor, table *compute.Weight, ids []int32) {
	data := weightOf(table).data
	rb, _ := table.Type.RowBytes(table.Cols)
	for i, id := range ids {
		if id < 0 || int(id) >= table.Rows {
			panic(fmt.Sprintf("embed %s: id %d outside [0, %d)", table.Name, id, table.Rows))
		}
		row := data[int(id)*rb : (int(id)+1)*rb]
		if err := weights.DequantizeRow(table.Type, row, rowOf(out, i)); err != nil {
			panic(fmt.Sprintf("embed %s: %v", table.Name, err))
		}
	}
}

// MatMul implements compute.Device.
func (*Device) MatMul(out, x *compute.Tensor, w *compute.Weight, n int) {
	checkShapes(out, x, w, n)
	s := weightOf(w)
	if s.packed != nil {
		matmulPacked(f32(out)[:n*w.Rows], f32(x)[:n*w.Cols], n, s.packed)
		return
	}
	matmul(f32(out)[:n*w.Rows], f32(x)[:n*w.Cols], n, s.data, w.Type, w.Rows, w.Cols)
}

// checkShapes panics unless out (>= n, w.Rows) = x (>= n, w.Cols) · wᵀ fits.
func checkShapes(out, x *compute.Tensor, w *compute.Weight, n int) {
	if x.Cols != w.Cols || out.Cols != w.Rows || n > x.Rows || n > out.Rows || n < 0 {
		panic(fmt.Sprintf("matmul %s: x (%d, %d), out (%d, %d), w (%d, %d), n %d", w.Name, x.Rows, x.Cols, out.Rows, out.Cols, w.Rows, w.Cols, n))
	}
}

// maxShared is the most weights MatMuls runs as one loop.
const maxShared = 4

// MatMuls implements compute.Device: packed weights run as one parallel loop over all their rows with x
// encoded once (matmulPackedShared); anything else runs weight by weight.
func (d *Device) MatMuls(outs []*compute.Tensor, x *compute.Tensor, ws []*compute.Weight, n int) {
	if len(outs) != len(ws) {
		panic(fmt.Sprintf("matmuls: %d outputs for %d weights", len(outs), len(ws)))
	}
	var ps [maxShared]*packedWeight
	var os [maxShared][]float32
	fuse := n > 0 && len(ws) > 1 && len(ws) <= maxShared
	for i, w := range ws {
		checkShapes(outs[i], x, w, n)
		p := weightOf(w).packed
		if p == nil {
			fuse = false
		}
		if fuse {
			ps[i], os[i] = p, f32(outs[i])[:n*w.Rows]
		}
	}
	if !fuse {
		for i, w := range ws {
			d.MatMul(outs[i], x, w, n)
		}
		return
	}
	matmulPackedShared(os[:len(ws)], f32(x)[:n*x.Cols], n, ps[:len(ws)])
}

// AddBias implements compute.Device.
func (*Device) AddBias(x *compute.Tensor, b *compute.Weight, n int) {
	bias := vector(b)
	for i := 0; i < n; i++ {
		row := rowOf(x, i)
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
	return f32s(weightOf(w).data)
}

// RMSNorm implements compute.Device.
func (*Device) RMSNorm(out, x *compute.Tensor, w *compute.Weight, eps float32, n int) {
	g := vector(w)
	for i := 0; i < n; i++ {
		in, o := rowOf(x, i), rowOf(out, i)
		ss := sumSquaresF64(in)
		r := float32(1 / math.Sqrt(float64(float32(ss/float64(len(in)))+eps)))
		mulScaleF32(o, g, in, r)
	}
}

// ApplyRoPE implements compute.Device.
func (*Device) ApplyRoPE(x *compute.Tensor, r *compute.RoPE, pos []int32, n int) {
	half := r.HeadDim / 2
	for i := 0; i < n; i++ {
		tab := rowOf(r.Table, int(pos[i]))
		cos, sin := tab[:half], tab[half:]
		row := rowOf(x, i)
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
	t.g, t.u = f32(gate)[:n*gate.Cols], f32(up)[:n*up.Cols]
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
	d, s := f32(dst)[:n*dst.Cols], f32(src)[:n*src.Cols]
	for i := range d {
		d[i] += s[i]
	}
}

// CopyRows implements compute.Device.
func (*Device) CopyRows(dst, src *compute.Tensor, rows []int32) {
	if dst.Cols != src.Cols || len(rows) > dst.Rows {
		panic(fmt.Sprintf("cpu copy rows: %d rows of (%d, %d) into (%d, %d)", len(rows), src.Rows, src.Cols, dst.Rows, dst.Cols))
	}
	for i, r := range rows {
		copy(rowOf(dst, i), rowOf(src, int(r)))
	}
}

// f32s views float32 data stored as bytes (little-endian, 4-byte aligned).
func f32s(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}
