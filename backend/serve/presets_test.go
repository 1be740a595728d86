package serve

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// presetShape is a preset's shape.json: the model's hyperparameters (from its config.json) that the preset's
// validation and memory sizing need.
type presetShape struct {
	Model          string `json:"model"`
	Layers         int    `json:"layers"`
	Hidden         int    `json:"hidden"`
	Heads          int    `json:"heads"`
	KVHeads        int    `json:"kv_heads"`
	HeadDim        int    `json:"head_dim"`
	Intermediate   int    `json:"intermediate"`
	Vocab          int    `json:"vocab"`
	Tied           bool   `json:"tied_embeddings"`
	TrainedContext int    `json:"trained_context"`
	BytesPerParam  int64  `json:"weights_bytes_per_param"` // bf16/f16 checkpoints: 2
	FileBytes      int64  `json:"weights_file_bytes"`      // quantized files: the file's size
}

// params counts a Llama-architecture model's parameters: embeddings (and an untied lm_head), per layer the
// q, k, v, o projections, the three SwiGLU matrices and two RMSNorm weights, and the final norm.
func (s presetShape) params() int64 {
	h, q, kv := int64(s.Hidden), int64(s.Heads*s.HeadDim), int64(s.KVHeads*s.HeadDim)
	layer := h*q + 2*h*kv + q*h + 3*h*int64(s.Intermediate) + 2*h
	emb := int64(s.Vocab) * h
	if !s.Tied {
		emb *= 2
	}
	return emb + int64(s.Layers)*layer + h
}

func (s presetShape) weightBytes() int64 {
	if s.FileBytes > 0 {
		return s.FileBytes
	}
	return s.params() * s.BytesPerParam
}

// The sizing's assumptions, stated in presets/README.md.
const (
	sizingPrompt   = 128 << 10 // a session's context: 131,072 prompt tokens
	sizingGen      = 1024      // plus max_tokens generated
	gpuReserve     = 4 << 30   // CUDA context, activations, workspace: an assumption, not measured
	gib            = float64(1 << 30)
	a100Bytes      = 81920 << 20  // A100 80 GB: 81,920 MiB
	h200Bytes      = 143771 << 20 // H200: 143,771 MiB (marketed as 141 GB)
	kvElementBytes = 2            // fp16
)

// presetSizing is the memory arithmetic of presets/*/README.md for one preset.
type presetSizing struct {
	WeightsGiB                       float64
	Dense, Sparse                    int     // layers: resident (below the first filter layer, filter, wait) and offloaded
	RowBytes                         int64   // K+V bytes of one token in one layer
	ResidentPer1K, OffloadPer1K      float64 // MiB per 1,024 tokens per session
	SessionResident, SessionOffload  float64 // GiB of one 128K session (with staging), host RAM
	SessionDense                     float64 // GiB of one 128K session with OmniKV off
	A100, H200, A100Dense, H200Dense int     // sessions of 128K per GPU
}

func sizePreset(s presetShape, o GenOptions) presetSizing {
	var z presetSizing
	z.WeightsGiB = float64(s.weightBytes()) / gib
	dense := map[int]bool{}
	for l := 0; l < o.OmniKV.FilterLayers[0]; l++ {
		dense[l] = true
	}
	for _, f := range o.OmniKV.FilterLayers {
		for l := f; l <= f+o.OmniKV.WaitLayers && l < s.Layers; l++ {
			dense[l] = true
		}
	}
	z.Dense, z.Sparse = len(dense), s.Layers-len(dense)
	z.RowBytes = int64(2 * s.KVHeads * s.HeadDim * kvElementBytes)
	z.ResidentPer1K = float64(int64(z.Dense)*z.RowBytes*1024) / (1 << 20)
	z.OffloadPer1K = float64(int64(z.Sparse)*z.RowBytes*1024) / (1 << 20)
	tokens := int64(sizingPrompt + sizingGen)
	staging := int64(z.Sparse) * int64(o.OmniKV.Budget.Tokens+sizingGen) * z.RowBytes
	resident := int64(z.Dense)*tokens*z.RowBytes + staging
	z.SessionResident = float64(resident) / gib
	z.SessionOffload = float64(int64(z.Sparse)*tokens*z.RowBytes) / gib
	z.SessionDense = float64(int64(s.Layers)*tokens*z.RowBytes) / gib
	fit := func(gpu, per int64) int {
		free := gpu - s.weightBytes() - gpuReserve
		if free < 0 {
			return 0
		}
		return int(free / per)
	}
	denseBytes := int64(s.Layers) * tokens * z.RowBytes
	z.A100, z.H200 = fit(a100Bytes, resident), fit(h200Bytes, resident)
	z.A100Dense, z.H200Dense = fit(a100Bytes, denseBytes), fit(h200Bytes, denseBytes)
	return z
}

// TestPresets reads every presets/*/config.pbtxt as Triton would and validates it with the backend's own
// parsers (ParseConfig, CheckConfig, ParseGenOptions) against the model's shape (presets/*/shape.json): the
// filter layers inside the model, OmniKV on, the context within the trained one, the KV budget within an
// A100's memory beside the weights. The figures of each preset's README.md must be the arithmetic's.
func TestPresets(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "..", "presets", "*", "config.pbtxt"))
	if err != nil || len(dirs) < 3 {
		t.Fatalf("want the three presets of the OmniKV paper's models, found %v (%v)", dirs, err)
	}
	for _, path := range dirs {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			checkPreset(t, dir)
		})
	}
}

func checkPreset(t *testing.T, dir string) {
	js, cfg := readPbtxt(t, filepath.Join(dir, "config.pbtxt"))
	var shape presetShape
	if b, err := os.ReadFile(filepath.Join(dir, "shape.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &shape); err != nil {
		t.Fatalf("shape.json: %v", err)
	}
	if cfg.Name != filepath.Base(dir) {
		t.Errorf("name %q differs from the directory %q (Triton refuses the model)", cfg.Name, filepath.Base(dir))
	}
	if !strings.Contains(string(js), `"kind":"KIND_GPU"`) {
		t.Errorf("instance_group is not KIND_GPU: %s", js)
	}
	// The weights are not here (not downloadable in CI): stand in an empty file or directory at their path.
	cfg.RepositoryDir = t.TempDir()
	w := filepath.Join(cfg.RepositoryDir, cfg.Params["weights"])
	if err := os.MkdirAll(filepath.Dir(w), 0o755); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(w, ".gguf") {
		err := os.WriteFile(w, nil, 0o644)
		if err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(w, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckConfig(cfg); err != nil {
		t.Fatalf("CheckConfig: %v", err)
	}
	o, err := ParseGenOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !o.OmniKV.Enabled || o.OmniKV.FilterLayers == nil {
		t.Fatalf("OmniKV must be on with explicit filter_layers: %v", o.OmniKV)
	}
	if err := o.OmniKV.Validate(shape.Layers); err != nil {
		t.Errorf("against %s (%d layers): %v", shape.Model, shape.Layers, err)
	}
	if o.MaxContext == 0 || o.MaxContext > shape.TrainedContext {
		t.Errorf("max_context %d: want 1..%d (the trained context)", o.MaxContext, shape.TrainedContext)
	}
	if o.OmniKV.Budget.Tokens <= 0 {
		t.Errorf("budget %v: the sizing wants a token count", o.OmniKV.Budget)
	}
	z := sizePreset(shape, o)
	if o.ResidentBudget <= 0 || float64(o.ResidentBudget)+float64(shape.weightBytes())+gpuReserve > a100Bytes {
		t.Errorf("kv_resident_budget %.1f GiB + weights %.1f GiB + reserve 4 GiB exceed an 80 GB A100", float64(o.ResidentBudget)/gib, z.WeightsGiB)
	}
	if o.OffloadBudget <= 0 {
		t.Errorf("kv_offload_budget must be set (host RAM of the sparse layers)")
	}
	t.Logf("%s: %+v\n%s", shape.Model, z, strings.Join(sizingFigures(z), "\n"))
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fig := range sizingFigures(z) {
		if !strings.Contains(string(readme), fig) {
			t.Errorf("README.md does not state %q (the arithmetic of shape.json and config.pbtxt)", fig)
		}
	}
}

// sizingFigures are the strings each preset's README.md must contain.
func sizingFigures(z presetSizing) []string {
	return []string{
		fmt.Sprintf("%d dense + %d offloaded layers", z.Dense, z.Sparse),
		fmt.Sprintf("weights %.1f GiB", z.WeightsGiB),
		fmt.Sprintf("resident %.0f MiB and offloaded %.0f MiB per 1K tokens", z.ResidentPer1K, z.OffloadPer1K),
		fmt.Sprintf("one 128K session: %.2f GiB resident, %.2f GiB offloaded (%.2f GiB with OmniKV off)", z.SessionResident, z.SessionOffload, z.SessionDense),
		fmt.Sprintf("| A100 80 GB | %d | %d |", z.A100, z.A100Dense),
		fmt.Sprintf("| H200 141 GB | %d | %d |", z.H200, z.H200Dense),
	}
}

// TestRepositoryConfigs reads the example repository's configs (and the e2e test models') the same way, so
// that a typo in one fails here, before an end-to-end run.
func TestRepositoryConfigs(t *testing.T) {
	var paths []string
	for _, pattern := range []string{"model_repository/*/config.pbtxt", "tests/e2e/models/*/config.pbtxt"} {
		p, err := filepath.Glob(filepath.Join("..", "..", pattern))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p...)
	}
	if len(paths) < 3 {
		t.Fatalf("found only %v", paths)
	}
	for _, path := range paths {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			_, cfg := readPbtxt(t, path)
			if cfg.Name != filepath.Base(filepath.Dir(path)) {
				t.Errorf("name %q differs from its directory", cfg.Name)
			}
			cfg.RepositoryDir = t.TempDir()
			if w := cfg.Params["weights"]; w != "" { // a link made by scripts/fetch-model.sh --link: stand in a file
				if err := os.MkdirAll(filepath.Dir(filepath.Join(cfg.RepositoryDir, w)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(cfg.RepositoryDir, w), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := CheckConfig(cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
}
