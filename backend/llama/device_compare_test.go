package llama_test

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/devices"
	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/llama/synth"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
	"github.com/omnikv-triton/omnikv-triton/tests/reference/golden"
)

// The device comparison: greedy decoding on the device named by $OMNIKV_TEST_DEVICE (e.g. cuda:0) equals the
// CPU device's on the golden prompts (tests/reference/golden/testdata/smollm2.okvg), densely and with
// OmniKV selecting, or differs only after a step where the CPU's top-2 logit gap was a near-tie (under
// $OMNIKV_TIE_GAP, default 0.1: the two devices sum in different orders and widths). Unset, or a device that
// cannot open, skips, unless $OMNIKV_REQUIRE_GPU=1 (the GPU script), which fails.
//
// Models ($OMNIKV_COMPARE_MODELS, comma-separated; default "smollm2,smollm2-135m:q4_1,tiny:bf16"):
// "smollm2" is the real file (testmodel: $OMNIKV_MODEL or .cache/models); any other entry is a synthetic
// model spec (backend/llama/synth), which needs no file: the GPU machine, where SmolLM2's 98 MB do not fit
// the carry budget, compares SmolLM2's exact shape and weight type with random weights.
//
// Built as a test binary (go test -c) by tests/gpu/build.sh and run there with -test.run TestDeviceCompare.

const defaultTieGap = 0.1

// defaultLogitTol bounds the prompt's last logits' largest difference, relative to their root mean square
// ($OMNIKV_LOGIT_TOL): the device may keep activations in half precision, the CPU device in float32.
const defaultLogitTol = 0.05

func compareDevice(t *testing.T) compute.Device {
	t.Helper()
	require := os.Getenv("OMNIKV_REQUIRE_GPU") == "1"
	name := os.Getenv("OMNIKV_TEST_DEVICE")
	if name == "" {
		if require {
			t.Fatal("OMNIKV_REQUIRE_GPU=1 but OMNIKV_TEST_DEVICE is unset")
		}
		t.Skip("OMNIKV_TEST_DEVICE unset (e.g. cuda:0; cpu compares the CPU device with itself)")
	}
	dev, err := devices.Open(name)
	if err != nil {
		if require {
			t.Fatalf("OMNIKV_REQUIRE_GPU=1: device %s: %v", name, err)
		}
		t.Skipf("device %s: %v", name, err)
	}
	return dev
}

// envFloat reads a tolerance from the environment.
func envFloat(t *testing.T, key string, def float64) float64 {
	s := os.Getenv(key)
	if s == "" {
		return def
	}
	g, err := strconv.ParseFloat(s, 64)
	if err != nil || g < 0 {
		t.Fatalf("%s=%q: want a number >= 0", key, s)
	}
	return g
}

// compareModel opens one entry of $OMNIKV_COMPARE_MODELS on dev.
func compareModel(t *testing.T, entry string, dev compute.Device) *llama.Model {
	t.Helper()
	if entry == "smollm2" {
		m, err := llama.Load(testmodel.SmolLM2(t), dev, llama.Options{MaxContext: 4096})
		if err != nil {
			t.Fatalf("SmolLM2 on %s: %v", dev.Name(), err)
		}
		return m
	}
	s, err := synth.ParseSpec(entry)
	if err != nil {
		t.Fatal(err)
	}
	m, err := synth.Load(s, dev, llama.Options{MaxContext: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// greedyRun is one device's greedy continuation of a prompt and the top-2 logit gap at each step.
type greedyRun struct {
	tokens []int32
	gaps   []float32
	first  []float32 // (vocab) the logits at the prompt's last position
}

// logitDiff is the largest |a-b| over the logits, relative to the root mean square of a.
func logitDiff(a, b []float32) float64 {
	var worst, sq float64
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i]-b[i])))
		sq += float64(a[i]) * float64(a[i])
	}
	return worst / max(math.Sqrt(sq/float64(len(a))), 1e-30)
}

// runGreedy prefills prompt in chunks of 128 and decodes n tokens greedily (Decode steps: OmniKV selects).
func runGreedy(t *testing.T, m *llama.Model, okv omnikv.Config, prompt []int32, n int) greedyRun {
	t.Helper()
	if err := m.SetOmniKV(okv); err != nil {
		t.Fatal(err)
	}
	pool, err := kvcache.NewPool(m.Device(), kvcache.Config{Layers: m.Layers, KVDim: m.KVDim(), PageSize: 64,
		DType: compute.KVF16, Offload: m.OffloadLayers()})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const chunk = 128
	st := m.MustState(chunk, 1)
	defer st.Free(m)
	seq := llama.NewSequence(pool, len(prompt)+n)
	defer seq.Release()
	var logits []float32
	for at := 0; at < len(prompt); at += chunk {
		k := min(chunk, len(prompt)-at)
		if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: prompt[at : at+k]}}); err != nil {
			t.Fatalf("%s: prefill at %d: %v", m.Device().Name(), at, err)
		}
	}
	var r greedyRun
	for {
		logits = m.ReadLogits(st, logits)
		best, gap := top2(logits)
		if r.first == nil {
			r.first = append([]float32(nil), logits...)
		}
		r.tokens, r.gaps = append(r.tokens, best), append(r.gaps, gap)
		if len(r.tokens) == n {
			return r
		}
		if _, err := m.Forward(st, []llama.Step{{Seq: seq, Tokens: []int32{best}, Decode: true, GenLimit: n}}); err != nil {
			t.Fatalf("%s: decode step %d: %v", m.Device().Name(), len(r.tokens), err)
		}
	}
}

// top2 returns the argmax (lowest index on ties) and its lead over the runner-up.
func top2(v []float32) (int32, float32) {
	best, second := 0, -1
	for i := 1; i < len(v); i++ {
		switch {
		case v[i] > v[best]:
			best, second = i, best
		case second < 0 || v[i] > v[second]:
			second = i
		}
	}
	return int32(best), v[best] - v[second]
}

// diffGreedy compares the device's run with the reference's: "" when equal; else, at the first differing
// step, whether the reference's top-2 gap there was a near-tie (accepted) and a description.
func diffGreedy(ref, got greedyRun, tie float32) (msg string, accepted bool) {
	for i := range ref.tokens {
		if got.tokens[i] == ref.tokens[i] {
			continue
		}
		msg = fmt.Sprintf("step %d: device token %d, cpu %d; cpu top-2 gap %.4g, device %.4g (tie threshold %.3g)",
			i, got.tokens[i], ref.tokens[i], ref.gaps[i], got.gaps[i], tie)
		return msg, ref.gaps[i] < tie
	}
	return "", true
}

// compareOn runs every golden prompt on ref and dev models and reports each difference.
func compareOn(t *testing.T, ref, dut *llama.Model, tie float32, logitTol float64) {
	t.Helper()
	p, err := golden.TestdataPath("smollm2.okvg")
	if err != nil {
		t.Fatal(err)
	}
	g, err := golden.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		cfg  omnikv.Config
	}{
		{"dense", omnikv.Config{}},
		// A budget of 32 tokens: the longer prompts select on the device (filter layers, top-k, gather).
		{"omnikv", func() omnikv.Config {
			c := omnikv.DefaultConfig(ref.Layers)
			c.Budget = omnikv.Budget{Tokens: 32}
			return c
		}()},
	} {
		for _, c := range g.Cases {
			t.Run(mode.name+"/"+c.Name, func(t *testing.T) {
				prompt := make([]int32, len(c.PromptIDs))
				for i, id := range c.PromptIDs {
					prompt[i] = id % int32(ref.Vocab)
				}
				want := runGreedy(t, ref, mode.cfg, prompt, len(c.Greedy))
				got := runGreedy(t, dut, mode.cfg, prompt, len(c.Greedy))
				if d := logitDiff(want.first, got.first); d > logitTol {
					t.Errorf("the prompt's last logits differ by %.3g of their rms (tolerance %.3g)", d, logitTol)
				} else {
					t.Logf("the prompt's last logits differ by %.3g of their rms", d)
				}
				msg, ok := diffGreedy(want, got, tie)
				switch {
				case msg == "":
					t.Logf("%d tokens equal; smallest cpu top-2 gap %.3g", len(want.tokens), minGap(want.gaps))
				case ok:
					t.Logf("differs after a near-tie, accepted: %s", msg)
				default:
					t.Errorf("%s (cpu %v, device %v)", msg, want.tokens, got.tokens)
				}
			})
		}
	}
}

func minGap(g []float32) float32 {
	m := g[0]
	for _, x := range g {
		m = min(m, x)
	}
	return m
}

func TestDeviceCompare(t *testing.T) {
	dev := compareDevice(t)
	tie, logitTol := float32(envFloat(t, "OMNIKV_TIE_GAP", defaultTieGap)), envFloat(t, "OMNIKV_LOGIT_TOL", defaultLogitTol)
	entries := os.Getenv("OMNIKV_COMPARE_MODELS")
	if entries == "" {
		entries = "smollm2,smollm2-135m:q4_1,tiny:bf16"
	}
	for _, e := range strings.Split(entries, ",") {
		e = strings.TrimSpace(e)
		t.Run(e, func(t *testing.T) {
			ref := compareModel(t, e, cpu.New())
			defer ref.Close()
			dut := compareModel(t, e, dev)
			defer dut.Close()
			t.Logf("%s: cpu vs %s", ref, dev.Name())
			compareOn(t, ref, dut, tie, logitTol)
		})
	}
}

// skewed is the CPU device with one op broken: every residual add adds its source twice. The negative
// control: the comparison must report it.
type skewed struct{ compute.Device }

func (s skewed) Name() string { return "cpu-skewed" }

func (s skewed) Add(dst, src *compute.Tensor, n int) {
	s.Device.Add(dst, src, n)
	s.Device.Add(dst, src, n)
}

// The comparison fails on a broken device (no environment needed: the tiny synthetic model on the CPU).
func TestDeviceCompareNegativeControl(t *testing.T) {
	s, err := synth.ParseSpec("tiny:bf16")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := synth.Load(s, cpu.New(), llama.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	dut, err := synth.Load(s, skewed{cpu.New()}, llama.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dut.Close()
	refused := 0
	for seed := uint64(1); seed <= 4; seed++ {
		prompt := synth.RandomIDs(ref.Vocab, 40, seed)
		want := runGreedy(t, ref, omnikv.Config{}, prompt, 16)
		same := runGreedy(t, ref, omnikv.Config{}, prompt, 16)
		if msg, _ := diffGreedy(want, same, defaultTieGap); msg != "" || logitDiff(want.first, same.first) != 0 {
			t.Fatalf("the CPU differs from itself: %s", msg)
		}
		got := runGreedy(t, dut, omnikv.Config{}, prompt, 16)
		if d := logitDiff(want.first, got.first); d <= defaultLogitTol {
			t.Errorf("prompt %d: a device that adds residuals twice has logits within %.3g of the CPU's (%.3g)", seed, defaultLogitTol, d)
		}
		if msg, ok := diffGreedy(want, got, defaultTieGap); msg != "" && !ok {
			refused++
			t.Logf("prompt %d: broken device reported: %s", seed, msg)
		}
	}
	if refused == 0 {
		t.Error("a device that adds residuals twice passed the greedy comparison on every prompt")
	}
}

func TestDiffGreedy(t *testing.T) {
	ref := greedyRun{tokens: []int32{1, 2, 3}, gaps: []float32{2, 0.01, 3}}
	for _, c := range []struct {
		name     string
		got      greedyRun
		msg      string
		accepted bool
	}{
		{"equal", greedyRun{tokens: []int32{1, 2, 3}, gaps: []float32{2, 0.01, 3}}, "", true},
		{"after a near-tie", greedyRun{tokens: []int32{1, 5, 6}, gaps: []float32{2, 0.02, 1}}, "step 1:", true},
		{"no tie", greedyRun{tokens: []int32{1, 2, 9}, gaps: []float32{2, 0.01, 3}}, "step 2:", false},
		{"first step", greedyRun{tokens: []int32{7, 2, 3}, gaps: []float32{2, 0.01, 3}}, "step 0:", false},
	} {
		msg, ok := diffGreedy(ref, c.got, 0.1)
		if ok != c.accepted || (c.msg == "") != (msg == "") || !strings.HasPrefix(msg, c.msg) {
			t.Errorf("%s: %q, accepted %v; want prefix %q, accepted %v", c.name, msg, ok, c.msg, c.accepted)
		}
	}
}
