package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/devices"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/llama/synth"
)

// A decode step's floor: the time its bytes take at the device's bandwidths, whatever the kernels do,
//
//	floor = (weight bytes + KV bytes attended) / memory bandwidth + KV bytes fetched / host-link bandwidth
//
// where the KV attended is every layer's context (dense) or the dense layers' context plus the sparse
// layers' selected and generated rows (OmniKV), and the KV fetched is what the step copied from the offload
// tier (OmniKV's measured rows per step). Compute is not counted: at batch 1 a step is bound by its bytes.

const h200HBMGBps = 4800 // H200 HBM3e, NVIDIA's datasheet figure

// floorFlags are the bandwidths the floor is computed with.
type floorFlags struct {
	hbm, link *float64
}

func addFloorFlags(fs *flag.FlagSet) *floorFlags {
	return &floorFlags{
		hbm: fs.Float64("hbm-gbps", 0, "device memory bandwidth for the floor, GB/s (default: 4800 on cuda, the H200's HBM3e; "+
			"measured on cpu by a 128 MiB copy)"),
		link: fs.Float64("link-gbps", 0, "host-to-device bandwidth of OmniKV's fetches for the floor, GB/s (default: on cpu the "+
			"memory bandwidth, the offload tier being host memory; on cuda not counted unless given, e.g. the gpu-probe's "+
			"zero-copy gather figure)"),
	}
}

// bandwidths are the resolved figures and where each came from.
type bandwidths struct {
	Mem, Link       float64 // GB/s; Link 0: fetches not counted
	MemSrc, LinkSrc string
}

func (f *floorFlags) resolve(dev compute.Device) bandwidths {
	var b bandwidths
	cpuDev := strings.HasPrefix(dev.Name(), "cpu")
	switch {
	case *f.hbm > 0:
		b.Mem, b.MemSrc = *f.hbm, "given"
	case cpuDev:
		b.Mem, b.MemSrc = measureCopyGBps(), "measured copy"
	default:
		b.Mem, b.MemSrc = h200HBMGBps, "H200 datasheet"
	}
	switch {
	case *f.link > 0:
		b.Link, b.LinkSrc = *f.link, "given"
	case cpuDev:
		b.Link, b.LinkSrc = b.Mem, "host memory"
	default:
		b.LinkSrc = "not given: fetches not counted"
	}
	return b
}

func (b bandwidths) String() string {
	link := "-"
	if b.Link > 0 {
		link = fmt.Sprintf("%.0f GB/s", b.Link)
	}
	return fmt.Sprintf("floor bandwidths: memory %.0f GB/s (%s), link %s (%s)", b.Mem, b.MemSrc, link, b.LinkSrc)
}

// measureCopyGBps times copies of 128 MiB and returns the best rate, bytes read plus bytes written; the
// buffers go back to the system before it returns (the benchmark reports RSS).
func measureCopyGBps() float64 {
	defer debug.FreeOSMemory()
	const n = 128 << 20
	src, dst := make([]byte, n), make([]byte, n)
	for i := 0; i < n; i += 4096 {
		src[i], dst[i] = 1, 1
	}
	best := 0.0
	for range 4 {
		t := time.Now()
		copy(dst, src)
		best = max(best, 2*n/time.Since(t).Seconds()/1e9)
	}
	return best
}

// stepWork is the bytes one decode step of a batch moves.
type stepWork struct {
	WeightBytes int64 // every matrix once per step, however many sequences
	KVRead      int64 // KV attended, all sequences
	Fetched     int64 // KV copied from the offload tier, all sequences (measured: mean per step)
}

// floorMS is the step's floor in ms.
func (b bandwidths) floorMS(w stepWork) float64 {
	ms := float64(w.WeightBytes+w.KVRead) / (b.Mem * 1e9) * 1e3
	if b.Link > 0 {
		ms += float64(w.Fetched) / (b.Link * 1e9) * 1e3
	}
	return ms
}

// workOf is the work of a decode step at context ctx (the middle of the timed steps, gen tokens generated)
// for the sequences of a batch, from their selection counters in OmniKV mode.
func workOf(m *llama.Model, kvRow int64, mode string, ctx, gen int, seqs []*llama.Sequence) stepWork {
	w := stepWork{WeightBytes: m.WeightBytes()}
	all := int64(m.Layers) * int64(ctx) * kvRow
	sparse := 0
	for _, off := range m.OffloadLayers() {
		if off {
			sparse++
		}
	}
	for _, s := range seqs {
		sel := s.Selection()
		if mode != "omnikv" || sel.Steps == 0 || sparse == 0 { // dense, or OmniKV decoding densely (context within budget)
			w.KVRead += all
			continue
		}
		dense := int64(m.Layers-sparse) * int64(ctx) * kvRow
		w.KVRead += dense + int64(sparse)*int64(sel.Selected+gen)*kvRow
		w.Fetched += sel.BytesFetched / int64(sel.Steps)
	}
	return w
}

// deviceMemory returns the device memory the process holds, in bytes, or -1 when it cannot tell: the
// device's own count where it keeps one (an optional MemoryInUse method), else nvidia-smi's figure for this
// process on a cuda device; the CPU device's memory is the process's RSS (0 here).
func deviceMemory(dev compute.Device) int64 {
	if r, ok := dev.(interface{ MemoryInUse() int64 }); ok {
		return r.MemoryInUse()
	}
	if strings.HasPrefix(dev.Name(), "cpu") {
		return 0
	}
	out, err := exec.Command("nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits").Output()
	if err != nil {
		return -1
	}
	pid := strconv.Itoa(os.Getpid())
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) == 2 && strings.TrimSpace(f[0]) == pid {
			mib, err := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
			if err == nil {
				return mib << 20
			}
		}
	}
	return -1
}

// mib formats bytes as MiB, "-" when unknown (< 0).
func mib(b int64) string {
	if b < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

// loadSynthetic builds a synthetic model (--synthetic-model) on a device, with room for maxCtx positions,
// and returns it with ids to feed (random, n of them: a synthetic model has no tokenizer).
func loadSynthetic(spec, device string, maxCtx, n int) (*llama.Model, []int32, error) {
	s, err := synth.ParseSpec(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("--synthetic-model: %w", err)
	}
	dev, err := devices.Open(device)
	if err != nil {
		return nil, nil, fmt.Errorf("--device: %w", err)
	}
	t0 := time.Now()
	fmt.Fprintf(os.Stderr, "building %s on %s (%.2f GiB of weights) ...\n", s, dev.Name(), float64(s.WeightBytes())/(1<<30))
	m, err := synth.Load(s, dev, llama.Options{MaxContext: max(maxCtx, s.Shape.MaxContext)})
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "  %v (%.0f ms)\n", m, ms(time.Since(t0)))
	return m, synth.RandomIDs(m.Vocab, n, s.Seed), nil
}

// kvRowBytes is the bytes of one token's keys and values in one layer.
func kvRowBytes(m *llama.Model, c kvcache.Config) int64 {
	return int64(2 * m.KVDim() * c.DType.Bytes())
}
