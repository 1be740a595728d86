//go:build cgo

package cuda

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

// attnSplit is the visible tokens one warp of attn_paged_partial takes; a sequence's splits depend on its
// own length only (never on the batch), which keeps its outputs bit-identical in any batch.
const attnSplit = 512

// attnSplitRows is the most query rows a sequence may have for its rows to be split over the context
// (decode and small chunks; a long prefill has parallelism enough and its partial results would be large).
const attnSplitRows = 8

// maxHeadDim is the largest head dimension the attention kernels hold (kernels/attn_paged.cu).
const maxHeadDim = 256

// Attend implements compute.Device: one launch for every (sequence, query row, head, split), one to merge
// the splits, and one for the fused head max of the sequences that want it.
func (d *Device) Attend(a *compute.Attention) {
	bt := batchOf(a.Batch)
	bt.check("attend", a.Store)
	st := storeOf(a.Store)
	if a.Heads%a.KVHeads != 0 || a.KVHeads*a.HeadDim != st.spec.KVDim || a.Q.Cols != a.Heads*a.HeadDim || a.Out.Cols != a.Q.Cols ||
		a.Layer < 0 || a.Layer >= st.layers || (a.Sel != nil && len(a.Sel) != a.Batch.Seqs) || (a.HeadMax != nil && len(a.HeadMax) != a.Batch.Seqs) ||
		a.HeadDim > maxHeadDim {
		panic(fmt.Sprintf("attend: %d heads (%d KV) of %d on a store of KV dim %d, layer %d of %d; Q (%d, %d), Out (%d, %d); %d sequences, %d selections, %d head max (head dim at most %d)",
			a.Heads, a.KVHeads, a.HeadDim, st.spec.KVDim, a.Layer, st.layers, a.Q.Rows, a.Q.Cols, a.Out.Rows, a.Out.Cols, a.Batch.Seqs, len(a.Sel), len(a.HeadMax), maxHeadDim))
	}
	var items, hmSeqs []int32
	maxSplits, maxLen := 1, 0
	for s := 0; s < a.Batch.Seqs; s++ {
		rows, q0, pos0, n := int(bt.d.QRows[s]), int(bt.d.QStart[s]), int(bt.d.Pos0[s]), int(bt.d.Len[s])
		if rows <= 0 {
			continue
		}
		if q0 < 0 || q0+rows > a.Q.Rows || q0+rows > a.Out.Rows || (n+st.spec.PageTokens-1)/st.spec.PageTokens > len(bt.blocks(s)) {
			panic(fmt.Sprintf("attend: sequence %d: rows [%d, %d) of Q (%d rows); %d tokens in %d pages of %d", s, q0, q0+rows, a.Q.Rows, n, len(bt.blocks(s)), st.spec.PageTokens))
		}
		var sel *selState
		if a.Sel != nil && a.Sel[s] != nil {
			sel = selOf(a.Sel[s])
		}
		if a.HeadMax != nil && a.HeadMax[s] != nil {
			if rows != 1 || sel != nil {
				panic(fmt.Sprintf("attend: head max needs one query row and no selection, sequence %d has %d rows", s, rows))
			}
			hm := selOf(a.HeadMax[s])
			if hm.maxLen < n {
				panic(fmt.Sprintf("attend: head max of %d tokens, the state holds %d (BeginTurn's maxLen)", n, hm.maxLen))
			}
			hm.hmLen = n
			hmSeqs = append(hmSeqs, int32(s))
			maxLen = max(maxLen, n)
		}
		for i := 0; i < rows; i++ {
			bound := min(pos0+i+1, n)
			if sel != nil {
				bound = sel.attendLen
			}
			splits := 1
			if rows <= attnSplitRows {
				splits = max(1, (bound+attnSplit-1)/attnSplit)
			}
			maxSplits = max(maxSplits, splits)
			items = append(items, int32(s), int32(i), int32(splits))
		}
	}
	if len(items) == 0 || !d.ok() {
		return
	}
	op := fmt.Sprintf("Attend layer %d", a.Layer)
	nItems := len(items) / 3
	if !d.grow(&d.parts, 8*nItems*a.Heads*maxSplits*(a.HeadDim+2), op) {
		return
	}
	parts := [][]byte{i32b(items)}
	if a.Sel != nil {
		parts = append(parts, devs(a.Sel, nil, nil))
	}
	if hmSeqs != nil {
		parts = append(parts, i32b(hmSeqs), devs(a.HeadMax, nil, nil))
	}
	args := d.upload(&d.computeArgs, op, parts...)
	if args == nil {
		return
	}
	selArg := dptr(0)
	if a.Sel != nil {
		selArg = args[1]
	}
	seqs := int32(a.Batch.Seqs)
	d.launch("attn_paged_partial", [3]int{nItems, a.Heads, maxSplits}, [3]int{32, 1, 1}, op,
		tmem(a.Q), bt.buf.p, seqs, args[0], selArg, st.pages(a.Layer), int32(st.spec.PageTokens), int32(st.spec.KVDim), st.f32(),
		d.parts.p, int32(a.Heads), int32(a.KVHeads), int32(a.HeadDim), int32(attnSplit), a.Scale)
	d.launch("attn_paged_combine", [3]int{nItems, a.Heads, 1}, [3]int{32, 1, 1}, op,
		bt.buf.p, seqs, args[0], d.parts.p, tmem(a.Out), int32(a.Heads), int32(a.HeadDim), int32(maxSplits))
	if hmSeqs != nil {
		at := len(args) - 2
		d.launch("attn_headmax", [3]int{(maxLen + 127) / 128, a.KVHeads, len(hmSeqs)}, [3]int{128, 1, 1}, op+" head max",
			tmem(a.Q), bt.buf.p, seqs, args[at], args[at+1], st.pages(a.Layer), int32(st.spec.PageTokens), int32(st.spec.KVDim), st.f32(),
			int32(a.Heads), int32(a.KVHeads), int32(a.HeadDim), a.Scale)
	}
}
