package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/engine"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
)

// batchResult is one (mode, batch size, context) of a batch benchmark. The work fields let a report compute
// the step's bound: max(bytes read / bandwidth, FLOPs / peak).
type batchResult struct {
	Mode           string  `json:"mode"`
	Batch          int     `json:"batch"`
	Context        int     `json:"context"`
	DecodeMSStep   float64 `json:"decode_ms_per_step"` // median over the timed steps
	DecodeMSStepHi float64 `json:"decode_ms_per_step_p90"`
	DecodeTokS     float64 `json:"decode_tokens_per_s"` // aggregate: batch / median step time
	Steps          int     `json:"steps"`
	WeightBytes    int64   `json:"weight_bytes_per_step"` // every matrix read once
	KVBytes        int64   `json:"kv_bytes_per_step"`     // the KV every sequence's attention reads (dense: all of it)
	FLOPs          float64 `json:"flops_per_step"`        // weights and attention
	PrefillTokS    float64 `json:"prefill_tokens_per_s,omitempty"`
	// The step's floor (see benchfloor.go): KV read is mode-aware (OmniKV: dense layers plus selections).
	FloorMS     float64 `json:"floor_ms_per_step"`
	KVRead      int64   `json:"kv_bytes_read_per_step"`
	Fetched     int64   `json:"kv_bytes_fetched_per_step"`
	MemGBps     float64 `json:"floor_mem_gb_s"`
	LinkGBps    float64 `json:"floor_link_gb_s"` // 0: fetches not counted
	DeviceBytes int64   `json:"device_bytes"`    // device memory held (-1: unknown; 0 on cpu)
	RSSBytes    int64   `json:"rss_bytes"`
}

// batches measures decoding with batch sequences per forward call: each sequence is prefilled with its own
// prompt (filler text at its own offset), then every step feeds all of them one token. With repeats, the
// batch sizes run round-robin that many times and each size's steps are pooled (median), so that a burst
// of other load on the machine does not land on one size only.
func (b *bench) batches(sizes, contexts []int, modes []string) error {
	if !b.asJSON {
		fmt.Printf("%-7s %6s %8s %14s %12s %16s %9s %10s %10s\n", "mode", "batch", "context", "ms/step p50", "ms/step p90", "tokens/s (all)",
			"floor ms", "RSS MiB", "device MiB")
	}
	for _, c := range contexts {
		for _, mode := range modes {
			res := make([]*batchResult, len(sizes))
			times := make([][]float64, len(sizes))
			for r := 0; r < b.repeat; r++ {
				for i, n := range sizes {
					br, t, err := b.batch(n, c, mode)
					if err != nil {
						return err
					}
					if res[i] == nil {
						res[i] = br
					}
					times[i] = append(times[i], t...)
				}
			}
			for i, r := range res {
				med := median(times[i])
				r.DecodeMSStep, r.DecodeMSStepHi, r.Steps = med, percentile(times[i], 0.9), len(times[i])
				r.DecodeTokS = float64(r.Batch) / med * 1000
				if b.asJSON {
					out, _ := json.Marshal(r)
					fmt.Println(string(out))
					continue
				}
				fmt.Printf("%-7s %6d %8d %14.2f %12.2f %16.1f %9.2f %10s %10s\n", mode, r.Batch, c, r.DecodeMSStep, r.DecodeMSStepHi, r.DecodeTokS,
					r.FloorMS, mib(r.RSSBytes), mib(r.DeviceBytes))
			}
		}
	}
	return nil
}

// batch prefills n sequences of c tokens and times decodeN steps of all of them; it returns the result
// (timing fields unset) and the step times in ms.
func (b *bench) batch(n, c int, mode string) (*batchResult, []float64, error) {
	m := b.m
	pool, err := kvcache.NewPool(m.Device(), b.kvCfg)
	if err != nil {
		return nil, nil, err
	}
	defer pool.Close()
	st, err := m.NewState(max(n, b.chunk), n)
	if err != nil {
		return nil, nil, err
	}
	defer st.Free(m)
	if err := b.setMode(mode); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "  %s, batch %d, context %d: prefill ...", mode, n, c)
	seqs := make([]*llama.Sequence, n)
	t0 := time.Now()
	for i := range seqs {
		seqs[i] = llama.NewSequence(pool, c+b.decodeN+1)
		if err := b.fill(st, seqs[i], c, 7*i%64); err != nil {
			return nil, nil, err
		}
	}
	prefill := time.Since(t0).Seconds()
	fmt.Fprintf(os.Stderr, " %.2f s, decode ...", prefill)
	defer func() {
		for _, s := range seqs {
			s.Release()
		}
	}()
	steps := make([]llama.Step, n)
	next := make([]int32, n)
	for i := range steps {
		next[i] = b.ids[c+7*i%64]
		steps[i] = llama.Step{Seq: seqs[i], Tokens: next[i : i+1], Decode: true, GenLimit: b.decodeN}
	}
	var logits []float32
	times := make([]float64, 0, b.decodeN)
	for k := 0; k < b.decodeN; k++ {
		t := time.Now()
		if _, err := m.Forward(st, steps); err != nil {
			return nil, nil, err
		}
		logits = m.ReadLogits(st, logits)
		for i := range next {
			next[i] = argmax(logits[i*m.Vocab : (i+1)*m.Vocab])
		}
		times = append(times, ms(time.Since(t)))
	}
	fmt.Fprintf(os.Stderr, " done\n")
	r := &batchResult{Mode: mode, Batch: n, Context: c}
	if !b.synthetic {
		r.PrefillTokS = float64(n*c) / prefill
	}
	// The work of a step at the middle of the timed decode.
	ctx := int64(c + b.decodeN/2)
	kvRow := kvRowBytes(m, b.kvCfg)
	r.WeightBytes = m.WeightBytes()
	r.KVBytes = int64(n) * ctx * int64(m.Layers) * kvRow
	r.FLOPs = float64(n) * (2*float64(m.WeightMACs()) + 4*float64(m.Heads*m.HeadDim*m.Layers)*float64(ctx))
	w := workOf(m, kvRow, mode, int(ctx), b.decodeN/2, seqs)
	r.KVRead, r.Fetched = w.KVRead, w.Fetched
	r.FloorMS, r.MemGBps, r.LinkGBps = b.bw.floorMS(w), b.bw.Mem, b.bw.Link
	r.DeviceBytes, r.RSSBytes = deviceMemory(m.Device()), rss()
	return r, times, nil
}

// interferenceResult is the scheduler benchmark: batch streams decode; a long prompt arrives.
type interferenceResult struct {
	Batch        int     `json:"batch"`
	Context      int     `json:"context"`
	Prompt       int     `json:"interfere_prompt"`
	ITLP50Base   float64 `json:"itl_p50_ms_without"` // the streams' inter-token times over the window, without the prompt
	ITLP99Base   float64 `json:"itl_p99_ms_without"`
	ITLP50During float64 `json:"itl_p50_ms_during"` // over the same window while the prompt is prefilled
	ITLP99During float64 `json:"itl_p99_ms_during"`
	P99Ratio     float64 `json:"itl_p99_ratio"`
	P50Ratio     float64 `json:"itl_p50_ratio"`
	TTFTSeconds  float64 `json:"interfere_ttft_s"` // the long prompt's time to first token
	Window       int     `json:"window_tokens"`    // tokens per stream in the compared window
	Warm         int     `json:"warm_tokens"`      // tokens per stream before the window
}

// interference runs batch streams through the engine's scheduler; once each has produced warm tokens, a
// prompt of promptLen tokens arrives, and the streams' inter-token times until its first token are
// compared with a second run without it over the same tokens of each stream (so that the streams' own
// contexts, which grow as they decode, are the same in both): the scheduler interleaves the prompt's chunks
// with the decode steps.
func (b *bench) interference(sizes, contexts []int, promptLen int, mode string) error {
	if err := b.setMode(mode); err != nil {
		return err
	}
	for _, c := range contexts {
		for _, n := range sizes {
			r, err := b.interfere(n, c, promptLen)
			if err != nil {
				return err
			}
			if b.asJSON {
				out, _ := json.Marshal(r)
				fmt.Println(string(out))
				continue
			}
			fmt.Printf("batch %d, context %d, a %d-token prompt arrives: inter-token p50 %.2f -> %.2f ms, p99 %.2f -> %.2f ms (x%.2f) over %d tokens per stream; its TTFT %.2f s\n",
				n, c, promptLen, r.ITLP50Base, r.ITLP50During, r.ITLP99Base, r.ITLP99During, r.P99Ratio, r.Window, r.TTFTSeconds)
		}
	}
	return nil
}

const interfereWarm = 64 // tokens each stream produces before the prompt arrives

func (b *bench) interfere(n, c, promptLen int) (*interferenceResult, error) {
	fmt.Fprintf(os.Stderr, "  batch %d, context %d, with a %d-token prompt arriving ...", n, c, promptLen)
	during, window, ttft, err := b.streams(n, c, promptLen, 0)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, " %d tokens per stream until its first token (%.1f s); again without it ...", window, ttft)
	base, _, _, err := b.streams(n, c, 0, window)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, " done\n")
	r := &interferenceResult{Batch: n, Context: c, Prompt: promptLen, Window: window, Warm: interfereWarm, TTFTSeconds: ttft,
		ITLP50Base: median(base), ITLP99Base: percentile(base, 0.99), ITLP50During: median(during), ITLP99During: percentile(during, 0.99)}
	if r.ITLP99Base > 0 && r.ITLP50Base > 0 {
		r.P99Ratio, r.P50Ratio = r.ITLP99During/r.ITLP99Base, r.ITLP50During/r.ITLP50Base
	}
	return r, nil
}

// streams runs n streams of c-token prompts through a fresh engine. With promptLen > 0, once every stream
// has interfereWarm tokens a prompt of promptLen tokens arrives; the run ends at its first token and returns
// the streams' inter-token gaps since it arrived, the fewest tokens a stream made meanwhile (the window) and
// the prompt's time to first token. With promptLen 0, the run ends once every stream has interfereWarm +
// window tokens and returns the gaps of tokens interfereWarm .. interfereWarm+window.
func (b *bench) streams(n, c, promptLen, window int) (gaps []float64, made int, ttft float64, err error) {
	eng, err := engine.New(b.m, engine.Options{MaxSequences: n + 1, KVDType: b.kvCfg.DType, OffloadDir: b.kvCfg.OffloadDir, SparseResident: b.kvCfg.SparseResident})
	if err != nil {
		return nil, 0, 0, err
	}
	defer eng.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	params := sample.DefaultParams()
	// The streams must outlast the prompt's prefill; their KV is reserved at admission.
	params.Temperature, params.MaxTokens = 0, min(b.m.MaxContext-c-1, 4096)
	type tick struct {
		stream int
		at     time.Time // zero: the stream ended
	}
	ticks := make(chan tick, 1<<16)
	var hs []*engine.Handle
	for i := 0; i < n; i++ {
		off := 7 * i % 64
		h, err := eng.Submit(ctx, engine.Request{Prompt: b.ids[off : off+c], Params: params, IgnoreEOS: true})
		if err != nil {
			return nil, 0, 0, err
		}
		hs = append(hs, h)
		go func(i int, h *engine.Handle) {
			for ev := range h.Events() {
				if !ev.Done {
					ticks <- tick{i, time.Now()}
				} else if ev.Reason != sample.FinishCancelled {
					ticks <- tick{i, time.Time{}}
				}
			}
		}(i, h)
	}
	defer func() {
		cancel()
		for _, h := range hs {
			for range h.Events() {
			}
		}
	}()
	times := make([][]time.Time, n)
	var tSubmit time.Time
	at := make([]int, n) // each stream's token count when the prompt arrived
	firstToken := make(chan time.Time, 1)
	for {
		select {
		case t := <-ticks:
			if t.at.IsZero() {
				return nil, 0, 0, fmt.Errorf("a stream ended before the measurement did (prompt %d tokens, window %d)", promptLen, window)
			}
			times[t.stream] = append(times[t.stream], t.at)
			least := len(times[0])
			for _, ts := range times {
				least = min(least, len(ts))
			}
			if promptLen > 0 && tSubmit.IsZero() && least >= interfereWarm {
				tSubmit = time.Now()
				for i := range at {
					at[i] = len(times[i])
				}
				lp := sample.DefaultParams()
				lp.Temperature, lp.MaxTokens = 0, 1
				h, err := eng.Submit(ctx, engine.Request{Prompt: b.ids[64 : 64+promptLen], Params: lp, IgnoreEOS: true})
				if err != nil {
					return nil, 0, 0, err
				}
				hs = append(hs, h)
				go func() {
					for ev := range h.Events() {
						if !ev.Done {
							firstToken <- time.Now()
						}
					}
				}()
			}
			if promptLen == 0 && least >= interfereWarm+window {
				for _, ts := range times {
					gaps = appendGaps(gaps, ts[interfereWarm:interfereWarm+window])
				}
				return gaps, window, 0, nil
			}
		case t1 := <-firstToken:
			made = len(times[0])
			for i, ts := range times {
				made = min(made, len(ts)-at[i])
			}
			for i, ts := range times {
				gaps = appendGaps(gaps, ts[at[i]:at[i]+made])
			}
			return gaps, made, t1.Sub(tSubmit).Seconds(), nil
		}
	}
}

// appendGaps appends the gaps between consecutive times, in ms.
func appendGaps(gaps []float64, ts []time.Time) []float64 {
	for i := 1; i < len(ts); i++ {
		gaps = append(gaps, ms(ts[i].Sub(ts[i-1])))
	}
	return gaps
}

// percentile returns the p-quantile (nearest rank) of v.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}
