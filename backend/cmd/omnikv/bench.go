package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// benchResult is one context length's figures.
type benchResult struct {
	Context        int     `json:"context"`
	PrefillTokS    float64 `json:"prefill_tokens_per_s"`
	PrefillMS      float64 `json:"prefill_ms"`
	DecodeMSPerTok float64 `json:"decode_ms_per_token"` // median over the decode steps of all repeats
	DecodeTokens   int     `json:"decode_tokens"`
	KVBytes        int64   `json:"kv_bytes"`
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
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 64, DType: kvdt})
	if err != nil {
		return err
	}
	st := m.NewState(*chunk, 1)
	if !*asJSON {
		fmt.Printf("%-8s %14s %12s %16s %10s %10s\n", "context", "prefill tok/s", "prefill ms", "decode ms/token", "KV MiB", "RSS MiB")
	}
	for _, c := range contexts {
		var prefills []float64
		var steps []float64
		var kvBytes int64
		for r := 0; r < *repeat; r++ {
			fmt.Fprintf(os.Stderr, "  context %d, run %d/%d: prefill ...", c, r+1, *repeat)
			seq := pool.NewSequence(c + *decodeN)
			t0 := time.Now()
			for at := 0; at < c; at += *chunk {
				n := min(*chunk, c-at)
				if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: ids[at : at+n]}}); err != nil {
					return err
				}
			}
			prefills = append(prefills, time.Since(t0).Seconds())
			fmt.Fprintf(os.Stderr, " %.2f s, decode ...", prefills[len(prefills)-1])
			next := []int32{ids[c]}
			for i := 0; i < *decodeN; i++ {
				t := time.Now()
				if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: next}}); err != nil {
					return err
				}
				steps = append(steps, ms(time.Since(t)))
				next[0] = argmax(st.Logits.Row(0))
			}
			fmt.Fprintf(os.Stderr, " done\n")
			kvBytes = int64(pool.InUse()) * int64(pool.PageBytes())
			seq.Release()
		}
		res := benchResult{
			Context: c, PrefillMS: median(prefills) * 1000, PrefillTokS: float64(c) / median(prefills),
			DecodeMSPerTok: median(steps), DecodeTokens: *decodeN, KVBytes: kvBytes, RSSBytes: rss(),
		}
		if *asJSON {
			b, _ := json.Marshal(res)
			fmt.Println(string(b))
		} else {
			fmt.Printf("%-8d %14.1f %12.1f %16.2f %10.1f %10.1f\n", c, res.PrefillTokS, res.PrefillMS, res.DecodeMSPerTok,
				float64(kvBytes)/(1<<20), float64(res.RSSBytes)/(1<<20))
		}
	}
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
