package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// defaultModel is where the project's setup script places the default model.
const defaultModel = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"

type options struct {
	model     string
	contexts  []int
	kvBytes   float64 // bytes per KV element (2: fp16, 4: fp32)
	bufferMiB int
	reps      int
	threads   int
	jsonOut   bool
}

// probeResult is one measured rate: 1 thread and all threads.
type probeResult struct {
	Name       string  `json:"name"`
	Unit       string  `json:"unit"`
	OneThread  float64 `json:"one_thread"`
	AllThreads float64 `json:"all_threads"`
}

// machineReport is the "machine" JSON line.
type machineReport struct {
	Kind        string        `json:"kind"` // "machine"
	CPU         string        `json:"cpu"`
	Threads     int           `json:"threads"`
	MemBytes    uint64        `json:"mem_bytes"`
	BufferMiB   int           `json:"buffer_mib"`
	Probes      []probeResult `json:"probes"`
	ReadGBs     float64       `json:"read_gb_s"`    // bandwidth used for the bound (best read probe, all threads)
	PeakGFLOPs  float64       `json:"peak_gflop_s"` // rate used for the bound (best FMA probe, all threads)
	Model       string        `json:"model"`
	WeightBytes uint64        `json:"weight_bytes_per_token"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bound:", err)
		os.Exit(1)
	}
}

func parseContexts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--context %q: %q is not a positive integer", s, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bound", flag.ContinueOnError)
	o := &options{}
	model := os.Getenv("OMNIKV_MODEL")
	if model == "" {
		model = defaultModel
	}
	fs.StringVar(&o.model, "model", model, "GGUF model file (default: $OMNIKV_MODEL or "+defaultModel+")")
	ctx := fs.String("context", "128,2048,8192", "comma-separated context lengths")
	fs.Float64Var(&o.kvBytes, "kv-bytes", 2, "bytes per KV cache element (2 = fp16, 4 = fp32)")
	fs.IntVar(&o.bufferMiB, "buffer-mib", 512, "bandwidth probe buffer size in MiB (far above the L3 cache)")
	fs.IntVar(&o.reps, "reps", 5, "repetitions per probe (the best is kept)")
	fs.IntVar(&o.threads, "threads", runtime.NumCPU(), "threads for the all-threads probes")
	fs.BoolVar(&o.jsonOut, "json", false, "print JSON lines instead of tables")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.contexts, err = parseContexts(*ctx); err != nil {
		return nil, err
	}
	if o.kvBytes <= 0 || o.bufferMiB < 1 || o.reps < 1 || o.threads < 1 {
		return nil, errors.New("--kv-bytes, --buffer-mib, --reps and --threads must be positive")
	}
	return o, nil
}

// measure runs every probe and returns them with the read bandwidth (bytes/s) and peak rate (FLOP/s)
// that the bound uses.
func measure(o *options) (probes []probeResult, bw, peak float64) {
	buf := make([]float32, o.bufferMiB<<20/4) // (n,) floats; filled to fault every page in
	for i := range buf {
		buf[i] = 1
	}
	avx2, avx512 := kernelSupport()
	both := func(name, unit string, f func(threads int) float64) probeResult {
		p := probeResult{Name: name, Unit: unit, OneThread: f(1), AllThreads: f(o.threads)}
		probes = append(probes, p)
		return p
	}
	p := both("read: Go loop, 8 accumulators", "GB/s", func(t int) float64 { return bandwidth(buf, t, o.reps, goSum) / 1e9 })
	bw = p.AllThreads
	if avx2 {
		p = both("read: AVX2 asm, 8 accumulators", "GB/s", func(t int) float64 { return bandwidth(buf, t, o.reps, asmSum) / 1e9 })
		bw = max(bw, p.AllThreads)
	}
	both("copy(): runtime memmove, bytes copied", "GB/s", func(t int) float64 { return copyBandwidth(buf, t, o.reps) / 1e9 })

	const iters = 1 << 24
	p = both("FMA: Go scalar float64, 8 chains", "GFLOP/s", func(t int) float64 {
		return flopRate(t, o.reps, iters/4, 16, goFMA) / 1e9
	})
	peak = p.AllThreads
	if avx2 {
		p = both("FMA: AVX2 asm fp32, 12 chains", "GFLOP/s", func(t int) float64 {
			return flopRate(t, o.reps, iters, 12*8*2, func(n int) float64 { return float64(fmaAVX2(n)) }) / 1e9
		})
		peak = max(peak, p.AllThreads)
	}
	if avx512 {
		p = both("FMA: AVX-512 asm fp32, 12 chains", "GFLOP/s", func(t int) float64 {
			return flopRate(t, o.reps, iters/2, 12*16*2, func(n int) float64 { return float64(fmaAVX512(n)) }) / 1e9
		})
		peak = max(peak, p.AllThreads)
	}
	return probes, bw * 1e9, peak * 1e9
}

func run(args []string, w io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	h, err := readGGUFFile(o.model)
	if err != nil {
		return fmt.Errorf("%w (set --model or OMNIKV_MODEL)", err)
	}
	s, err := shapeFromGGUF(h)
	if err != nil {
		return fmt.Errorf("model %s: %w", o.model, err)
	}
	cpu, _ := cpuInfo()
	probes, bw, peak := measure(o)
	m := machineReport{Kind: "machine", CPU: cpu, Threads: o.threads, MemBytes: memTotal(), BufferMiB: o.bufferMiB,
		Probes: probes, ReadGBs: bw / 1e9, PeakGFLOPs: peak / 1e9, Model: filepath.Base(o.model),
		WeightBytes: s.WeightBytesPerToken()}
	bounds := make([]contextBound, len(o.contexts))
	for i, c := range o.contexts {
		bounds[i] = s.boundAt(c, o.kvBytes, bw, peak)
	}
	if o.jsonOut {
		return writeJSON(w, m, bounds)
	}
	return writeText(w, o, m, s, bounds)
}

func writeJSON(w io.Writer, m machineReport, bounds []contextBound) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("write machine line: %w", err)
	}
	for _, b := range bounds {
		line := struct {
			Kind string `json:"kind"`
			contextBound
		}{"bound", b}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("write bound line for context %d: %w", b.Context, err)
		}
	}
	return nil
}

func writeText(w io.Writer, o *options, m machineReport, s *modelShape, bounds []contextBound) error {
	var b strings.Builder
	fmt.Fprintf(&b, "CPU: %s, %d threads, %.1f GiB RAM; probe buffer %d MiB, best of %d\n\n",
		m.CPU, m.Threads, float64(m.MemBytes)/(1<<30), m.BufferMiB, o.reps)
	fmt.Fprintf(&b, "%-42s %12s %12s\n", "probe", "1 thread", fmt.Sprintf("%d threads", m.Threads))
	for _, p := range m.Probes {
		fmt.Fprintf(&b, "%-42s %8.1f %-3s %8.1f %s\n", p.Name, p.OneThread, "", p.AllThreads, p.Unit)
	}
	fmt.Fprintf(&b, "\nbound uses: read %.1f GB/s, peak %.1f GFLOP/s (both all threads)\n", m.ReadGBs, m.PeakGFLOPs)
	tied := "separate output.weight"
	if s.TiedHead {
		tied = "tied: head = token_embd"
	}
	fmt.Fprintf(&b, "\nmodel %s: %s, %d layers, hidden %d, %d/%d heads, head dim %d, vocab %d, %s\n",
		m.Model, s.Arch, s.Layers, s.Hidden, s.Heads, s.KVHeads, s.HeadDim, s.Vocab, tied)
	fmt.Fprintf(&b, "weights read per token: %.2f MB (matrices+head %.2f, embedding row %d B, other %d B); KV %.0f B/elem\n\n",
		float64(s.WeightBytesPerToken())/1e6, float64(s.MatrixBytes)/1e6, s.EmbedRowBytes, s.OtherBytes, o.kvBytes)
	fmt.Fprintf(&b, "%8s %11s %9s %14s %14s %14s %16s\n", "context", "weights MB", "KV MB",
		"decode ms (bw)", "(compute)", "ms/token bound", "prefill tok/s <=")
	for _, c := range bounds {
		fmt.Fprintf(&b, "%8d %11.2f %9.2f %14.3f %14.3f %14.3f %16.0f\n", c.Context, float64(c.WeightBytes)/1e6,
			float64(c.KVBytes)/1e6, c.DecodeMsBW, c.DecodeMsCompute, c.DecodeMsBound, c.PrefillTokSBound)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
