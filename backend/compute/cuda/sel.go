//go:build cgo

package cuda

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// selState is a SelState on the CUDA device: its arrays live in device memory (kernels/device.cuh SelDev);
// the host keeps what it decides itself (the turn's sizes, the window ring's position, bounds for launch
// planning) and never reads the device during a step.
type selState struct {
	spec                             compute.SelSpec
	counts, window, scores, headmax  scratch // counts (8) int32; window (Window, QDim); scores (n); headmax (KVHeads, maxLen)
	sel, tokOf, fetchRows, fetchSlot scratch // (k) int32 each
	attend, mark                     scratch // attend (attendCap) int32; mark (n) int32
	n, k, maxLen                     int
	winLen, winStart                 int
	hmLen                            int // row length of headmax at its last fill
	attendLen                        int // the attention list's length, or a bound of it (after Select)
}

func selOf(s *compute.SelState) *selState {
	st, ok := s.Handle.(*selState)
	if !ok || st == nil {
		panic("cuda: selection state is not a CUDA state, or was freed")
	}
	return st
}

func (s *selState) free(d *Device) {
	for _, b := range []*scratch{&s.counts, &s.window, &s.scores, &s.headmax, &s.sel, &s.tokOf, &s.fetchRows, &s.fetchSlot, &s.attend, &s.mark} {
		d.pool.put(b.p)
		*b = scratch{}
	}
}

// dev returns the state's SelDev (128 bytes); a nil state gives the zeroed, invalid one.
func (s *selState) dev(forced, step int) []byte {
	b := make([]byte, 128)
	if s == nil {
		return b
	}
	for i, p := range []scratch{s.counts, s.window, s.scores, s.headmax, s.sel, s.tokOf, s.fetchRows, s.fetchSlot, s.attend, s.mark} {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(p.p))
	}
	for i, v := range []int{s.n, s.k, s.winLen, s.winStart, s.spec.Window, s.spec.QDim, s.spec.KVHeads, s.hmLen, forced, step, 1, 0} {
		binary.LittleEndian.PutUint32(b[80+4*i:], uint32(int32(v)))
	}
	return b
}

// devs returns the SelDev array of states (nil entries invalid).
func devs(states []*compute.SelState, forced, step []int32) []byte {
	out := make([]byte, 0, 128*len(states))
	for i, s := range states {
		var st *selState
		if s != nil {
			st = selOf(s)
		}
		f, g := 0, 0
		if forced != nil {
			f, g = int(forced[i]), int(step[i])
		}
		out = append(out, st.dev(f, g)...)
	}
	return out
}

// NewSelState implements compute.Device.
func (d *Device) NewSelState(spec compute.SelSpec) (*compute.SelState, error) {
	if spec.Window <= 0 || spec.QDim <= 0 || spec.KVHeads <= 0 {
		return nil, fmt.Errorf("cuda: selection state with window %d, query dim %d, %d KV heads", spec.Window, spec.QDim, spec.KVHeads)
	}
	st := &selState{spec: spec}
	if !d.grow(&st.counts, 32, "NewSelState") || !d.grow(&st.window, 4*spec.Window*spec.QDim, "NewSelState window") {
		return nil, d.err
	}
	d.fail(d.memset0(st.counts.p, 32, d.compute, "NewSelState"))
	d.fail(d.memset0(st.window.p, 4*spec.Window*spec.QDim, d.compute, "NewSelState"))
	return &compute.SelState{Spec: spec, Handle: st}, d.err
}

// BeginTurn implements compute.Device. The observation window is kept.
func (d *Device) BeginTurn(s *compute.SelState, n, k, maxLen int) {
	st := selOf(s)
	st.n, st.k, st.maxLen, st.attendLen, st.hmLen = n, k, maxLen, 0, 0
	if !d.ok() {
		return
	}
	d.waitCopy("BeginTurn")
	op := "BeginTurn"
	attendCap := k + max(0, maxLen-n) + 1
	if !d.grow(&st.scores, 4*max(n, 1), op) || !d.grow(&st.mark, 4*max(n, 1), op) || !d.grow(&st.headmax, 4*max(1, st.spec.KVHeads*maxLen), op) ||
		!d.grow(&st.sel, 4*max(k, 1), op) || !d.grow(&st.tokOf, 4*max(k, 1), op) || !d.grow(&st.fetchRows, 4*max(k, 1), op) ||
		!d.grow(&st.fetchSlot, 4*max(k, 1), op) || !d.grow(&st.attend, 4*attendCap, op) {
		return
	}
	d.fail(d.memset0(st.counts.p, 32, d.compute, op))
	d.fail(d.memset0(st.scores.p, 4*n, d.compute, op))
	d.fail(d.memset0(st.mark.p, 4*n, d.compute, op))
	d.fail(d.api.memset(st.tokOf.p, 0xff, 4*k, d.compute, op)) // -1: every staging slot empty
}

// ReadSel implements compute.Device (waits for every queued op).
func (d *Device) ReadSel(s *compute.SelState) compute.SelInfo {
	st := selOf(s)
	info := compute.SelInfo{Candidates: st.n}
	if d.Sync() != nil {
		return info
	}
	var counts [6]int32
	if d.read(i32b(counts[:]), st.counts.p, "ReadSel") != nil {
		return info
	}
	info.Selected = make([]int32, min(int(counts[0]), st.k))
	info.Attend = make([]int32, int(counts[2]))
	info.Scores = make([]float32, st.n)
	info.LastFetched = int(counts[3])
	info.RowsFetched = int64(uint32(counts[4])) | int64(counts[5])<<32
	if int(counts[2])*4 > st.attend.size {
		d.fail(fmt.Errorf("cuda: ReadSel: attention list of %d entries in a buffer of %d bytes", counts[2], st.attend.size))
		return info
	}
	d.read(i32b(info.Selected), st.sel.p, "ReadSel")
	d.read(i32b(info.Attend), st.attend.p, "ReadSel")
	d.read(f32b(info.Scores), st.scores.p, "ReadSel")
	return info
}

// read copies device memory to the host now (statistics and tests only).
func (d *Device) read(dst []byte, p dptr, op string) error {
	if len(dst) == 0 {
		return nil
	}
	d.fail(d.api.dtoh(dst, p, d.compute, op))
	d.fail(d.api.syncStream(d.compute, op))
	return d.err
}

// SetAttend implements compute.Device.
func (d *Device) SetAttend(s *compute.SelState, slots []int32) {
	st := selOf(s)
	st.attendLen = len(slots)
	if !d.ok() {
		return
	}
	if 4*len(slots) > st.attend.size && !d.grow(&st.attend, 4*len(slots), "SetAttend") {
		return
	}
	n := []int32{int32(len(slots))}
	d.fail(d.api.htod(st.attend.p, i32b(slots), d.compute, "SetAttend"))
	d.fail(d.api.htod(st.counts.p+8, i32b(n), d.compute, "SetAttend"))
}

// Observe implements compute.Device: the host decides where each row goes in the ring (it knows the
// sequences' query rows); one kernel copies them.
func (d *Device) Observe(o *compute.Observe) {
	bt := batchOf(o.Batch)
	var rows []int32
	var dst []uint64
	for s, state := range o.States {
		if state == nil {
			continue
		}
		st := selOf(state)
		w, qd := st.spec.Window, st.spec.QDim
		if o.Q.Cols != qd {
			panic(fmt.Sprintf("cuda observe: queries of %d columns for a window of %d", o.Q.Cols, qd))
		}
		q0, n := int(bt.d.QStart[s]), int(bt.d.QRows[s])
		for r := max(0, n-w); r < n; r++ {
			slot := st.push()
			rows = append(rows, int32(q0+r))
			dst = append(dst, uint64(st.window.p)+uint64(4*slot*qd))
		}
	}
	if len(rows) == 0 || !d.ok() {
		return
	}
	a := d.upload(&d.computeArgs, "Observe", i32b(rows), u64b(dst))
	if a != nil {
		d.launch("copy_rows_to", [3]int{len(rows), 1, 1}, [3]int{128, 1, 1}, "Observe", tmem(o.Q), a[0], a[1], int32(o.Q.Cols))
	}
}

// push returns the window ring's slot for a new newest row: the next free one, or, when the window is full,
// the oldest row's (which is dropped). Row i of the window, oldest first, is at (winStart+i) % Window.
func (st *selState) push() int {
	w := st.spec.Window
	if st.winLen < w {
		st.winLen++
		return (st.winStart + st.winLen - 1) % w
	}
	slot := st.winStart
	st.winStart = (st.winStart + 1) % w
	return slot
}

// SelectScores implements compute.Device.
func (d *Device) SelectScores(s *compute.SelectScores) {
	bt := batchOf(s.Batch)
	bt.check("select scores", s.Store)
	st := storeOf(s.Store)
	if len(s.States) > s.Batch.Seqs || s.Heads%s.KVHeads != 0 || s.KVHeads*s.HeadDim != st.spec.KVDim || s.Layer < 0 || s.Layer >= st.layers {
		panic(fmt.Sprintf("cuda select scores: %d states for %d sequences, %d heads (%d KV) of %d, KV dim %d, layer %d of %d",
			len(s.States), s.Batch.Seqs, s.Heads, s.KVHeads, s.HeadDim, st.spec.KVDim, s.Layer, st.layers))
	}
	loff := make([]int64, len(s.States))
	var total int64
	maxN, maxRows := 0, 0
	for i, state := range s.States {
		if state == nil {
			continue
		}
		ss := selOf(state)
		if ss.winLen > len(s.Alpha) {
			panic(fmt.Sprintf("cuda select scores: %d window rows, %d weights", ss.winLen, len(s.Alpha)))
		}
		if ss.n > 0 && ss.winLen > 0 && (ss.n+st.spec.PageTokens-1)/st.spec.PageTokens > len(bt.blocks(i)) {
			panic(fmt.Sprintf("cuda select scores: %d candidates in %d pages", ss.n, len(bt.blocks(i))))
		}
		loff[i] = total
		total += int64(ss.winLen * s.Heads * ss.n)
		maxN, maxRows = max(maxN, ss.n), max(maxRows, ss.winLen)
	}
	if maxN == 0 || !d.ok() {
		return
	}
	op := "SelectScores"
	if !d.grow(&d.logits, int(4*max(total, 1)), op) {
		return
	}
	a := d.upload(&d.computeArgs, op, devs(s.States, nil, nil), i64b(loff), f32b(s.Alpha))
	if a == nil {
		return
	}
	nb := (maxN + 127) / 128
	if maxRows > 0 {
		d.launch("sel_logits", [3]int{nb, maxRows * s.Heads, len(s.States)}, [3]int{128, 1, 1}, op,
			a[0], bt.buf.p, int32(s.Batch.Seqs), a[1], d.logits.p, st.pages(s.Layer), int32(st.spec.PageTokens), int32(st.spec.KVDim), st.f32(),
			int32(s.Heads), int32(s.KVHeads), int32(s.HeadDim), s.Scale)
		if s.Softmax {
			d.launch("sel_softmax", [3]int{maxRows * s.Heads, len(s.States), 1}, [3]int{256, 1, 1}, op, a[0], a[1], d.logits.p, int32(s.Heads))
		}
	}
	d.launch("sel_combine", [3]int{nb, len(s.States), 1}, [3]int{128, 1, 1}, op, a[0], a[1], d.logits.p, a[2], int32(len(s.Alpha)), int32(s.Heads))
}

func i64b(v []int64) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 8*len(v))
}

// Select implements compute.Device: top-k (or sink-recent) per state, then the staging slots, on the device.
func (d *Device) Select(s *compute.Select) {
	if len(s.Forced) != len(s.States) || len(s.Step) != len(s.States) {
		panic(fmt.Sprintf("cuda select: %d states, %d forced counts, %d steps", len(s.States), len(s.Forced), len(s.Step)))
	}
	mode := int32(0)
	switch s.Mode {
	case compute.SelScores, compute.SelHeadMax:
	case compute.SelSinkRecent:
		mode = 1
	default:
		panic(fmt.Sprintf("cuda select: mode %d", s.Mode))
	}
	if !d.ok() {
		return
	}
	op := "Select"
	d.waitCopy(op) // Gathers of the last selection read its fetch lists
	maxN := 0
	for i, state := range s.States {
		if state == nil {
			continue
		}
		st := selOf(state)
		need := st.k + int(s.Step[i]) + 1
		if 4*need > st.attend.size && !d.grow(&st.attend, 4*need, op) {
			return
		}
		if s.Mode == compute.SelHeadMax && st.hmLen < st.n {
			panic(fmt.Sprintf("cuda select: head max of %d tokens for %d candidates (no Attend with HeadMax this turn?)", st.hmLen, st.n))
		}
		st.attendLen = need
		maxN = max(maxN, st.n)
	}
	a := d.upload(&d.computeArgs, op, devs(s.States, s.Forced, s.Step))
	if a == nil {
		return
	}
	if s.Mode == compute.SelHeadMax && maxN > 0 {
		d.launch("sel_headmax_scores", [3]int{(maxN + 255) / 256, len(s.States), 1}, [3]int{256, 1, 1}, op, a[0])
	}
	d.launch("sel_topk", [3]int{len(s.States), 1, 1}, [3]int{1024, 1, 1}, op, a[0], mode, int32(omnikv.SinkTokens))
	d.launch("sel_slots", [3]int{len(s.States), 1, 1}, [3]int{1024, 1, 1}, op, a[0])
}
