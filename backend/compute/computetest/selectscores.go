package computetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

// refSelectScores is the definition of compute.SelectScores in float64.
func refSelectScores(q, k []float32, w, n, heads, kvHeads, hd int, alpha []float32, softmax bool, scale float64) []float32 {
	group, kvDim := heads/kvHeads, kvHeads*hd
	out := make([]float64, n)
	for i := 0; i < w; i++ {
		best := make([]float64, n)
		for j := range best {
			best[j] = math.Inf(-1)
		}
		for h := 0; h < heads; h++ {
			l := make([]float64, n)
			m := math.Inf(-1)
			for j := 0; j < n; j++ {
				for d := 0; d < hd; d++ {
					l[j] += float64(q[i*heads*hd+h*hd+d]) * float64(k[j*kvDim+(h/group)*hd+d])
				}
				l[j] *= scale
				m = math.Max(m, l[j])
			}
			if softmax {
				var z float64
				for j := range l {
					l[j] = math.Exp(l[j] - m)
					z += l[j]
				}
				for j := range l {
					l[j] /= z
				}
			}
			for j := range l {
				best[j] = math.Max(best[j], l[j])
			}
		}
		for j := range out {
			out[j] += float64(alpha[i]) * best[j]
		}
	}
	res := make([]float32, n)
	for j, v := range out {
		res[j] = float32(v)
	}
	return res
}

func testSelectScores(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(13, 14))
	const heads, kvHeads, hd, page = 6, 2, 16, 8
	kvDim, qd := kvHeads*hd, heads*hd
	for _, tc := range []struct {
		w, n    int
		softmax bool
		dt      compute.KVDType
	}{{1, 37, false, compute.KVF32}, {1, 64, true, compute.KVF32}, {4, 50, true, compute.KVF16}, {3, 9, false, compute.KVF16}} {
		t.Run(fmt.Sprintf("w%d_n%d_softmax%v_%v", tc.w, tc.n, tc.softmax, tc.dt), func(t *testing.T) {
			np := (tc.n + page - 1) / page
			st := newStore(t, dev, compute.KVSpec{PageTokens: page, KVDim: kvDim, DType: tc.dt}, 2, np+2)
			kv := writeSeq(t, dev, r, st, 1, scattered(r, np, np+2), tc.n, 1)
			// The window is filled by two Observe calls (a prompt chunk, then a decode row) of a batch whose
			// other sequence has no state.
			q := randVec(r, tc.w*qd, 1)
			state, err := dev.NewSelState(compute.SelSpec{Window: tc.w, QDim: qd, KVHeads: kvHeads})
			if err != nil {
				t.Fatal(err)
			}
			junk := randVec(r, 2*qd, 1)
			first := tc.w - 1
			qt := upload(t, dev, first+2, qd, append(append(append([]float32(nil), junk...), q[:first*qd]...), randVec(r, qd, 1)...))
			dev.Observe(&compute.Observe{Q: qt, Batch: batchOf(dev, [][4]int{{1, 1, 0, 1}, {2, first, 0, first}}, [][]int32{nil, nil}),
				States: []*compute.SelState{nil, state}})
			dev.Observe(&compute.Observe{Q: upload(t, dev, 1, qd, q[first*qd:]), Batch: batchOf(dev, [][4]int{{0, 1, 0, 1}}, [][]int32{nil}),
				States: []*compute.SelState{state}})
			dev.BeginTurn(state, tc.n, tc.n, tc.n+1)
			alpha := make([]float32, tc.w)
			for i := range alpha {
				alpha[i] = float32(math.Ldexp(1, i-tc.w+1))
			}
			scale := 1 / math.Sqrt(hd)
			dev.SelectScores(&compute.SelectScores{Store: st, Layer: 1, Batch: batchOf(dev, [][4]int{{0, 0, 0, tc.n}}, [][]int32{kv.blocks}),
				States: []*compute.SelState{state}, Alpha: alpha, Softmax: tc.softmax, Heads: heads, KVHeads: kvHeads,
				HeadDim: hd, Scale: float32(scale)})
			want := refSelectScores(q, kv.k, tc.w, tc.n, heads, kvHeads, hd, alpha, tc.softmax, scale)
			closeTo(t, "select scores", dev.ReadSel(state).Scores, want, 2e-6)
		})
	}
}

// tiedScores writes n tokens to a store layer whose keys' raw logits against a one-hot query are small
// integers (many ties), and random values, which it returns; the state's window then holds that query, so
// that SelectScores gives integer scores.
func tiedScores(t *testing.T, dev compute.Device, r *rand.Rand, st *compute.KVStore, layer int, blocks []int32, n int, state *compute.SelState, qd int) (v []float32) {
	t.Helper()
	kvDim := st.Spec.KVDim
	k := make([]float32, n*kvDim)
	for i := range k {
		k[i] = float32(r.IntN(5) - 2)
	}
	v = roundKV(randVec(r, n*kvDim, 1), st.Spec.DType)
	dev.WriteKV(st, layer, upload(t, dev, n, kvDim, k), upload(t, dev, n, kvDim, v), slotsOf(blocks, st.Spec.PageTokens, 0, n))
	q := make([]float32, qd)
	q[0] = 1
	dev.Observe(&compute.Observe{Q: upload(t, dev, 1, qd, q), Batch: batchOf(dev, [][4]int{{0, 1, 0, 1}}, [][]int32{nil}),
		States: []*compute.SelState{state}})
	return v
}

// testSelect checks top-k with ties and forced rows against omnikv's definition, the attention list, and that
// a second step keeps rows that stay selected in their slots (only new rows are fetched).
func testSelect(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(41, 42))
	const heads, kvHeads, hd, page, n, k = 2, 1, 8, 16, 300, 40
	qd := heads * hd
	spec := compute.KVSpec{PageTokens: page, KVDim: kvHeads * hd, DType: compute.KVF16}
	np := (n + page - 1) / page
	st := newStore(t, dev, spec, 1, np)
	blocks := scattered(r, np, np)
	b := batchOf(dev, [][4]int{{0, 0, 0, n}}, [][]int32{blocks})
	state, err := dev.NewSelState(compute.SelSpec{Window: 1, QDim: qd, KVHeads: kvHeads})
	if err != nil {
		t.Fatal(err)
	}
	prev := map[int32]bool{}
	for step, forced := range []int32{3, 0, 7} {
		tiedScores(t, dev, r, st, 0, blocks, n, state, qd)
		if step == 0 {
			dev.BeginTurn(state, n, k, n+8)
		}
		dev.SelectScores(&compute.SelectScores{Store: st, Batch: b, States: []*compute.SelState{state}, Alpha: []float32{1},
			Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: 1})
		dev.Select(&compute.Select{Mode: compute.SelScores, States: []*compute.SelState{state}, Forced: []int32{forced}, Step: []int32{int32(step)}})
		info := dev.ReadSel(state)
		tmp := make([]int32, n)
		want := omnikv.Select(info.Scores, k, int(forced), nil, tmp)
		if !slices.Equal(info.Selected, want) {
			t.Fatalf("step %d: selected %v, want %v", step, info.Selected, want)
		}
		// The attention list: len(want) distinct selection slots below k, then the generated slots k..k+step.
		used := info.Attend[:len(want)]
		if !slices.IsSorted(used) || len(slices.Compact(slices.Clone(used))) != len(used) || (len(used) > 0 && used[len(used)-1] >= k) {
			t.Fatalf("step %d: selection slots %v", step, used)
		}
		for g, s := range info.Attend[len(want):] {
			if s != int32(k+g) {
				t.Fatalf("step %d: attention list %v does not end with the generated slots %d..%d", step, info.Attend, k, k+step)
			}
		}
		if len(info.Attend) != len(want)+step+1 {
			t.Fatalf("step %d: attention list of %d, want %d", step, len(info.Attend), len(want)+step+1)
		}
		// Only newly selected rows are fetched (Select leaves them for Gather; the count is Gather's).
		fresh := 0
		now := map[int32]bool{}
		for _, tok := range want {
			now[tok] = true
			if !prev[tok] {
				fresh++
			}
		}
		stage := newStore(t, dev, spec, 1, (k+8+page-1)/page)
		sb := batchOf(dev, [][4]int{{0, 0, 0, k + 8}}, [][]int32{slotsPages(k+8, page)})
		dev.Gather(&compute.Gather{Src: st, SrcBatch: b, Dst: stage, DstBatch: sb, States: []*compute.SelState{state}})
		if got := dev.ReadSel(state).LastFetched; got != fresh {
			t.Fatalf("step %d: %d rows fetched, %d newly selected", step, got, fresh)
		}
		prev = now
	}
}

// slotsPages returns the page ids 0.. of a staging area of n tokens.
func slotsPages(n, page int) []int32 {
	b := make([]int32, (n+page-1)/page)
	for i := range b {
		b[i] = int32(i)
	}
	return b
}

// testGather selects rows with Select, gathers them into a staging store for two layers, and checks that
// attention over the staging slots equals attention over the same tokens in place (keys and values moved).
func testGather(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(15, 16))
	const heads, kvHeads, hd, page, n, k, gen = 4, 2, 16, 8, 90, 24, 4
	qd, kvDim := heads*hd, kvHeads*hd
	for _, dt := range []compute.KVDType{compute.KVF32, compute.KVF16} {
		spec := compute.KVSpec{PageTokens: page, KVDim: kvDim, DType: dt}
		np := (n + page - 1) / page
		src := newStore(t, dev, spec, 3, np+1)
		blocks := scattered(r, np, np+1)
		var kvs []kvSeq
		for l := 0; l < 3; l++ {
			kvs = append(kvs, writeSeq(t, dev, r, src, l, blocks, n, 1))
		}
		sp := (k + gen + page - 1) / page
		stage := newStore(t, dev, spec, 2, sp+2)
		sblocks := scattered(r, sp, sp+2)
		state, err := dev.NewSelState(compute.SelSpec{Window: 1, QDim: qd, KVHeads: kvHeads})
		if err != nil {
			t.Fatal(err)
		}
		tiedScores(t, dev, r, src, 0, blocks, n, state, qd)
		dev.BeginTurn(state, n, k, n+gen)
		b := batchOf(dev, [][4]int{{0, 0, 0, n}}, [][]int32{blocks})
		dev.SelectScores(&compute.SelectScores{Store: src, Batch: b, States: []*compute.SelState{state}, Alpha: []float32{1},
			Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: 1})
		dev.Select(&compute.Select{Mode: compute.SelScores, States: []*compute.SelState{state}, Forced: []int32{2}, Step: []int32{0}})
		sb := batchOf(dev, [][4]int{{0, 1, k + gen, k + gen}}, [][]int32{sblocks})
		for dl, sl := range []int{1, 2} {
			dev.Wait(dev.Gather(&compute.Gather{Src: src, SrcLayer: sl, SrcBatch: b, Dst: stage, DstLayer: dl, DstBatch: sb, States: []*compute.SelState{state}}))
		}
		info := dev.ReadSel(state)
		if info.RowsFetched != int64(2*len(info.Selected)) {
			t.Fatalf("%v: %d rows fetched for %d selected in 2 layers", dt, info.RowsFetched, len(info.Selected))
		}
		// The generated slot k holds this step's token: write one so that the staging list is complete.
		gk, gv := randVec(r, kvDim, 1), randVec(r, kvDim, 1)
		for dl := 0; dl < 2; dl++ {
			dev.WriteKV(stage, dl, upload(t, dev, 1, kvDim, gk), upload(t, dev, 1, kvDim, gv), slotsOf(sblocks, page, k, k+1))
		}
		for dl, sl := range []int{1, 2} {
			q := randVec(r, qd, 1)
			staged := tensor(t, dev, 1, qd)
			dev.Attend(&compute.Attention{Q: upload(t, dev, 1, qd, q), Out: staged, Store: stage, Layer: dl, Batch: sb,
				Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: 0.25, Sel: []*compute.SelState{state}})
			// In place: the selected tokens, then the generated token appended as token n.
			kk := append(slices.Clone(kvs[sl].k), roundKV(gk, dt)...)
			vv := append(slices.Clone(kvs[sl].v), roundKV(gv, dt)...)
			want := refAttention(q, kk, vv, 1, n, heads, kvHeads, hd, 0.25, append(slices.Clone(info.Selected), n))
			closeTo(t, fmt.Sprintf("%v layer %d: attention over staging", dt, sl), read(dev, staged, 1), want, 2e-6)
		}
	}
}

func roundKV(v []float32, dt compute.KVDType) []float32 {
	if dt == compute.KVF32 {
		return v
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = weights.F16ToF32(weights.F32ToF16(x))
	}
	return out
}

// testGatherMany moves enough rows, for two sequences in one call, for a device to split the copy (e.g.
// across threads) and checks every row through single-slot attention.
func testGatherMany(t *testing.T, dev compute.Device) {
	r := rand.New(rand.NewPCG(19, 20))
	const heads, kvHeads, hd, page, n, k = 1, 1, 8, 16, 2048, 1500
	qd, kvDim := heads*hd, kvHeads*hd
	spec := compute.KVSpec{PageTokens: page, KVDim: kvDim, DType: compute.KVF32}
	src := newStore(t, dev, spec, 1, 2*n/page)
	stage := newStore(t, dev, spec, 1, 2*(k+1+page-1)/page+1)
	perm := scattered(r, 2*n/page, 2*n/page)
	sperm := scattered(r, 2*((k+1+page-1)/page), 2*((k+1+page-1)/page)+1)
	var kvs []kvSeq
	var states []*compute.SelState
	var srcDesc, dstDesc [][4]int
	var srcBlocks, dstBlocks [][]int32
	for s := 0; s < 2; s++ {
		kv := writeSeq(t, dev, r, src, 0, perm[s*n/page:(s+1)*n/page], n, 1)
		state, err := dev.NewSelState(compute.SelSpec{Window: 1, QDim: qd, KVHeads: kvHeads})
		if err != nil {
			t.Fatal(err)
		}
		kv.v = tiedScores(t, dev, r, src, 0, kv.blocks, n, state, qd)
		kvs = append(kvs, kv)
		dev.BeginTurn(state, n, k, n+1)
		states = append(states, state)
		srcDesc, srcBlocks = append(srcDesc, [4]int{0, 0, 0, n}), append(srcBlocks, kv.blocks)
		ns := (k + 1 + page - 1) / page
		dstDesc, dstBlocks = append(dstDesc, [4]int{0, 0, k + 1, k + 1}), append(dstBlocks, sperm[s*ns:(s+1)*ns])
	}
	sb, db := batchOf(dev, srcDesc, srcBlocks), batchOf(dev, dstDesc, dstBlocks)
	dev.SelectScores(&compute.SelectScores{Store: src, Batch: sb, States: states, Alpha: []float32{1}, Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: 1})
	dev.Select(&compute.Select{Mode: compute.SelScores, States: states, Forced: []int32{0, 5}, Step: []int32{0, 0}})
	dev.Wait(dev.Gather(&compute.Gather{Src: src, SrcBatch: sb, Dst: stage, DstBatch: db, States: states}))
	reader := attendState(t, dev, kvHeads, qd, nil)
	for s, state := range states {
		info := dev.ReadSel(state)
		if len(info.Selected) != k || info.RowsFetched != k {
			t.Fatalf("sequence %d: %d selected, %d fetched, want %d", s, len(info.Selected), info.RowsFetched, k)
		}
		// The rows are in the selection slots in some order: each slot holds one selected token's values.
		want := map[string]bool{}
		for _, tok := range info.Selected {
			want[fmt.Sprint(kvs[s].v[int(tok)*kvDim:int(tok+1)*kvDim])] = true
		}
		for i := 0; i < k; i += 97 {
			slot := info.Attend[i]
			dev.SetAttend(reader, []int32{slot})
			out := tensor(t, dev, 1, qd)
			dev.Attend(&compute.Attention{Q: tensor(t, dev, 1, qd), Out: out, Store: stage, Batch: batchOf(dev, [][4]int{{0, 1, k + 1, k + 1}}, dstBlocks[s:s+1]),
				Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: 1, Sel: []*compute.SelState{reader}})
			if got := read(dev, out, 1); !want[fmt.Sprint(got)] {
				t.Fatalf("sequence %d slot %d holds %v, not a selected row", s, slot, got)
			}
		}
	}
}

// testFree releases every kind of device object.
func testFree(t *testing.T, dev compute.Device) {
	x := tensor(t, dev, 3, 4)
	st := newStore(t, dev, compute.KVSpec{PageTokens: 4, KVDim: 8, DType: compute.KVF16}, 2, 3)
	b := dev.NewBatch()
	s, err := dev.NewSelState(compute.SelSpec{Window: 2, QDim: 8, KVHeads: 1})
	if err != nil {
		t.Fatal(err)
	}
	w := vecWeight(t, dev, []float32{1, 2, 3})
	for _, o := range []any{x, st, b, s, w} {
		dev.Free(o)
	}
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
}
