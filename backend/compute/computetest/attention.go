package computetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// refAttention is the reference: for query row i at position pos0+i and head h (KV head h/group),
// out = Σ_t softmax_t(q·k_t·scale) v_t over the visible t (t <= pos0+i, and t in sel when sel != nil).
func refAttention(q, k, v []float32, rows, pos0, heads, kvHeads, hd int, scale float64, sel []int32) []float32 {
	group, kvDim := heads/kvHeads, kvHeads*hd
	out := make([]float32, rows*heads*hd)
	for i := 0; i < rows; i++ {
		var vis []int
		for tok := 0; tok <= pos0+i; tok++ {
			if sel == nil || contains(sel, tok) {
				vis = append(vis, tok)
			}
		}
		for h := 0; h < heads; h++ {
			kvh := h / group
			qh := q[i*heads*hd+h*hd : i*heads*hd+(h+1)*hd]
			s := make([]float64, len(vis))
			m := math.Inf(-1)
			for j, tok := range vis {
				for d := 0; d < hd; d++ {
					s[j] += float64(qh[d]) * float64(k[tok*kvDim+kvh*hd+d])
				}
				s[j] *= scale
				m = math.Max(m, s[j])
			}
			var z float64
			for j := range s {
				s[j] = math.Exp(s[j] - m)
				z += s[j]
			}
			for d := 0; d < hd; d++ {
				var acc float64
				for j, tok := range vis {
					acc += s[j] / z * float64(v[tok*kvDim+kvh*hd+d])
				}
				out[i*heads*hd+h*hd+d] = float32(acc)
			}
		}
	}
	return out
}

// everyNth returns the ascending token indices t < length with t%n == 0, plus the last tail ones (a sparse
// layer's selection always keeps the current query rows).
func everyNth(length, n, tail int) []int32 {
	var sel []int32
	for t := 0; t < length; t++ {
		if t%n == 0 || t >= length-tail {
			sel = append(sel, int32(t))
		}
	}
	return sel
}

// runs returns the ascending token indices in the half-open ranges [b[0], b[1]), [b[2], b[3]), ... plus the
// last tail ones.
func runs(length, tail int, b ...int) []int32 {
	var sel []int32
	for t := 0; t < length; t++ {
		in := t >= length-tail
		for i := 0; i+1 < len(b); i += 2 {
			in = in || (t >= b[i] && t < b[i+1])
		}
		if in {
			sel = append(sel, int32(t))
		}
	}
	return sel
}

func contains(sel []int32, tok int) bool {
	for _, s := range sel {
		if int(s) == tok {
			return true
		}
	}
	return false
}

// kvSeq is one sequence's keys and values written into one layer of a store, its pages scattered.
type kvSeq struct {
	blocks []int32   // page ids, in token order
	k, v   []float32 // (length, kvDim) the values the cache holds (fp16-rounded for an fp16 cache)
}

// newStore returns a device-tier store of layers layers with pages pages.
func newStore(t testing.TB, dev compute.Device, spec compute.KVSpec, layers, pages int) *compute.KVStore {
	t.Helper()
	st, err := dev.NewKVStore(spec, layers, compute.TierDevice, compute.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.GrowKVStore(st, pages); err != nil {
		t.Fatal(err)
	}
	return st
}

// slotsOf returns the store slots of tokens [from, to) of a sequence whose pages are blocks.
func slotsOf(blocks []int32, page, from, to int) []int32 {
	s := make([]int32, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, blocks[i/page]*int32(page)+int32(i%page))
	}
	return s
}

// writeSeq writes length random tokens (keys scaled by sk) into layer of st on the pages blocks, in two
// WriteKV calls, and returns what the cache holds.
func writeSeq(t testing.TB, dev compute.Device, r *rand.Rand, st *compute.KVStore, layer int, blocks []int32, length int, sk float64) kvSeq {
	t.Helper()
	kvDim, page := st.Spec.KVDim, st.Spec.PageTokens
	k, v := randVec(r, length*kvDim, sk), randVec(r, length*kvDim, 1)
	if st.Spec.DType == compute.KVF16 { // the reference sees what the cache stores
		for i := range k {
			k[i] = weights.F16ToF32(weights.F32ToF16(k[i]))
			v[i] = weights.F16ToF32(weights.F32ToF16(v[i]))
		}
	}
	half := length / 2
	for _, part := range [][2]int{{0, half}, {half, length}} {
		n := part[1] - part[0]
		if n == 0 {
			continue
		}
		kt := upload(t, dev, n, kvDim, k[part[0]*kvDim:part[1]*kvDim])
		vt := upload(t, dev, n, kvDim, v[part[0]*kvDim:part[1]*kvDim])
		dev.WriteKV(st, layer, kt, vt, slotsOf(blocks, page, part[0], part[1]))
	}
	return kvSeq{blocks: blocks, k: k, v: v}
}

// scattered returns n distinct page ids below total, in random order.
func scattered(r *rand.Rand, n, total int) []int32 {
	b := make([]int32, n)
	for i, p := range r.Perm(total)[:n] {
		b[i] = int32(p)
	}
	return b
}

// batchOf sets up a batch: seqs[i] = {qStart, qRows, pos0, len} and its pages.
func batchOf(dev compute.Device, seqs [][4]int, blocks [][]int32) *compute.Batch {
	d := compute.BatchDesc{BlockOff: []int32{0}}
	for i, s := range seqs {
		d.QStart = append(d.QStart, int32(s[0]))
		d.QRows = append(d.QRows, int32(s[1]))
		d.Pos0 = append(d.Pos0, int32(s[2]))
		d.Len = append(d.Len, int32(s[3]))
		d.Blocks = append(d.Blocks, blocks[i]...)
		d.BlockOff = append(d.BlockOff, int32(len(d.Blocks)))
	}
	b := dev.NewBatch()
	dev.SetBatch(b, &d)
	return b
}

// attendState returns a selection state whose attention list is sel.
func attendState(t testing.TB, dev compute.Device, kvHeads, qDim int, sel []int32) *compute.SelState {
	t.Helper()
	s, err := dev.NewSelState(compute.SelSpec{Window: 1, QDim: qDim, KVHeads: kvHeads})
	if err != nil {
		t.Fatal(err)
	}
	dev.SetAttend(s, sel)
	return s
}

// attnCase is one sequence of an attention test.
type attnCase struct {
	name           string
	length, rows   int // tokens cached (incl. the query rows), query rows (the newest ones)
	sel            []int32
	dt             compute.KVDType
	scaleK, scaleQ float64
	heads, kvHeads int // 6, 2 when zero
	hd, page       int // 16, 4 when zero
}

func (tc *attnCase) shape() (heads, kvHeads, hd, page int) {
	heads, kvHeads, hd, page = 6, 2, 16, 4
	if tc.heads != 0 {
		heads, kvHeads = tc.heads, tc.kvHeads
	}
	if tc.hd != 0 {
		hd, page = tc.hd, tc.page
	}
	return
}

func testAttention(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []attnCase{
		{name: "decode", length: 13, rows: 1, dt: compute.KVF32},
		{name: "prefill", length: 9, rows: 9, dt: compute.KVF32},
		{name: "chunk", length: 21, rows: 5, dt: compute.KVF32},
		{name: "fp16", length: 37, rows: 3, dt: compute.KVF16},
		{name: "selected", length: 30, rows: 2, sel: []int32{0, 3, 4, 11, 17, 28, 29}, dt: compute.KVF32},
		{name: "selected-fp16", length: 30, rows: 1, sel: []int32{1, 2, 29}, dt: compute.KVF16},
		{name: "peaked", length: 50, rows: 1, dt: compute.KVF32, scaleK: 8, scaleQ: 8},
		{name: "odd-headdim", length: 70, rows: 5, dt: compute.KVF16, hd: 12, page: 16},
		// Long sequences: many KV blocks per task, several row blocks, splits of the tokens in decode.
		{name: "long-decode-fp16", length: 1000, rows: 1, dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-decode-fp32", length: 1000, rows: 1, dt: compute.KVF32, hd: 64, page: 64},
		{name: "long-decode-split", length: 2500, rows: 1, dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-chunk-fp16", length: 1000, rows: 37, dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-chunk-fp32", length: 1000, rows: 37, dt: compute.KVF32, hd: 64, page: 64},
		{name: "long-chunk-sel-fp16", length: 1000, rows: 37, sel: everyNth(1000, 3, 37), dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-decode-sel-fp32", length: 1000, rows: 1, sel: everyNth(1000, 2, 1), dt: compute.KVF32, hd: 64, page: 64},
		{name: "long-decode-sel-split", length: 3000, rows: 1, sel: everyNth(3000, 2, 1), dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-chunk-split", length: 2500, rows: 5, dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-chunk-sel-split", length: 3000, rows: 4, sel: everyNth(3000, 2, 4), dt: compute.KVF32, hd: 64, page: 64},
		// Runs of consecutive selected rows that start and end inside pages and cross page boundaries (the
		// staging slots of a sparse layer mostly are such runs).
		{name: "long-decode-sel-runs-fp16", length: 700, rows: 1, sel: runs(700, 1, 0, 100, 130, 131, 190, 450, 699, 700), dt: compute.KVF16, hd: 64, page: 64},
		{name: "long-prefill", length: 200, rows: 200, dt: compute.KVF16, hd: 64, page: 64},
		// Scores of std 4*4 = 16 (at 1e-6 relative to the output, float32 scores alone cost ~4e-6 from std 16 up).
		{name: "long-peaked", length: 1000, rows: 37, dt: compute.KVF32, scaleK: 2, scaleQ: 2, hd: 64, page: 64},
		{name: "gqa4", length: 300, rows: 37, dt: compute.KVF32, heads: 8, kvHeads: 2, hd: 32, page: 64},
		{name: "mha", length: 300, rows: 7, dt: compute.KVF16, heads: 4, kvHeads: 4, hd: 32, page: 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heads, kvHeads, hd, page := tc.shape()
			kvDim := kvHeads * hd
			sk, sq := tc.scaleK, tc.scaleQ
			if sk == 0 {
				sk, sq = 1, 1
			}
			npages := (tc.length + page - 1) / page
			st := newStore(t, dev, compute.KVSpec{PageTokens: page, KVDim: kvDim, DType: tc.dt}, 2, npages+3)
			kv := writeSeq(t, dev, r, st, 1, scattered(r, npages, npages+3), tc.length, sk)
			q := randVec(r, tc.rows*heads*hd, sq)
			pos0 := tc.length - tc.rows
			qt := upload(t, dev, tc.rows+2, heads*hd, append(make([]float32, 2*heads*hd), q...))
			out := tensor(t, dev, tc.rows+2, heads*hd)
			scale := 1 / math.Sqrt(float64(hd))
			a := &compute.Attention{
				Q: qt, Out: out, Store: st, Layer: 1, Batch: batchOf(dev, [][4]int{{2, tc.rows, pos0, tc.length}}, [][]int32{kv.blocks}),
				Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: float32(scale),
			}
			if tc.sel != nil {
				a.Sel = []*compute.SelState{attendState(t, dev, kvHeads, heads*hd, tc.sel)}
			}
			dev.Attend(a)
			want := refAttention(q, kv.k, kv.v, tc.rows, pos0, heads, kvHeads, hd, scale, tc.sel)
			got := read(dev, out, tc.rows+2)[2*heads*hd:]
			closeTo(t, fmt.Sprintf("attention %s", tc.name), got, want, 2e-6)
		})
	}
}

// testAttentionBatch runs sequences of different lengths, query rows and selections (a decode batch, prefill
// chunks, a sparse layer's staging, a sequence with no query rows) in one call, on one store, and checks
// each against the reference and, bit for bit, against the same sequence attended alone.
func testAttentionBatch(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(35, 36))
	const heads, kvHeads, hd, page = 9, 3, 64, 16
	kvDim, qd := kvHeads*hd, heads*hd
	for _, dt := range []compute.KVDType{compute.KVF16, compute.KVF32} {
		seqs := []attnCase{
			{length: 40, rows: 1}, {length: 700, rows: 1}, {length: 1300, rows: 1},
			{length: 90, rows: 13}, {length: 33, rows: 0}, {length: 1200, rows: 1, sel: everyNth(1200, 5, 1)},
			{length: 600, rows: 1, sel: runs(600, 1, 0, 4, 100, 300)}, {length: 2, rows: 2}, {length: 64, rows: 1},
		}
		total := 0
		for _, s := range seqs {
			total += (s.length + page - 1) / page
		}
		st := newStore(t, dev, compute.KVSpec{PageTokens: page, KVDim: kvDim, DType: dt}, 3, total)
		perm := scattered(r, total, total)
		var desc [][4]int
		var blocks [][]int32
		var kvs []kvSeq
		var states []*compute.SelState
		rows := 0
		for _, s := range seqs {
			np := (s.length + page - 1) / page
			kv := writeSeq(t, dev, r, st, 2, perm[:np], s.length, 1)
			perm = perm[np:]
			kvs = append(kvs, kv)
			blocks = append(blocks, kv.blocks)
			desc = append(desc, [4]int{rows, s.rows, s.length - s.rows, s.length})
			rows += s.rows
			var sel *compute.SelState
			if s.sel != nil {
				sel = attendState(t, dev, kvHeads, qd, s.sel)
			}
			states = append(states, sel)
		}
		q := randVec(r, rows*qd, 1)
		qt := upload(t, dev, rows, qd, q)
		out := tensor(t, dev, rows, qd)
		scale := float32(1 / math.Sqrt(hd))
		dev.Attend(&compute.Attention{Q: qt, Out: out, Store: st, Layer: 2, Batch: batchOf(dev, desc, blocks),
			Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: scale, Sel: states})
		got := read(dev, out, rows)
		for i, s := range seqs {
			if s.rows == 0 {
				continue
			}
			d := desc[i]
			mine := got[d[0]*qd : (d[0]+d[1])*qd]
			want := refAttention(q[d[0]*qd:(d[0]+d[1])*qd], kvs[i].k, kvs[i].v, s.rows, d[2], heads, kvHeads, hd, float64(scale), s.sel)
			closeTo(t, fmt.Sprintf("%v: batch sequence %d", dt, i), mine, want, 2e-6)
			alone := tensor(t, dev, s.rows, qd)
			dev.Attend(&compute.Attention{Q: upload(t, dev, s.rows, qd, q[d[0]*qd:]), Out: alone, Store: st, Layer: 2,
				Batch: batchOf(dev, [][4]int{{0, s.rows, d[2], d[3]}}, [][]int32{blocks[i]}), Heads: heads, KVHeads: kvHeads,
				HeadDim: hd, Scale: scale, Sel: states[i : i+1]})
			for j, v := range read(dev, alone, s.rows) {
				if math.Float32bits(v) != math.Float32bits(mine[j]) {
					t.Fatalf("%v: sequence %d value %d: %v in the batch, %v alone", dt, i, j, mine[j], v)
				}
			}
		}
	}
}

func testHeadMax(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, tc := range []struct{ heads, kvHeads, hd, n int }{{9, 3, 64, 700}, {6, 2, 16, 50}, {32, 2, 16, 130}, {4, 4, 8, 9}} {
		t.Run(fmt.Sprintf("h%d_kv%d_n%d", tc.heads, tc.kvHeads, tc.n), func(t *testing.T) {
			const page = 16
			kvDim, qd := tc.kvHeads*tc.hd, tc.heads*tc.hd
			np := (tc.n + page - 1) / page
			st := newStore(t, dev, compute.KVSpec{PageTokens: page, KVDim: kvDim, DType: compute.KVF32}, 1, np)
			kv := writeSeq(t, dev, r, st, 0, scattered(r, np, np), tc.n, 1)
			q := randVec(r, qd, 1)
			scale := 1 / math.Sqrt(float64(tc.hd))
			state, err := dev.NewSelState(compute.SelSpec{Window: 1, QDim: qd, KVHeads: tc.kvHeads})
			if err != nil {
				t.Fatal(err)
			}
			cand := tc.n - 1 // the context before the query's own token
			dev.BeginTurn(state, cand, cand, tc.n)
			b := batchOf(dev, [][4]int{{0, 1, tc.n - 1, tc.n}}, [][]int32{kv.blocks})
			out := tensor(t, dev, 1, qd)
			a := &compute.Attention{Q: upload(t, dev, 1, qd, q), Out: out, Store: st, Batch: b, Heads: tc.heads,
				KVHeads: tc.kvHeads, HeadDim: tc.hd, Scale: float32(scale), HeadMax: []*compute.SelState{state}}
			dev.Attend(a)
			dev.Select(&compute.Select{Mode: compute.SelHeadMax, States: []*compute.SelState{state}, Forced: []int32{0}, Step: []int32{0}})
			group := tc.heads / tc.kvHeads
			want := make([]float32, cand)
			for tok := range want {
				best := math.Inf(-1)
				for h := 0; h < tc.heads; h++ {
					var s float64
					for d := 0; d < tc.hd; d++ {
						s += float64(q[h*tc.hd+d]) * float64(kv.k[tok*kvDim+(h/group)*tc.hd+d])
					}
					best = math.Max(best, s*scale)
				}
				want[tok] = float32(best)
			}
			closeTo(t, "head max scores", dev.ReadSel(state).Scores, want, 2e-6)
			// The attention itself is unchanged by asking for HeadMax.
			plain := tensor(t, dev, 1, qd)
			a.Out, a.HeadMax = plain, nil
			dev.Attend(a)
			closeTo(t, "attention with HeadMax", read(dev, out, 1), read(dev, plain, 1), 0)
		})
	}
}
