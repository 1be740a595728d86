//go:build cgo

package cuda

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// batch is a Batch on the CUDA device: a host copy of the description (launch planning) and the same, as
// one int32 array (kernels/device.cuh BatchView), on the device.
type batch struct {
	d   compute.BatchDesc
	buf scratch
	arr []int32
}

// NewBatch implements compute.Device.
func (d *Device) NewBatch() *compute.Batch { return &compute.Batch{Handle: &batch{}} }

func batchOf(b *compute.Batch) *batch {
	bt, ok := b.Handle.(*batch)
	if !ok || bt == nil {
		panic(fmt.Sprintf("cuda: batch of %d sequences is not a CUDA batch, or was freed", b.Seqs))
	}
	return bt
}

// blocks returns sequence s's page ids (host copy).
func (b *batch) blocks(s int) []int32 { return b.d.Blocks[b.d.BlockOff[s]:b.d.BlockOff[s+1]] }

// check panics when the batch does not fit a store.
func (b *batch) check(what string, st *compute.KVStore) {
	if err := b.d.Check(st.Pages); err != nil {
		panic(fmt.Sprintf("cuda %s: %v", what, err))
	}
}

// SetBatch implements compute.Device.
func (d *Device) SetBatch(b *compute.Batch, desc *compute.BatchDesc) {
	bt := batchOf(b)
	bt.d.QStart = append(bt.d.QStart[:0], desc.QStart...)
	bt.d.QRows = append(bt.d.QRows[:0], desc.QRows...)
	bt.d.Pos0 = append(bt.d.Pos0[:0], desc.Pos0...)
	bt.d.Len = append(bt.d.Len[:0], desc.Len...)
	bt.d.BlockOff = append(bt.d.BlockOff[:0], desc.BlockOff...)
	bt.d.Blocks = append(bt.d.Blocks[:0], desc.Blocks...)
	b.Seqs = desc.Seqs()
	bt.arr = append(append(append(append(append(append(bt.arr[:0], desc.QStart...), desc.QRows...), desc.Pos0...), desc.Len...), desc.BlockOff...), desc.Blocks...)
	if !d.ok() {
		return
	}
	d.waitCopy("SetBatch") // a Gather may still read the previous description
	if d.grow(&bt.buf, 4*max(len(bt.arr), 1), "SetBatch") {
		d.fail(d.api.htod(bt.buf.p, i32b(bt.arr), d.compute, "SetBatch"))
	}
}

// Embed implements compute.Device.
func (d *Device) Embed(out *compute.Tensor, table *compute.Weight, ids []int32) {
	if out.Cols != table.Cols || len(ids) > out.Rows {
		panic(fmt.Sprintf("cuda embed %s: %d ids into (%d, %d), table (%d, %d)", table.Name, len(ids), out.Rows, out.Cols, table.Rows, table.Cols))
	}
	for _, id := range ids {
		if id < 0 || int(id) >= table.Rows {
			panic(fmt.Sprintf("embed %s: id %d outside [0, %d)", table.Name, id, table.Rows))
		}
	}
	if len(ids) == 0 || !d.ok() {
		return
	}
	w := wmem(table)
	a := d.upload(&d.computeArgs, "Embed "+table.Name, i32b(ids))
	if a == nil {
		return
	}
	d.launch("embed_any", [3]int{len(ids), 1, 1}, [3]int{128, 1, 1}, "Embed "+table.Name,
		w.p, a[0], tmem(out), int32(table.Type), int32(table.Cols), int64(w.rowBytes))
}

// mmTokens is the tokens one matmul_any block takes (kernels/matmul_any.cu MM_TOKENS).
const mmTokens = 8

// MatMul implements compute.Device: every weight type by matmul_any (dequantized on the fly; a token's
// result does not depend on the batch), except f16/bf16 weights with at least ltMinTokens tokens, which go
// to cuBLASLt when it is present (blaslt.go).
func (d *Device) MatMul(out, x *compute.Tensor, w *compute.Weight, n int) {
	if x.Cols != w.Cols || out.Cols != w.Rows || n > x.Rows || n > out.Rows || n < 0 {
		panic(fmt.Sprintf("matmul %s: x (%d, %d), out (%d, %d), w (%d, %d), n %d", w.Name, x.Rows, x.Cols, out.Rows, out.Cols, w.Rows, w.Cols, n))
	}
	if n == 0 || !d.ok() || d.matmulLt(out, x, w, n) {
		return
	}
	m := wmem(w)
	d.launch("matmul_any", [3]int{(w.Rows + 3) / 4, (n + mmTokens - 1) / mmTokens, 1}, [3]int{128, 1, 1}, "MatMul "+w.Name,
		m.p, tmem(x), tmem(out), int32(w.Type), int32(w.Rows), int32(w.Cols), int64(m.rowBytes), int32(n))
}

// MatMuls implements compute.Device: one MatMul per weight (queued back to back on the stream).
func (d *Device) MatMuls(outs []*compute.Tensor, x *compute.Tensor, ws []*compute.Weight, n int) {
	if len(outs) != len(ws) {
		panic(fmt.Sprintf("matmuls: %d outputs for %d weights", len(outs), len(ws)))
	}
	for i, w := range ws {
		d.MatMul(outs[i], x, w, n)
	}
}

// vec returns the device address of a float32 vector weight.
func vec(w *compute.Weight, cols int) dptr {
	if w.Type != weights.F32 || w.Rows != 1 || w.Cols != cols {
		panic(fmt.Sprintf("weight %s: want a float32 vector of %d, have %v (%d, %d)", w.Name, cols, w.Type, w.Rows, w.Cols))
	}
	return wmem(w).p
}

// AddBias implements compute.Device.
func (d *Device) AddBias(x *compute.Tensor, b *compute.Weight, n int) {
	p := vec(b, x.Cols)
	if n > 0 && d.ok() {
		d.launch("add_bias_f32", [3]int{n, 1, 1}, [3]int{128, 1, 1}, "AddBias "+b.Name, tmem(x), p, int32(x.Cols))
	}
}

// RMSNorm implements compute.Device.
func (d *Device) RMSNorm(out, x *compute.Tensor, w *compute.Weight, eps float32, n int) {
	p := vec(w, x.Cols)
	if out.Cols != x.Cols || n > x.Rows || n > out.Rows {
		panic(fmt.Sprintf("rmsnorm: x (%d, %d), out (%d, %d), n %d", x.Rows, x.Cols, out.Rows, out.Cols, n))
	}
	if n > 0 && d.ok() {
		d.launch("rmsnorm_f32", [3]int{n, 1, 1}, [3]int{256, 1, 1}, "RMSNorm "+w.Name, tmem(x), p, tmem(out), int32(x.Cols), eps)
	}
}

// ApplyRoPE implements compute.Device.
func (d *Device) ApplyRoPE(x *compute.Tensor, r *compute.RoPE, pos []int32, n int) {
	if x.Cols != r.Heads*r.HeadDim || r.Table.Cols != r.HeadDim || n > x.Rows || n > len(pos) {
		panic(fmt.Sprintf("rope: x (%d, %d), %d heads of %d, table (%d, %d), %d positions, n %d", x.Rows, x.Cols, r.Heads, r.HeadDim, r.Table.Rows, r.Table.Cols, len(pos), n))
	}
	for _, p := range pos[:n] {
		if p < 0 || int(p) >= r.Table.Rows {
			panic(fmt.Sprintf("rope: position %d outside the table's %d", p, r.Table.Rows))
		}
	}
	if n == 0 || !d.ok() {
		return
	}
	a := d.upload(&d.computeArgs, "ApplyRoPE", i32b(pos[:n]))
	if a == nil {
		return
	}
	inter := int32(0)
	if r.Interleaved {
		inter = 1
	}
	block := min(256, (r.HeadDim/2+31)/32*32)
	d.launch("rope_table", [3]int{n, r.Heads, 1}, [3]int{max(block, 32), 1, 1}, "ApplyRoPE", tmem(x), tmem(r.Table), a[0], int32(r.Heads), int32(r.HeadDim), inter)
}

// elems returns the grid of a grid-stride loop over n values.
func elems(n int) [3]int { return [3]int{min((n+255)/256, 4096), 1, 1} }

// SwiGLU implements compute.Device.
func (d *Device) SwiGLU(gate, up *compute.Tensor, n int) {
	if gate.Cols != up.Cols || n > gate.Rows || n > up.Rows {
		panic(fmt.Sprintf("swiglu: gate (%d, %d), up (%d, %d), n %d", gate.Rows, gate.Cols, up.Rows, up.Cols, n))
	}
	if m := n * gate.Cols; m > 0 && d.ok() {
		d.launch("swiglu_inplace_f32", elems(m), [3]int{256, 1, 1}, "SwiGLU", tmem(gate), tmem(up), int64(m))
	}
}

// Add implements compute.Device.
func (d *Device) Add(dst, src *compute.Tensor, n int) {
	if dst.Cols != src.Cols || n > dst.Rows || n > src.Rows {
		panic(fmt.Sprintf("add: dst (%d, %d), src (%d, %d), n %d", dst.Rows, dst.Cols, src.Rows, src.Cols, n))
	}
	if m := n * dst.Cols; m > 0 && d.ok() {
		d.launch("add_f32", elems(m), [3]int{256, 1, 1}, "Add", tmem(src), tmem(dst), int64(m))
	}
}

// CopyRows implements compute.Device.
func (d *Device) CopyRows(dst, src *compute.Tensor, rows []int32) {
	if dst.Cols != src.Cols || len(rows) > dst.Rows {
		panic(fmt.Sprintf("cuda copy rows: %d rows of (%d, %d) into (%d, %d)", len(rows), src.Rows, src.Cols, dst.Rows, dst.Cols))
	}
	for _, r := range rows {
		if r < 0 || int(r) >= src.Rows {
			panic(fmt.Sprintf("cuda copy rows: row %d of %d", r, src.Rows))
		}
	}
	if len(rows) == 0 || !d.ok() {
		return
	}
	a := d.upload(&d.computeArgs, "CopyRows", i32b(rows))
	if a == nil {
		return
	}
	d.launch("copy_rows_f32", [3]int{len(rows), 1, 1}, [3]int{128, 1, 1}, "CopyRows", tmem(src), tmem(dst), a[0], int32(src.Cols))
}
