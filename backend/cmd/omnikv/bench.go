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
	"github.com/omnikv-triton/omnikv-triton/backend/llama/synth"
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
	// The step's floor (see benchfloor.go) and what it is made of.
	FloorMS     float64 `json:"floor_ms_per_token"`
	WeightBytes int64   `json:"weight_bytes_per_step"`
	KVRead      int64   `json:"kv_bytes_read_per_step"`
	Fetched     int64   `json:"kv_bytes_fetched_per_step"`
	MemGBps     float64 `json:"floor_mem_gb_s"`
	LinkGBps    float64 `json:"floor_link_gb_s"` // 0: fetches not counted
	DeviceBytes int64   `json:"device_bytes"`    // device memory held (-1: unknown; 0 on cpu, see rss_bytes)
}

const filler = "The quick brown fox jumps over the lazy dog while the committee reviews the annual report on " +
	"river levels, grain prices and the history of lighthouses along the northern coast. "

func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	model := fs.String("model", "", "a .gguf file or a Hugging Face model directory")
	synthModel := fs.String("synthetic-model", "", "instead of --model, a model of this shape with synthetic weights built in memory: "+
		strings.Join(synth.ShapeNames(), ", ")+", with :TYPE bf16 (default), f16, f32, q8_0, q4 (q4_0), q4_1 or q4k, e.g. llama3-8b:q4")
	device := addDeviceFlag(fs)
	ctxList := fs.String("context", "128,2048,8192", "comma-separated context lengths (prompt tokens)")
	decodeN := fs.Int("decode-tokens", 32, "decode steps timed after each prefill")
	repeat := fs.Int("repeat", 1, "repeats per context (medians reported)")
	chunk := fs.Int("chunk", 256, "prefill chunk (tokens per forward call)")
	kvDType := fs.String("kv-dtype", "fp16", "KV cache element type: fp16 or fp32")
	asJSON := fs.Bool("json", false, "print one JSON object per context (per batch size with --batch)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	modes := fs.String("modes", "dense,omnikv", "decode modes measured after each prefill: dense, omnikv or both (with --batch: dense unless set)")
	synthetic := fs.Bool("synthetic-kv", false, "fill the KV cache with random rows instead of running the prefill (decode timing at long contexts without the O(n^2) CPU prefill; prefill figures are then not measured)")
	batchList := fs.String("batch", "", "comma-separated decode batch sizes: that many sequences decode together, one forward call per step")
	interfere := fs.Int("interfere", 0, "with --batch: through the engine's scheduler, a prompt of this many tokens arrives while the batch decodes; reports the batch's inter-token p50/p99 before and during its prefill")
	okv := addOKVFlags(fs)
	floor := addFloorFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*model == "") == (*synthModel == "") {
		return fmt.Errorf("give --model or --synthetic-model (one of them)")
	}
	modesSet := false
	fs.Visit(func(f *flag.Flag) { modesSet = modesSet || f.Name == "modes" })
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
	contexts, err := positiveList("--context", *ctxList)
	if err != nil {
		return err
	}
	var batches []int
	if *batchList != "" {
		if batches, err = positiveList("--batch", *batchList); err != nil {
			return err
		}
		if !modesSet {
			*modes = "dense"
		}
	} else if *interfere > 0 {
		return fmt.Errorf("--interfere needs --batch")
	}
	if *decodeN <= 0 || *repeat <= 0 || *chunk <= 0 || *interfere < 0 {
		return fmt.Errorf("--decode-tokens, --repeat and --chunk must be > 0, --interfere >= 0")
	}
	kvdt, err := compute.ParseKVDType(*kvDType)
	if err != nil {
		return fmt.Errorf("--kv-dtype: %w", err)
	}
	maxCtx := slices.Max(contexts) + *decodeN + *interfere
	m, ids, err := benchModel(*model, *synthModel, *device, maxCtx)
	if err != nil {
		return err
	}
	defer func() { m.Close() }()
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
	offDir, resident, err := okv.kvTier()
	if err != nil {
		return err
	}
	bw := floor.resolve(m.Device())
	fmt.Fprintf(os.Stderr, "  %v\n", bw)
	b := &bench{m: m, ids: ids, bw: bw, decodeN: *decodeN, repeat: *repeat, chunk: *chunk, synthetic: *synthetic, asJSON: *asJSON,
		okvCfg: okvCfg, kvCfg: kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 64, DType: kvdt, Offload: m.OffloadLayers(), OffloadDir: offDir, SparseResident: resident}}
	var want []string
	if wantDense {
		want = append(want, "dense")
	}
	if wantOKV {
		want = append(want, "omnikv")
	}
	switch {
	case *interfere > 0:
		return b.interference(batches, contexts, *interfere, want[0])
	case batches != nil:
		return b.batches(batches, contexts, want)
	}
	return b.single(contexts, want)
}

// bench is one benchmark run's model and settings.
type bench struct {
	m                 *llama.Model
	ids               []int32 // filler text, longer than any context
	decodeN, repeat   int
	chunk             int
	synthetic, asJSON bool
	okvCfg            omnikv.Config
	kvCfg             kvcache.Config
	bw                bandwidths // for the floors
}

// benchModel loads --model (raising its context to maxCtx if needed) or builds --synthetic-model, and
// returns it with the token ids to feed: the filler text's, or random ones for a synthetic model.
func benchModel(path, synthetic, device string, maxCtx int) (*llama.Model, []int32, error) {
	if synthetic != "" {
		return loadSynthetic(synthetic, device, maxCtx, maxCtx+65)
	}
	m, tok, err := loadModel(path, device, 0, false)
	if err != nil {
		return nil, nil, err
	}
	if maxCtx > m.MaxContext {
		m.Close()
		if m, tok, err = loadModel(path, device, maxCtx, true); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(os.Stderr, "  context raised to %d for the benchmark (beyond the trained length)\n", maxCtx)
	}
	ids, err := fillerIDs(tok, maxCtx+64)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, ids, nil
}

// setMode switches the model between dense and OmniKV decoding.
func (b *bench) setMode(mode string) error {
	if mode == "dense" {
		return b.m.SetOmniKV(omnikv.Config{})
	}
	return b.m.SetOmniKV(b.okvCfg)
}

// fill puts n tokens of context in seq: a chunked prefill of the filler text from offset off, or random KV.
func (b *bench) fill(st *llama.State, seq *llama.Sequence, n, off int) error {
	if b.synthetic {
		return fillRandomKV(b.m, seq, n)
	}
	for at := 0; at < n; at += b.chunk {
		k := min(b.chunk, n-at)
		if _, err := b.m.Forward(st, []llama.Step{{Seq: seq, Tokens: b.ids[off+at : off+at+k]}}); err != nil {
			return err
		}
	}
	return nil
}

// single measures one sequence per context: prefill, then decode in each mode.
func (b *bench) single(contexts []int, modes []string) error {
	m := b.m
	pool, err := kvcache.NewPool(m.Device(), b.kvCfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := m.NewState(b.chunk, 1)
	if err != nil {
		return err
	}
	defer st.Free(m)
	var logits []float32
	if !b.asJSON {
		fmt.Printf("%-7s %-8s %14s %12s %16s %9s %10s %12s %10s %10s\n", "mode", "context", "prefill tok/s", "prefill ms", "decode ms/token",
			"floor ms", "KV MiB", "resident MiB", "RSS MiB", "device MiB")
	}
	for _, c := range contexts {
		var prefills []float64
		steps := map[string][]float64{}
		res := map[string]*benchResult{}
		for r := 0; r < b.repeat; r++ {
			fmt.Fprintf(os.Stderr, "  context %d, run %d/%d: prefill ...", c, r+1, b.repeat)
			seq := llama.NewSequence(pool, c+b.decodeN)
			if err := b.setMode(modes[len(modes)-1]); err != nil {
				return err
			}
			t0 := time.Now()
			if err := b.fill(st, seq, c, 0); err != nil {
				return err
			}
			prefills = append(prefills, time.Since(t0).Seconds())
			fmt.Fprintf(os.Stderr, " %.2f s", prefills[len(prefills)-1])
			for _, mode := range modes {
				fmt.Fprintf(os.Stderr, ", %s decode ...", mode)
				if err := b.setMode(mode); err != nil {
					return err
				}
				seq.Truncate(c)
				seq.ResetSelection() // a fresh turn: every cached token is context
				next := []int32{b.ids[c]}
				for i := 0; i < b.decodeN; i++ {
					t := time.Now()
					if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: next, Decode: true, GenLimit: b.decodeN}}); err != nil {
						return err
					}
					logits = m.ReadLogits(st, logits)
					steps[mode] = append(steps[mode], ms(time.Since(t)))
					next[0] = argmax(logits)
				}
				all := int64(pool.InUse()) * int64(pool.PageBytes())
				br := &benchResult{Mode: mode, Context: c, DecodeTokens: b.decodeN, KVBytes: all, ResidentKV: all}
				if mode == "omnikv" {
					br.ResidentKV = int64(pool.Resident()) * int64(pool.PageBytes())
					sel := seq.Selection()
					br.RowsPerStep = float64(sel.RowsFetched) / float64(max(1, sel.Steps))
				}
				w := workOf(m, kvRowBytes(m, b.kvCfg), mode, c+b.decodeN/2, b.decodeN/2, []*llama.Sequence{seq})
				br.WeightBytes, br.KVRead, br.Fetched = w.WeightBytes, w.KVRead, w.Fetched
				br.FloorMS, br.MemGBps, br.LinkGBps = b.bw.floorMS(w), b.bw.Mem, b.bw.Link
				br.DeviceBytes = deviceMemory(m.Device())
				res[mode] = br
			}
			fmt.Fprintf(os.Stderr, " done\n")
			seq.Release()
		}
		for _, mode := range modes {
			br := res[mode]
			if !b.synthetic {
				br.PrefillMS, br.PrefillTokS = median(prefills)*1000, float64(c)/median(prefills)
			}
			br.DecodeMSPerTok, br.RSSBytes = median(steps[mode]), rss()
			if b.asJSON {
				out, _ := json.Marshal(br)
				fmt.Println(string(out))
				continue
			}
			fmt.Printf("%-7s %-8d %14.1f %12.1f %16.2f %9.2f %10.1f %12.1f %10.1f %10s\n", mode, c, br.PrefillTokS, br.PrefillMS, br.DecodeMSPerTok,
				br.FloorMS, float64(br.KVBytes)/(1<<20), float64(br.ResidentKV)/(1<<20), float64(br.RSSBytes)/(1<<20), mib(br.DeviceBytes))
		}
	}
	return nil
}

// positiveList reads "1,2,4" for a flag.
func positiveList(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: bad value %q", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// fillRandomKV stores n tokens of random keys and values (uniform, unit variance) in every layer of seq.
func fillRandomKV(m *llama.Model, seq *llama.Sequence, n int) error {
	const block = 256
	d := m.Device()
	r := rand.New(rand.NewPCG(1, uint64(n)))
	host := make([]float32, block*m.KVDim())
	k, err := d.NewTensor(compute.F32, block, m.KVDim())
	if err != nil {
		return err
	}
	defer d.Free(k)
	v, err := d.NewTensor(compute.F32, block, m.KVDim())
	if err != nil {
		return err
	}
	defer d.Free(v)
	if err := seq.Reserve(n); err != nil {
		return err
	}
	slots := make([]int32, block)
	for at := 0; at < n; at += block {
		cnt := min(block, n-at)
		for _, t := range []*compute.Tensor{k, v} {
			fillUnit(r, host)
			d.Write(t, 0, host)
		}
		for i := 0; i < cnt; i++ {
			slots[i] = seq.Slot(at + i)
		}
		for l := 0; l < m.Layers; l++ {
			store, idx := seq.Pool().Layer(l)
			d.WriteKV(store, idx, k, v, slots[:cnt])
		}
	}
	seq.Commit(n)
	return d.Err()
}

// fillUnit fills v with uniform values of unit variance, four from each 64-bit draw (a normal draw per value
// made the fill of a 450K-token context take longer than its decode benchmark).
func fillUnit(r *rand.Rand, v []float32) {
	const scale = 1.7320508 / 32768 // int16 -> [-√3, √3)
	for i := 0; i < len(v); i += 4 {
		x := r.Uint64()
		for k := 0; k < 4 && i+k < len(v); k++ {
			v[i+k] = float32(int16(x>>(16*k))) * scale
		}
	}
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
