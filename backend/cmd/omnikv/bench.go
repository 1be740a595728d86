package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// benchResult is one context length's figures.
type benchResult struct {
	Mode           string  `json:"mode"` // dense or omnikv
	Context        int     `json:"context"`
	PrefillTokS    float64 `json:"prefill_tokens_per_s"`
	PrefillMS      float64 `json:"prefill_ms"`
	DecodeMSPerTok float64 `json:"decode_ms_per_token"` // median over the decode steps of all repeats
	DecodeTokens   int     `json:"decode_tokens"`
	KVBytes        int64   `json:"kv_bytes"`          // every layer's KV
	ResidentKV     int64   `json:"resident_kv_bytes"` // KV in fast memory: dense layers + staging (omnikv); all (dense)
	RowsPerStep    float64 `json:"rows_fetched_per_step,omitempty"`
	RSSBytes       int64   `json:"rss_bytes"`
}

const filler = "The quick brown fox jumps over the lazy dog while the committee reviews the annual report on " +
	"river levels, grain prices and the history of lighthouses along the northern coast. "

func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	model := fs.String("model", "", "a .gguf file or a Hugging Face model directory")
	ctxList := fs.String("context", "128,2048,8192", "comma-separated context lengths (prompt tokens)")
	decodeN := fs.Int("decode-tokens", 32, "decode steps timed after each prefill")
	repeat := fs.Int("repeat", 1, "repeats per context (medians reported)")
	chunk := fs.Int("chunk", 256, "prefill chunk (tokens per forward call)")
	kvDType := fs.String("kv-dtype", "fp16", "KV cache element type: fp16 or fp32")
	asJSON := fs.Bool("json", false, "print one JSON object per context")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	modes := fs.String("modes", "dense,omnikv", "decode modes measured after each prefill: dense, omnikv or both")
	synthetic := fs.Bool("synthetic-kv", false, "fill the KV cache with random rows instead of running the prefill (decode timing at long contexts without the O(n^2) CPU prefill; prefill figures are then not measured)")
	okv := addOKVFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var contexts []int
	for _, f := range strings.Split(*ctxList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("--context: bad length %q", f)
		}
		contexts = append(contexts, n)
	}
	if *decodeN <= 0 || *repeat <= 0 || *chunk <= 0 {
		return fmt.Errorf("--decode-tokens, --repeat and --chunk must be > 0")
	}
	kvdt, err := compute.ParseKVDType(*kvDType)
	if err != nil {
		return fmt.Errorf("--kv-dtype: %w", err)
	}
	maxCtx := slices.Max(contexts) + *decodeN
	m, tok, err := loadModel(*model, 0, false)
	if err != nil {
		return err
	}
	defer m.Close()
	if maxCtx > m.MaxContext {
		m.Close()
		if m, tok, err = loadModel(*model, maxCtx, true); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "  context raised to %d for the benchmark (beyond the trained length)\n", maxCtx)
	}
	ids, err := fillerIDs(tok, maxCtx)
	if err != nil {
		return err
	}
	var wantDense, wantOKV bool
	for _, mode := range strings.Split(*modes, ",") {
		switch strings.TrimSpace(mode) {
		case "dense":
			wantDense = true
		case "omnikv":
			wantOKV = true
		default:
			return fmt.Errorf("--modes: unknown mode %q (want dense, omnikv)", mode)
		}
	}
	okvCfg, err := okv.config(m.Layers)
	if err != nil {
		return err
	}
	if !okvCfg.Enabled {
		wantOKV = false
		wantDense = true
	}
	// One prefill per context serves both modes: the cache is laid out for OmniKV (sparse layers in the
	// offload tier), and the dense run simply attends to every page.
	if wantOKV {
		if err := m.SetOmniKV(okvCfg); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "  omnikv: %v\n", okvCfg)
	}
	store, closeStore, err := okv.store()
	if err != nil {
		return err
	}
	defer closeStore()
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 64, DType: kvdt, Offload: m.OffloadLayers(), Store: store})
	if err != nil {
		return err
	}
	st := m.NewState(*chunk, 1)
	if !*asJSON {
		fmt.Printf("%-7s %-8s %14s %12s %16s %10s %12s %10s\n", "mode", "context", "prefill tok/s", "prefill ms", "decode ms/token", "KV MiB", "resident MiB", "RSS MiB")
	}
	for _, c := range contexts {
		var prefills []float64
		steps := map[string][]float64{}
		res := map[string]*benchResult{}
		for r := 0; r < *repeat; r++ {
			fmt.Fprintf(os.Stderr, "  context %d, run %d/%d: prefill ...", c, r+1, *repeat)
			seq := pool.NewSequence(c + *decodeN)
			t0 := time.Now()
			if *synthetic {
				if err := fillRandomKV(m, seq, c); err != nil {
					return err
				}
			} else {
				for at := 0; at < c; at += *chunk {
					n := min(*chunk, c-at)
					if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: ids[at : at+n]}}); err != nil {
						return err
					}
				}
			}
			prefills = append(prefills, time.Since(t0).Seconds())
			fmt.Fprintf(os.Stderr, " %.2f s", prefills[len(prefills)-1])
			for _, mode := range []string{"dense", "omnikv"} {
				if (mode == "dense" && !wantDense) || (mode == "omnikv" && !wantOKV) {
					continue
				}
				fmt.Fprintf(os.Stderr, ", %s decode ...", mode)
				if mode == "dense" {
					if err := m.SetOmniKV(omnikv.Config{}); err != nil {
						return err
					}
				} else if err := m.SetOmniKV(okvCfg); err != nil {
					return err
				}
				seq.Truncate(c)
				seq.Aux = nil // a fresh turn: every cached token is context
				next := []int32{ids[c]}
				for i := 0; i < *decodeN; i++ {
					t := time.Now()
					if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: next, Decode: true}}); err != nil {
						return err
					}
					steps[mode] = append(steps[mode], ms(time.Since(t)))
					next[0] = argmax(st.Logits.Row(0))
				}
				all := int64(pool.InUse()) * int64(pool.PageBytes())
				b := &benchResult{Mode: mode, Context: c, DecodeTokens: *decodeN, KVBytes: all, ResidentKV: all}
				if mode == "omnikv" {
					b.ResidentKV = int64(pool.Resident()) * int64(pool.PageBytes())
					sel := llama.Selection(seq)
					b.RowsPerStep = float64(sel.RowsFetched) / float64(max(1, sel.Steps))
				}
				res[mode] = b
			}
			fmt.Fprintf(os.Stderr, " done\n")
			seq.Release()
		}
		for _, mode := range []string{"dense", "omnikv"} {
			b := res[mode]
			if b == nil {
				continue
			}
			if !*synthetic {
				b.PrefillMS, b.PrefillTokS = median(prefills)*1000, float64(c)/median(prefills)
			}
			b.DecodeMSPerTok, b.RSSBytes = median(steps[mode]), rss()
			if *asJSON {
				out, _ := json.Marshal(b)
				fmt.Println(string(out))
				continue
			}
			fmt.Printf("%-7s %-8d %14.1f %12.1f %16.2f %10.1f %12.1f %10.1f\n", mode, c, b.PrefillTokS, b.PrefillMS, b.DecodeMSPerTok,
				float64(b.KVBytes)/(1<<20), float64(b.ResidentKV)/(1<<20), float64(b.RSSBytes)/(1<<20))
		}
	}
	return nil
}

// fillRandomKV stores n tokens of random keys and values (normal, unit variance) in every layer of seq.
func fillRandomKV(m *llama.Model, seq *kvcache.Sequence, n int) error {
	const block = 256
	d := m.Device()
	r := rand.New(rand.NewPCG(1, uint64(n)))
	host := make([]float32, block*m.KVDim())
	k, v := d.NewTensor(block, m.KVDim()), d.NewTensor(block, m.KVDim())
	if err := seq.Reserve(n); err != nil {
		return err
	}
	for at := 0; at < n; at += block {
		cnt := min(block, n-at)
		for _, t := range []*compute.Tensor{k, v} {
			for i := range host {
				host[i] = float32(r.NormFloat64())
			}
			copy(t.F32, host) // CPU device; other devices would Upload
		}
		for l := 0; l < m.Layers; l++ {
			d.WriteKV(seq.Pages(l), seq.PageSize(), at, k, v, 0, cnt)
		}
	}
	seq.Commit(n)
	return nil
}

// fillerIDs returns n token ids of English filler text.
func fillerIDs(tok *tokenizer.Tokenizer, n int) ([]int32, error) {
	one, err := tok.Encode(filler, false)
	if err != nil || len(one) == 0 {
		return nil, fmt.Errorf("tokenizing the filler text: %v", err)
	}
	ids := make([]int32, 0, n+len(one))
	for len(ids) < n+1 {
		ids = append(ids, one...)
	}
	return ids[:n+1], nil
}

func argmax(v []float32) int32 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int32(best)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rss returns the process's resident memory in bytes (Linux), or 0.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
