package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/devices"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// sample is one line of the dataset (make_dataset.py).
type sample struct {
	ID       string  `json:"id"`
	Length   int     `json:"length"`
	Depth    float64 `json:"depth"`
	Tokens   int     `json:"tokens"` // prompt tokens as transformers counted them
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	AssistantPrefix string `json:"assistant_prefix"`
	Answer          string `json:"answer"`
}

// result is one (sample, mode) outcome, a line of -out.
type result struct {
	ID        string  `json:"id"`
	Length    int     `json:"length"`
	Depth     float64 `json:"depth"`
	Prompt    int     `json:"prompt_tokens"`
	Mode      string  `json:"mode"`
	Tokens    []int32 `json:"tokens"` // generated, EOS-padded to the decode length
	Text      string  `json:"text"`
	Correct   bool    `json:"correct"`
	Agree     int     `json:"agree"` // leading tokens equal to dense's
	PrefillS  float64 `json:"prefill_s"`
	DecodeMS  float64 `json:"decode_ms_per_token"`
	SelectedK int     `json:"selected,omitempty"`
	// AnswerSel counts, per decode step and filter layer, how many of the answer's tokens in the prompt were
	// in that filter layer's selection (OmniKV modes; nil when the answer's tokens were not found).
	AnswerSel [][]int `json:"answer_selected,omitempty"` // (steps, filter layers)
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "quality:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	model := fs.String("model", os.Getenv("OMNIKV_MODEL"), "SmolLM2 GGUF (default $OMNIKV_MODEL)")
	device := fs.String("device", "cpu", "compute device: cpu (kind:ordinal)")
	data := fs.String("data", filepath.Join("tests", "quality", "testdata", "passkey.jsonl"), "dataset (JSONL)")
	out := fs.String("out", "", "append results here (JSONL); samples already in it are skipped")
	report := fs.String("report", "", "print the table of these comma-separated result files and exit")
	modeList := fs.String("modes", defaultModes, "comma-separated modes: dense first, then SELECTOR/BUDGET/LAYERS/WAIT")
	lengths := fs.String("lengths", "", "only these length buckets, e.g. 2048,4096 (default all)")
	perLength := fs.Int("per-length", 0, "at most this many samples per length (0: all)")
	only := fs.String("ids", "", "only these comma-separated sample ids")
	decodeN := fs.Int("decode", 32, "greedy tokens per mode")
	chunk := fs.Int("chunk", 256, "prefill tokens per forward call")
	kvDType := fs.String("kv-dtype", "fp16", "KV cache element type: fp16 or fp32")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *report != "" {
		rs, err := readResults(strings.Split(*report, ","))
		if err != nil {
			return err
		}
		return writeTable(os.Stdout, rs)
	}
	if *model == "" {
		return fmt.Errorf("-model is required (or set OMNIKV_MODEL)")
	}
	if *decodeN <= 0 || *chunk <= 0 {
		return fmt.Errorf("-decode and -chunk must be > 0")
	}
	kvdt, err := compute.ParseKVDType(*kvDType)
	if err != nil {
		return fmt.Errorf("-kv-dtype: %w", err)
	}
	samples, err := readSamples(*data)
	if err != nil {
		return err
	}
	samples, err = pick(samples, *lengths, *perLength)
	if err != nil {
		return err
	}
	if *only != "" {
		ids := strings.Split(*only, ",")
		samples = slices.DeleteFunc(samples, func(s sample) bool { return !slices.Contains(ids, s.ID) })
	}
	var all []result
	done := map[string]bool{}
	if *out != "" {
		if prev, err := readResults([]string{*out}); err == nil {
			all = prev
			for _, r := range prev {
				done[r.ID] = true
			}
		} else if !os.IsNotExist(err) {
			return err
		}
	}
	dev, err := devices.Open(*device)
	if err != nil {
		return fmt.Errorf("--device: %w", err)
	}
	m, err := llama.Load(*model, dev, llama.Options{})
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := llama.LoadTokenizer(m.Set)
	if err != nil {
		return err
	}
	modes, err := parseModes(*modeList, m.Layers)
	if err != nil {
		return err
	}
	// On the CPU both KV tiers are host memory, so one pool without an offload plan serves every mode.
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 64, DType: kvdt})
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := m.NewState(*chunk, 1)
	if err != nil {
		return err
	}
	defer st.Free(m)
	var w *bufio.Writer
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		w = bufio.NewWriter(f)
		defer w.Flush()
	}
	t0 := time.Now()
	for i, s := range samples {
		if done[s.ID] {
			continue
		}
		rs, err := runSample(m, tok, pool, st, &s, modes, *decodeN, *chunk)
		if err != nil {
			return fmt.Errorf("sample %s: %w", s.ID, err)
		}
		for _, r := range rs {
			fmt.Fprintf(os.Stderr, "  %-28s %-5v agree %2d/%d %q", r.Mode, r.Correct, r.Agree, *decodeN, r.Text)
			if len(r.AnswerSel) > 0 {
				fmt.Fprintf(os.Stderr, " answer tokens selected per step (per filter layer): %v", r.AnswerSel[:min(6, len(r.AnswerSel))])
			}
			fmt.Fprintln(os.Stderr)
			if w != nil {
				b, _ := json.Marshal(r)
				w.Write(append(b, '\n'))
			}
		}
		if w != nil {
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing %s: %w", *out, err)
			}
		}
		all = append(all, rs...)
		fmt.Fprintf(os.Stderr, "[%d/%d] %s done, %.0f s elapsed\n", i+1, len(samples), s.ID, time.Since(t0).Seconds())
	}
	return writeTable(os.Stdout, all)
}

// runSample prefills the prompt once and decodes in every mode.
func runSample(m *llama.Model, tok *tokenizer.Tokenizer, pool *kvcache.Pool, st *llama.State, s *sample, modes []mode, decodeN, chunk int) ([]result, error) {
	msgs := make([]tokenizer.Message, len(s.Messages))
	for i, x := range s.Messages {
		msgs[i] = tokenizer.Message{Role: x.Role, Content: x.Content}
	}
	text, err := tok.ApplyChat(msgs, true)
	if err != nil {
		return nil, err
	}
	ids, err := tok.Encode(text+s.AssistantPrefix, false)
	if err != nil {
		return nil, err
	}
	if len(ids)+decodeN > m.MaxContext {
		return nil, fmt.Errorf("%d prompt tokens + %d decoded exceed the model's context %d", len(ids), decodeN, m.MaxContext)
	}
	fmt.Fprintf(os.Stderr, "%s: %d prompt tokens (transformers: %d), depth %.2f, answer %s: prefill ...\n", s.ID, len(ids), s.Tokens, s.Depth, s.Answer)
	if err := m.SetOmniKV(modes[0].Cfg); err != nil {
		return nil, err
	}
	seq := llama.NewSequence(pool, len(ids)+decodeN)
	defer seq.Release()
	t0 := time.Now()
	for at := 0; at < len(ids); at += chunk {
		n := min(chunk, len(ids)-at)
		if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: ids[at : at+n]}}); err != nil {
			return nil, fmt.Errorf("prefill at token %d: %w", at, err)
		}
	}
	prefill := time.Since(t0).Seconds()
	ansPos, err := answerPositions(tok, ids, s.Answer)
	if err != nil {
		return nil, err
	}
	logits := m.ReadLogits(st, nil)
	first := argmax(logits)
	stops := append(tok.EOSIDs(), tok.EOS())
	var out []result
	var dense []int32
	for _, md := range modes {
		if err := m.SetOmniKV(md.Cfg); err != nil {
			return nil, fmt.Errorf("mode %s: %w", md.Name, err)
		}
		seq.Truncate(len(ids))
		seq.ResetSelection() // a fresh turn: every cached token is context
		// A State takes the window weights of the OmniKV configuration current when it is made: make one
		// per mode (one token per decode step).
		ds, err := m.NewState(1, 1)
		if err != nil {
			return nil, err
		}
		gen := []int32{first}
		t1 := time.Now()
		steps := 0
		var answerSel [][]int
		for len(gen) < decodeN && !slices.Contains(stops, gen[len(gen)-1]) {
			if _, err := m.Forward(ds, []llama.Step{{Seq: seq, Tokens: gen[len(gen)-1:], Decode: true}}); err != nil {
				return nil, fmt.Errorf("mode %s: decode step %d: %w", md.Name, len(gen), err)
			}
			logits = m.ReadLogits(ds, logits)
			gen = append(gen, argmax(logits))
			steps++
			if md.Cfg.Enabled && md.Cfg.Selector.Scores() && ansPos != nil {
				row := make([]int, len(md.Cfg.FilterLayers))
				for i, fl := range md.Cfg.FilterLayers {
					sel := seq.Selected(fl)
					for _, p := range ansPos {
						if _, ok := slices.BinarySearch(sel, p); ok {
							row[i]++
						}
					}
				}
				answerSel = append(answerSel, row)
			}
		}
		r := result{ID: s.ID, Length: s.Length, Depth: s.Depth, Prompt: len(ids), Mode: md.Name, PrefillS: prefill,
			DecodeMS: float64(time.Since(t1).Milliseconds()) / float64(max(1, steps))}
		r.Text = tok.Decode(gen, true)
		r.Correct = hasNumber(r.Text, s.Answer)
		for len(gen) < decodeN { // stopped at EOS: pad so that sequences compare position by position
			gen = append(gen, gen[len(gen)-1])
		}
		r.Tokens = gen
		if dense == nil {
			dense = gen
		}
		r.Agree = commonPrefix(gen, dense)
		ds.Free(m)
		r.SelectedK = seq.Selection().Selected
		r.AnswerSel = answerSel
		out = append(out, r)
	}
	return out, nil
}

// answerPositions returns the prompt positions of the answer's tokens: the last occurrence of the answer's
// own token sequence in the prompt (digits are single tokens in SmolLM2), or nil when it does not occur.
func answerPositions(tok *tokenizer.Tokenizer, prompt []int32, answer string) ([]int32, error) {
	want, err := tok.Encode(answer, false)
	if err != nil {
		return nil, fmt.Errorf("encoding the answer %q: %w", answer, err)
	}
	for at := len(prompt) - len(want); at >= 0 && len(want) > 0; at-- {
		if slices.Equal(prompt[at:at+len(want)], want) {
			pos := make([]int32, len(want))
			for i := range pos {
				pos[i] = int32(at + i)
			}
			return pos, nil
		}
	}
	return nil, nil
}

// hasNumber reports whether text holds num as a whole number: not preceded or followed by another digit
// ("668233" does not answer 66823).
func hasNumber(text, num string) bool {
	for i := 0; num != ""; {
		j := strings.Index(text[i:], num)
		if j < 0 {
			return false
		}
		a, b := i+j, i+j+len(num)
		if (a == 0 || !isDigit(text[a-1])) && (b == len(text) || !isDigit(text[b])) {
			return true
		}
		i = a + 1
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func argmax(v []float32) int32 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int32(best)
}

func readSamples(path string) ([]sample, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var out []sample
	for i, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var s sample
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		if s.ID == "" || s.Answer == "" || len(s.Messages) == 0 {
			return nil, fmt.Errorf("%s line %d: id, answer and messages are required", path, i+1)
		}
		out = append(out, s)
	}
	return out, nil
}

// pick keeps the wanted lengths and, within a length, visits the samples with a stride (0, 5, 10, 3, ... of
// 12) so that the first few spread over the depths; it keeps at most perLength of each length and interleaves
// the lengths (2K, 4K, 8K, 2K, ...) so that a run stopped early still covers every length.
func pick(all []sample, lengths string, perLength int) ([]sample, error) {
	var want []int
	if lengths != "" {
		for _, f := range strings.Split(lengths, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("-lengths: %q is not a number", f)
			}
			want = append(want, n)
		}
	}
	by := map[int][]sample{}
	var order []int
	for _, s := range all {
		if want != nil && !slices.Contains(want, s.Length) {
			continue
		}
		if by[s.Length] == nil {
			order = append(order, s.Length)
		}
		by[s.Length] = append(by[s.Length], s)
	}
	for _, L := range order {
		ss := by[L]
		n := len(ss)
		stride := max(1, (2*n+4)/5)
		for gcd(stride, n) != 1 {
			stride++
		}
		spread := make([]sample, 0, n)
		for i := 0; i < n; i++ {
			spread = append(spread, ss[i*stride%n])
		}
		if perLength > 0 && len(spread) > perLength {
			spread = spread[:perLength]
		}
		by[L] = spread
	}
	var out []sample
	for i := 0; ; i++ {
		added := false
		for _, L := range order {
			if i < len(by[L]) {
				out = append(out, by[L][i])
				added = true
			}
		}
		if !added {
			return out, nil
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
