//go:build cgo

package cuda

import (
	"fmt"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// Device is the CUDA compute device (compute.Device) on one GPU. Ops are queued on a compute stream in
// call order; Gather runs on a second (copy) stream and returns an event fence that Wait makes the compute
// stream wait on. Device failures are sticky (Err, Sync); after one, ops do nothing. One goroutine at a time
// uses a Device (the engine's scheduler), as the seam requires; each driver call makes the GPU's primary
// context current on the calling thread (stream.go), so no goroutine is locked to an OS thread.
//
// Nothing here has run on a GPU yet: it is compile-checked (cgo build, NVRTC compile of every kernel) and
// its conformance test (computetest.Run) skips without a GPU.
type Device struct {
	api     gpuAPI
	drv     *drv // the driver (nil when emulated)
	info    Info
	ks      *kernelSet
	pool    *pool
	compute stream // every op
	copy    stream // Gather
	err     error

	computeArgs, copyArgs argBuf // per-op metadata uploads, one buffer per stream (reuse is stream-ordered)

	copyEv      event // recorded on the copy stream after each Gather
	copyPending bool  // a Gather was queued since the compute stream last waited for the copy stream
	computeEv   event // recorded on the compute stream before a Gather
	freeEvents  []event
	liveFences  []event // fences handed out since the last Sync

	moved     dptr     // (2) u64 on the device: rows and bytes moved by Gather (Stats)
	movedBase [2]int64 // their values at the last ResetStats
	stats     Stats    // host-side counters
	waits     []event  // timed event pairs around fence waits, not yet read
	timedFree []event
	parts     scratch // attention partial results
	logits    scratch // SelectScores' logits
	ids       scratch // Sample's output ids
	closing   bool
	lt        *lt    // cuBLASLt, or nil
	blas      string // what f16/bf16 prefill matmuls use, and why
}

var _ compute.Device = (*Device)(nil)

// scratch is a device buffer reused by one op (stream-ordered), grown when too small.
type scratch struct {
	p    dptr
	size int
}

// argBuf is a device buffer that per-op host metadata is uploaded into, on one stream.
type argBuf struct {
	s    stream
	buf  scratch
	host []byte
}

// Open opens GPU ordinal as a compute device: the driver (libcuda.so.1), the GPU, NVRTC (kernels compiled
// for the GPU's own architecture, cached on disk) and the streams. The error names what is missing.
func Open(ordinal int) (*Device, error) {
	info, err := Probe(ordinal)
	if err != nil {
		return nil, err
	}
	dr, err := newDrv(ordinal)
	if err != nil {
		return nil, err
	}
	ks, err := loadKernels(dr, info.Arch())
	if err != nil {
		dr.close()
		return nil, fmt.Errorf("cuda: open %v: %w", info, err)
	}
	d := &Device{api: &realAPI{drv: dr, ks: ks}, drv: dr, info: info, ks: ks}
	d.lt, d.blas = openLt(dr)
	if err := d.init(); err != nil {
		d.Close()
		return nil, fmt.Errorf("cuda: open %v: %w", info, err)
	}
	return d, nil
}

// init makes the pool, the streams, the events and the statistics counters.
func (d *Device) init() error {
	var err error
	d.pool = newPool(d.api, d.syncStreams)
	if d.compute, err = d.api.newStream("compute stream"); err != nil {
		return err
	}
	if d.copy, err = d.api.newStream("copy stream"); err != nil {
		return err
	}
	d.computeArgs.s, d.copyArgs.s = d.compute, d.copy
	if d.copyEv, err = d.api.newEvent(false, "copy event"); err != nil {
		return err
	}
	if d.computeEv, err = d.api.newEvent(false, "compute event"); err != nil {
		return err
	}
	if d.moved, err = d.pool.get(16, "statistics counters"); err != nil {
		return err
	}
	d.fail(d.memset0(d.moved, 16, d.compute, "statistics counters"))
	return d.Sync()
}

// memset0 queues zeroing n bytes at p on s.
func (d *Device) memset0(p dptr, n int, s stream, op string) error {
	return d.api.memset(p, 0, n, s, op)
}

// Info describes the device's GPU.
func (d *Device) Info() Info { return d.info }

// BLAS says what f16/bf16 matmuls of many tokens (prefill) use: cuBLASLt, or why not.
func (d *Device) BLAS() string { return d.blas }

// Close waits for the streams and releases everything the device holds.
func (d *Device) Close() {
	if d.closing {
		return
	}
	d.closing = true
	d.syncStreams()
	if d.ks != nil {
		d.ks.unload(d.drv)
	}
	if d.lt != nil {
		d.lt.close(d)
	}
	if d.pool != nil {
		d.pool.close()
	}
	for _, e := range append(append(append(append(d.freeEvents, d.liveFences...), d.waits...), d.timedFree...), d.copyEv, d.computeEv) {
		if e != (event{}) {
			d.api.destroyEvent(e)
		}
	}
	for _, s := range []stream{d.compute, d.copy} {
		if s != (stream{}) {
			d.api.destroyStream(s)
		}
	}
	d.api.close()
}

// Name implements compute.Device.
func (d *Device) Name() string { return fmt.Sprintf("cuda:%d", d.info.Ordinal) }

// Err implements compute.Device.
func (d *Device) Err() error { return d.err }

// fail records the first device failure.
func (d *Device) fail(err error) {
	if err != nil && d.err == nil {
		d.err = err
	}
}

// ok reports whether ops may run (no failure yet).
func (d *Device) ok() bool { return d.err == nil }

// syncStreams waits for both streams.
func (d *Device) syncStreams() error {
	if err := d.api.syncStream(d.copy, "sync copy stream"); err != nil {
		return err
	}
	return d.api.syncStream(d.compute, "sync compute stream")
}

// Sync implements compute.Device: waits for every queued op; fences handed out are complete after it.
func (d *Device) Sync() error {
	d.fail(d.syncStreams())
	d.freeEvents = append(d.freeEvents, d.liveFences...)
	d.liveFences = d.liveFences[:0]
	d.copyPending = false
	return d.err
}

// waitCopy makes the compute stream wait for the Gathers queued so far: before an op overwrites or frees
// memory that a Gather may still read (batches, selection lists) or write (staging).
func (d *Device) waitCopy(op string) {
	if d.copyPending && d.ok() {
		d.fail(d.api.wait(d.compute, d.copyEv, op+": wait for the copy stream"))
		d.copyPending = false
	}
}

// grow makes sc hold at least n bytes (old contents lost).
func (d *Device) grow(sc *scratch, n int, op string) bool {
	if sc.size >= n {
		return true
	}
	d.waitCopy(op)
	d.pool.put(sc.p)
	p, err := d.pool.get(n, op)
	if err != nil {
		d.fail(err)
		sc.p, sc.size = 0, 0
		return false
	}
	sc.p, sc.size = p, class(n)
	return true
}

// upload copies parts of host metadata into ab's device buffer (each at a 256-byte aligned offset) on ab's
// stream and returns their device addresses.
func (d *Device) upload(ab *argBuf, op string, parts ...[]byte) []dptr {
	ab.host = ab.host[:0]
	offs := make([]int, len(parts))
	for i, p := range parts {
		for len(ab.host)%256 != 0 {
			ab.host = append(ab.host, 0)
		}
		offs[i] = len(ab.host)
		ab.host = append(ab.host, p...)
	}
	if ab.buf.size < len(ab.host) {
		// The old buffer may still be read by queued kernels of this stream: wait for them first.
		if ab.buf.p != 0 {
			d.fail(d.api.syncStream(ab.s, op+": grow argument buffer"))
			d.pool.put(ab.buf.p)
			ab.buf = scratch{}
		}
		p, err := d.pool.get(max(len(ab.host), 64<<10), op+": argument buffer")
		if err != nil {
			d.fail(err)
			return nil
		}
		ab.buf = scratch{p: p, size: class(max(len(ab.host), 64<<10))}
	}
	if err := d.api.htod(ab.buf.p, ab.host, ab.s, op+": upload arguments"); err != nil {
		d.fail(err)
		return nil
	}
	out := make([]dptr, len(parts))
	for i := range parts {
		out[i] = ab.buf.p + dptr(offs[i])
	}
	return out
}

// launch queues a kernel on the compute stream.
func (d *Device) launch(name string, grid, block [3]int, op string, args ...any) {
	if !d.ok() {
		return
	}
	d.fail(d.api.run(name, grid, block, d.compute, op, args...))
}

// Views of host slices as bytes.
func i32b(v []int32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

func f32b(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

func u64b(v []uint64) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 8*len(v))
}

// tensorMem is a tensor's storage: (Rows, Cols) of 4-byte elements.
type tensorMem struct{ p dptr }

func tmem(t *compute.Tensor) dptr {
	m, ok := t.Handle.(*tensorMem)
	if !ok || m == nil {
		panic(fmt.Sprintf("cuda: tensor (%d, %d) of %v is not a CUDA tensor, or was freed", t.Rows, t.Cols, t.DType))
	}
	return m.p
}

// NewTensor implements compute.Device.
func (d *Device) NewTensor(dt compute.DType, rows, cols int) (*compute.Tensor, error) {
	if rows < 0 || cols < 0 || (dt != compute.F32 && dt != compute.I32) {
		return nil, fmt.Errorf("cuda: tensor of %v, shape (%d, %d)", dt, rows, cols)
	}
	n := 4 * rows * cols
	p, err := d.pool.get(n, fmt.Sprintf("tensor (%d, %d)", rows, cols))
	if err != nil {
		return nil, err
	}
	if err := d.memset0(p, n, d.compute, "zero a new tensor"); err != nil {
		d.pool.put(p)
		return nil, err
	}
	return &compute.Tensor{Rows: rows, Cols: cols, DType: dt, Handle: &tensorMem{p: p}}, nil
}

// Write implements compute.Device.
func (d *Device) Write(t *compute.Tensor, row0 int, src []float32) {
	if t.DType != compute.F32 || len(src)%max(1, t.Cols) != 0 || row0 < 0 || row0*t.Cols+len(src) > t.Rows*t.Cols {
		panic(fmt.Sprintf("cuda write: %d values at row %d of a (%d, %d) %v tensor", len(src), row0, t.Rows, t.Cols, t.DType))
	}
	if d.ok() {
		d.fail(d.api.htod(tmem(t)+dptr(4*row0*t.Cols), f32b(src), d.compute, "Write"))
	}
}

// Read implements compute.Device: after the ops queued before it; a failed device leaves dst unchanged.
func (d *Device) Read(dst []float32, t *compute.Tensor) {
	if len(dst) > t.Rows*t.Cols || len(dst)%max(1, t.Cols) != 0 {
		panic(fmt.Sprintf("cuda read: %d values from a (%d, %d) tensor", len(dst), t.Rows, t.Cols))
	}
	if d.ok() {
		d.fail(d.api.dtoh(f32b(dst), tmem(t), d.compute, "Read"))
		d.fail(d.api.syncStream(d.compute, "Read"))
	}
}

// weightMem is a bound weight: its bytes in the stored type, (Rows, rowBytes).
type weightMem struct {
	p        dptr
	rowBytes int
}

func wmem(w *compute.Weight) *weightMem {
	m, ok := w.Handle.(*weightMem)
	if !ok || m == nil {
		panic(fmt.Sprintf("cuda: weight %s is not bound to a CUDA device, or was freed", w.Name))
	}
	return m
}

// Bind implements compute.Device: the weight's bytes are copied to device memory as stored (quantized
// blocks stay quantized; kernels dequantize on the fly).
func (d *Device) Bind(t *weights.Tensor) (*compute.Weight, error) {
	rb, err := t.CheckData()
	if err != nil {
		return nil, err
	}
	rows, cols := t.Rows(), t.Cols()
	p, err := d.pool.get(len(t.Data), "bind "+t.Name)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if err := d.api.htod(p, t.Data, d.compute, "bind "+t.Name); err != nil {
		d.pool.put(p)
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	// The copy reads the (memory-mapped) bytes asynchronously after staging: wait so that the caller may
	// drop the mapping's pages.
	if err := d.api.syncStream(d.compute, "bind "+t.Name); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return &compute.Weight{Name: t.Name, Type: t.Type, Rows: rows, Cols: cols, Handle: &weightMem{p: p, rowBytes: rb}}, nil
}

// Free implements compute.Device. Memory goes back to the pool after the copy stream is done with it.
func (d *Device) Free(obj any) {
	d.waitCopy("Free")
	switch o := obj.(type) {
	case *compute.Tensor:
		if m, ok := o.Handle.(*tensorMem); ok && m != nil {
			d.pool.put(m.p)
		}
		o.Handle = nil
	case *compute.Weight:
		if m, ok := o.Handle.(*weightMem); ok && m != nil {
			d.pool.put(m.p)
		}
		o.Handle = nil
	case *compute.KVStore:
		if s, ok := o.Handle.(*kvStore); ok && s != nil {
			d.freeStore(s)
		}
		o.Handle, o.Pages = nil, 0
	case *compute.Batch:
		if b, ok := o.Handle.(*batch); ok && b != nil {
			d.pool.put(b.buf.p)
		}
		o.Handle = nil
	case *compute.SelState:
		if s, ok := o.Handle.(*selState); ok && s != nil {
			s.free(d)
		}
		o.Handle = nil
	case nil:
	default:
		panic(fmt.Sprintf("cuda free: %T is not a device object", obj))
	}
}
