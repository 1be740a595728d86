package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
	"github.com/omnikv-triton/omnikv-triton/tests/reference/tinymodel"
)

// tinyModel writes the tiny random-weight Llama and loads it; EOS is cleared unless keepEOS so that lengths
// are predictable.
func tinyModel(t *testing.T, keepEOS bool) *llama.Model {
	t.Helper()
	dir := t.TempDir()
	if err := tinymodel.Write(dir, tinymodel.TinyLlamaF32); err != nil {
		t.Fatal(err)
	}
	m, err := llama.Load(dir, cpu.New(), llama.Options{MaxContext: 256})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if !keepEOS {
		m.EOS = nil
	}
	return m
}

// referenceGreedy runs the model directly, one sequence, no engine.
func referenceGreedy(t *testing.T, m *llama.Model, prompt []int32, n int) []int32 {
	t.Helper()
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 16, DType: compute.KVF16, Offload: m.OffloadLayers()})
	if err != nil {
		t.Fatal(err)
	}
	seq := llama.NewSequence(pool, len(prompt)+n)
	st := m.MustState(len(prompt), 1)
	out := []int32{}
	next := prompt
	logits := make([]float32, m.Vocab)
	for len(out) < n {
		if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: next, Decode: len(out) > 0}}); err != nil {
			t.Fatal(err)
		}
		logits = m.ReadLogits(st, logits)
		best := int32(0)
		for i, v := range logits {
			if v > logits[best] {
				best = int32(i)
			}
		}
		out = append(out, best)
		next = []int32{best}
	}
	return out
}

func collect(t *testing.T, h *Handle) ([]int32, Event) {
	t.Helper()
	var toks []int32
	for ev := range h.Events() {
		if ev.Done {
			return toks, ev
		}
		toks = append(toks, ev.Token)
	}
	t.Fatal("events closed without a final event")
	return nil, Event{}
}

func greedyParams(n int) sample.Params {
	p := sample.DefaultParams()
	p.Temperature, p.MaxTokens = 0, n
	return p
}

func TestGreedyMatchesDirectForward(t *testing.T) {
	for _, okv := range []bool{false, true} {
		t.Run(map[bool]string{false: "dense", true: "omnikv"}[okv], func(t *testing.T) { testGreedyMatchesDirect(t, okv) })
	}
}

// testGreedyMatchesDirect: a batch of sequences gives what each gives alone; with OmniKV (a small budget, so
// selections matter) each sequence of the batch selects its own context rows.
func testGreedyMatchesDirect(t *testing.T, okv bool) {
	m := tinyModel(t, false)
	if okv {
		cfg := omnikv.Config{Enabled: true, FilterLayers: []int{1}, Selector: omnikv.Last, Budget: omnikv.Budget{Tokens: 3}}
		if err := m.SetOmniKV(cfg); err != nil {
			t.Fatal(err)
		}
	}
	prompts := [][]int32{{1, 5, 9, 200}, {1, 77}, {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 400}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}
	const n = 20
	want := make([][]int32, len(prompts))
	for i, p := range prompts {
		want[i] = referenceGreedy(t, m, p, n)
	}
	// StepTokens smaller than the longest prompt forces chunked prefill mixed with other sequences' decoding.
	e, err := New(m, Options{MaxSequences: 4, StepTokens: 8, PageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	handles := make([]*Handle, len(prompts))
	for i, p := range prompts {
		if handles[i], err = e.Submit(context.Background(), Request{Prompt: p, Params: greedyParams(n)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range handles {
		got, fin := collect(t, h)
		if fin.Err != nil || fin.Reason != sample.FinishLength {
			t.Fatalf("sequence %d ended with %v, %v", i, fin.Reason, fin.Err)
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("sequence %d: batched engine %v, direct forward %v", i, got, want[i])
		}
		if fin.Stats.PromptTokens != len(prompts[i]) || fin.Stats.GeneratedTokens != n {
			t.Errorf("sequence %d stats %+v", i, fin.Stats)
		}
	}
	if in := e.Pool().InUse(); in != 0 {
		t.Fatalf("%d KV pages still in use after every sequence finished", in)
	}
}

func TestSeededSamplingIsReproducible(t *testing.T) {
	m := tinyModel(t, false)
	e, err := New(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	run := func(seed uint64) []int32 {
		p := greedyParams(24)
		p.Temperature, p.TopP, p.Seed = 1, 0.9, seed
		h, err := e.Submit(context.Background(), Request{Prompt: []int32{1, 10, 20}, Params: p})
		if err != nil {
			t.Fatal(err)
		}
		toks, _ := collect(t, h)
		return toks
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different output: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("seeds 7 and 8 gave the same 24 tokens %v", a)
	}
}

func TestStopsOnEOS(t *testing.T) {
	m := tinyModel(t, true)
	ref := referenceGreedy(t, m, []int32{1, 5, 9}, 30)
	m.EOS = []int32{ref[4]} // make the fifth greedy token the end of sequence
	first := slices.Index(ref, ref[4])
	e, err := New(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h, err := e.Submit(context.Background(), Request{Prompt: []int32{1, 5, 9}, Params: greedyParams(30)})
	if err != nil {
		t.Fatal(err)
	}
	got, fin := collect(t, h)
	if fin.Reason != sample.FinishStop || !slices.Equal(got, ref[:first+1]) {
		t.Fatalf("got %v (%v), want %v ending on EOS with stop", got, fin.Reason, ref[:first+1])
	}
}

func TestCancelFreesMemory(t *testing.T) {
	m := tinyModel(t, false)
	e, err := New(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel while the third step is composed: that step (the prompt's, then two decodes, one token each)
	// is in flight and may finish; no step may start after it. Cancelling from the step hook, not from the
	// test's goroutine, keeps the count exact however fast the steps run.
	const cancelAt = 3
	steps := 0
	e.onStep = func([]llama.Step) {
		if steps++; steps == cancelAt {
			cancel()
		}
	}
	h, err := e.Submit(ctx, Request{Prompt: []int32{1, 2, 3}, Params: greedyParams(200)})
	if err != nil {
		t.Fatal(err)
	}
	_, fin := collect(t, h)
	if fin.Reason != sample.FinishCancelled {
		t.Fatalf("finish %v after cancel, want cancelled", fin.Reason)
	}
	if after := fin.Stats.GeneratedTokens - cancelAt; after > 0 {
		t.Errorf("%d tokens were generated after the step in flight at the cancel; generation should stop within one step", after)
	}
	deadline := time.Now().Add(2 * time.Second)
	for e.Pool().InUse() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if in := e.Pool().InUse(); in != 0 {
		t.Fatalf("%d KV pages in use after the cancelled sequence ended", in)
	}
}

func TestSubmitRejectsBadRequests(t *testing.T) {
	m := tinyModel(t, false)
	e, err := New(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	long := make([]int32, 250)
	bad := []struct {
		name string
		req  Request
	}{
		{"empty prompt", Request{Prompt: nil, Params: greedyParams(4)}},
		{"id over vocab", Request{Prompt: []int32{1, int32(m.Vocab)}, Params: greedyParams(4)}},
		{"negative id", Request{Prompt: []int32{-1}, Params: greedyParams(4)}},
		{"max tokens 0", Request{Prompt: []int32{1}, Params: greedyParams(0)}},
		{"over context", Request{Prompt: long, Params: greedyParams(10)}},
		{"bad temperature", Request{Prompt: []int32{1}, Params: sample.Params{Temperature: -1, TopP: 1, RepetitionPenalty: 1, MaxTokens: 3}}},
	}
	for _, tc := range bad {
		if _, err := e.Submit(context.Background(), tc.req); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// The engine still works.
	h, err := e.Submit(context.Background(), Request{Prompt: []int32{1}, Params: greedyParams(2)})
	if err != nil {
		t.Fatal(err)
	}
	if toks, fin := collect(t, h); len(toks) != 2 || fin.Err != nil {
		t.Fatalf("after bad requests: %v %v", toks, fin.Err)
	}
}

func TestMemoryAdmissionWaitsForPages(t *testing.T) {
	for _, okv := range []bool{false, true} {
		t.Run(map[bool]string{false: "dense", true: "omnikv"}[okv], func(t *testing.T) { testMemoryAdmission(t, okv) })
	}
}

// testMemoryAdmission: with room for one sequence at a time, three wait their turn and complete; with
// OmniKV the staging of the sparse layers is reserved at admission too, so a sequence never fails in the
// middle of its decode for want of staging pages.
func testMemoryAdmission(t *testing.T, okv bool) {
	m := tinyModel(t, false)
	limit := 16 // room for one sequence of 64 tokens at a time: 4 layers x 4 pages of 16
	if okv {
		// Filter layer 1, no wait layers: 2 resident and 2 sparse layers. A sequence of 62 tokens holds 4
		// pages of each layer (8 resident) and staging for 3 selected + 60 generated tokens in each
		// sparse layer (4 pages each: 8 resident): 16 resident pages.
		cfg := omnikv.Config{Enabled: true, FilterLayers: []int{1}, Selector: omnikv.Last, Budget: omnikv.Budget{Tokens: 3}}
		if err := m.SetOmniKV(cfg); err != nil {
			t.Fatal(err)
		}
	}
	e, err := New(m, Options{PageSize: 16, MaxKVPages: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := e.Submit(context.Background(), Request{Prompt: []int32{1, int32(i + 3)}, Params: greedyParams(60)})
			if err != nil {
				errs <- err
				return
			}
			if toks, fin := collect(t, h); len(toks) != 60 || fin.Err != nil {
				errs <- errors.Join(fin.Err, errors.New("short output"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if e.Pool().InUse() != 0 {
		t.Fatalf("%d pages in use after every sequence ended", e.Pool().InUse())
	}
	// A sequence that can never fit fails with a clear error instead of waiting forever.
	h, err := e.Submit(context.Background(), Request{Prompt: []int32{1}, Params: greedyParams(100)})
	if err != nil {
		t.Fatal(err)
	}
	if _, fin := collect(t, h); !errors.Is(fin.Err, kvcache.ErrNoMemory) {
		t.Fatalf("oversized sequence: err %v, want ErrNoMemory", fin.Err)
	}
}

func TestCloseCancelsRunning(t *testing.T) {
	m := tinyModel(t, false)
	e, err := New(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.Submit(context.Background(), Request{Prompt: []int32{1}, Params: greedyParams(250)})
	if err != nil {
		t.Fatal(err)
	}
	<-h.Events()
	e.Close()
	if _, fin := collect(t, h); fin.Reason != sample.FinishCancelled && fin.Reason != sample.FinishLength {
		t.Fatalf("after Close: %v", fin.Reason)
	}
	if _, err := e.Submit(context.Background(), Request{Prompt: []int32{1}, Params: greedyParams(2)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
}

// A session continues its sequence turn after turn; the third turn's greedy answer equals stateless
// generation over the concatenated conversation (prompts and answers, EOS included).
func TestSessionTurnsEqualStateless(t *testing.T) {
	for _, okv := range []bool{false, true} {
		t.Run(map[bool]string{false: "dense", true: "omnikv"}[okv], func(t *testing.T) { testSessionTurns(t, okv) })
	}
}

func testSessionTurns(t *testing.T, okv bool) {
	m := tinyModel(t, false)
	if okv { // a budget of 6 of the context: answers differ from dense, but sessions and stateless agree
		cfg := omnikv.Config{Enabled: true, FilterLayers: []int{1}, WaitLayers: 0, Selector: omnikv.Last, Budget: omnikv.Budget{Tokens: 6}}
		if err := m.SetOmniKV(cfg); err != nil {
			t.Fatal(err)
		}
	}
	e, err := New(m, Options{PageSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	seq := e.NewSequence()
	defer seq.Release()
	turns := [][]int32{{1, 20, 30, 40}, {50, 60}, {70, 80, 90}}
	var conv, pending []int32
	var last []int32
	for i, turn := range turns {
		prompt := append(append([]int32(nil), pending...), turn...)
		h, err := e.Submit(context.Background(), Request{Prompt: prompt, Params: greedyParams(6), Seq: seq})
		if err != nil {
			t.Fatal(err)
		}
		out, fin := collect(t, h)
		if fin.Err != nil || len(out) != 6 {
			t.Fatalf("turn %d: %v %v", i, out, fin.Err)
		}
		conv = append(append(conv, turn...), out...)
		pending, last = out[len(out)-1:], out
		if seq.Len() != len(conv)-1 {
			t.Fatalf("turn %d: cache holds %d tokens, the conversation has %d (all but the last generated)", i, seq.Len(), len(conv))
		}
	}
	stateless := conv[:len(conv)-len(last)]
	h, err := e.Submit(context.Background(), Request{Prompt: stateless, Params: greedyParams(6)})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := collect(t, h); !slices.Equal(last, want) {
		t.Fatalf("turn 3 answer %v, stateless over the conversation %v", last, want)
	}
}

// TestPrefillInterleavesWithDecode: while sequences decode, a long prompt arrives; it is prefilled in chunks
// that the budget bounds (every decoding sequence gets a token in every step, and a step's prompt tokens
// cost at most (PrefillStretch-1) times its decode part), and it still completes and answers. With nothing
// decoding, a prompt takes whole steps.
func TestPrefillInterleavesWithDecode(t *testing.T) {
	m := tinyModel(t, false)
	e, err := New(m, Options{MaxSequences: 8, StepTokens: 64, PrefillStretch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	type stepInfo struct {
		decode, prefill, chunks int
		decodeCost, prefillCost float64 // by the engine's cost model
		firstCost               float64 // the first prompt token's (a prompt always advances by one)
	}
	var mu sync.Mutex
	var log []stepInfo
	e.onStep = func(steps []llama.Step) {
		var si stepInfo
		for _, s := range steps {
			if s.Decode {
				si.decode++
				si.decodeCost += e.tokenCost(s.Seq.Len(), decodeAttnFactor)
				continue
			}
			for j := range s.Tokens {
				c := e.tokenCost(s.Seq.Len()+j, prefillAttnFactor)
				if si.prefill == 0 {
					si.firstCost = c
				}
				si.prefillCost += c
				si.prefill++
			}
			si.chunks++
		}
		mu.Lock()
		log = append(log, si)
		mu.Unlock()
	}
	// Alone, a 150-token prompt goes in whole steps of StepTokens.
	h, err := e.Submit(context.Background(), Request{Prompt: make([]int32, 150), Params: greedyParams(2)})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, h)
	mu.Lock()
	if log[0].prefill != 64 || log[0].decode != 0 {
		t.Fatalf("first step alone: %+v, want 64 prompt tokens", log[0])
	}
	log = log[:0]
	mu.Unlock()

	const decoders, long = 6, 200
	var hs []*Handle
	for i := 0; i < decoders; i++ {
		h, err := e.Submit(context.Background(), Request{Prompt: []int32{int32(1 + i), 2, 3}, Params: greedyParams(120)})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	for { // wait until all decode
		mu.Lock()
		n := len(log)
		ready := n > 0 && log[n-1].decode == decoders
		mu.Unlock()
		if ready {
			break
		}
		time.Sleep(time.Millisecond)
	}
	lh, err := e.Submit(context.Background(), Request{Prompt: make([]int32, long), Params: greedyParams(3)})
	if err != nil {
		t.Fatal(err)
	}
	toks, ev := collect(t, lh)
	if ev.Err != nil || len(toks) != 3 {
		t.Fatalf("the long prompt: %d tokens, %v", len(toks), ev.Err)
	}
	for _, h := range hs {
		h.Cancel()
		collect(t, h)
	}
	mu.Lock()
	defer mu.Unlock()
	mixed, fed := 0, 0
	for _, si := range log {
		if si.prefill == 0 {
			continue
		}
		fed += si.prefill
		if si.decode == 0 {
			continue
		}
		mixed++
		// Stretch 2: the prompt tokens cost at most 2*max(decode part, bandwidth floor) - decode part, but for
		// the one token that always goes; and every prompt token costs at least one unit, so there are at
		// most that many.
		lim := 2*max(si.decodeCost, bandwidthTokens) - si.decodeCost
		if si.prefillCost > lim+1e-9 && si.prefillCost-si.firstCost > 1e-9 {
			t.Errorf("a step with %d decoding sequences (cost %.2f) carried %d prompt tokens of cost %.2f", si.decode, si.decodeCost, si.prefill, si.prefillCost)
		}
		if float64(si.prefill) > lim+1 {
			t.Errorf("a step with %d decoding sequences (cost %.2f) carried %d prompt tokens", si.decode, si.decodeCost, si.prefill)
		}
	}
	if mixed < long/decoders-1 || fed < long {
		t.Fatalf("%d mixed steps fed %d prompt tokens; want the %d-token prompt spread over >= %d steps", mixed, fed, long, long/decoders-1)
	}
	t.Logf("%d steps carried prompt chunks beside decoding sequences", mixed)
}

// panicDevice is the CPU device with an Attend that panics while armed (a programming error in a device).
type panicDevice struct {
	*cpu.Device
	armed atomic.Bool
}

func (d *panicDevice) Attend(a *compute.Attention) {
	if d.armed.Load() {
		panic("attend: planted failure")
	}
	d.Device.Attend(a)
}

// A panic inside a step fails that step's sequences with an error naming it; the engine goes on serving.
func TestPanicInStepFailsTheStep(t *testing.T) {
	dir := t.TempDir()
	if err := tinymodel.Write(dir, tinymodel.TinyLlamaF32); err != nil {
		t.Fatal(err)
	}
	dev := &panicDevice{Device: cpu.New()}
	m, err := llama.Load(dir, dev, llama.Options{MaxContext: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.EOS = nil
	e, err := New(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dev.armed.Store(true)
	h, err := e.Submit(context.Background(), Request{Prompt: []int32{1, 2, 3}, Params: greedyParams(4)})
	if err != nil {
		t.Fatal(err)
	}
	if toks, ev := collect(t, h); ev.Err == nil || !strings.Contains(ev.Err.Error(), "planted failure") || len(toks) != 0 {
		t.Fatalf("with a panicking device: %d tokens, error %v", len(toks), ev.Err)
	}
	dev.armed.Store(false)
	h, err = e.Submit(context.Background(), Request{Prompt: []int32{1, 2, 3}, Params: greedyParams(4)})
	if err != nil {
		t.Fatal(err)
	}
	if toks, ev := collect(t, h); ev.Err != nil || len(toks) != 4 {
		t.Fatalf("after the panic: %d tokens, error %v", len(toks), ev.Err)
	}
	if e.Pool().InUse() != 0 {
		t.Fatalf("%d KV pages still in use", e.Pool().InUse())
	}
}
