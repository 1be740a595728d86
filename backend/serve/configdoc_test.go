package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigReferenceUpToDate fails when docs/configuration.md differs from what the parameter table generates,
// so that a key added, removed or changed in params.go without regenerating the reference fails CI.
func TestConfigReferenceUpToDate(t *testing.T) {
	path := filepath.Join("..", "..", ConfigDocPath)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the committed reference: %v", err)
	}
	got, want := string(b), ConfigReference()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s is out of date (run `go run ./backend/cmd/omnikv-configdoc` from the repository root); "+
				"first difference at line %d:\ncommitted: %q\ngenerated: %q", ConfigDocPath, i+1, gl, wl)
		}
	}
}

// TestGenParamsTable checks the table itself: unique keys, every row documented and parsed, every plain
// default accepted by its own row's parser, and every key named in the reference.
func TestGenParamsTable(t *testing.T) {
	seen := map[string]bool{}
	ref := ConfigReference()
	for _, p := range GenParams() {
		if seen[p.Key] {
			t.Errorf("key %q twice", p.Key)
		}
		seen[p.Key] = true
		if p.Type == "" || p.Doc == "" || p.set == nil {
			t.Errorf("key %q: Type, Doc and a parser are required", p.Key)
		}
		if p.Default == "" && p.DefaultDoc == "" {
			t.Errorf("key %q: no Default and no DefaultDoc: the reference would show nothing", p.Key)
		}
		if !strings.Contains(ref, "| `"+p.Key+"` |") {
			t.Errorf("key %q missing from the reference", p.Key)
		}
		if p.Default != "" {
			o := GenOptions{OmniKV: defaultOmniKV}
			if err := p.set(&o, p.Default, Config{RepositoryDir: t.TempDir()}); err != nil {
				t.Errorf("key %q: its default %q is refused by its own parser: %v", p.Key, p.Default, err)
			}
		}
	}
}

// TestParseGenOptionsDefaults: a config with only weights gets every documented default.
func TestParseGenOptionsDefaults(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.gguf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		params map[string]string
		check  func(o GenOptions) bool
		want   string
	}{
		{nil, func(o GenOptions) bool {
			return o.MaxSequences == 32 && o.MaxTokensCap == 4096 && o.DefaultTokens == 256
		}, "32 / 4096 / 256"},
		{nil, func(o GenOptions) bool {
			return o.StepTokens == 256 && o.MaxSessions == 256 && o.FreeWatermark == 64<<20
		}, "256 / 256 / 64MiB"},
		{nil, func(o GenOptions) bool { return o.SessionIdle.Seconds() == 600 && o.QueueTimeout.Seconds() == 30 }, "600 s / 30 s"},
		{nil, func(o GenOptions) bool { return !o.OmniKV.Enabled && o.KVDType.String() == "fp16" }, "dense, fp16"},
		{map[string]string{"max_tokens_cap": "100"}, func(o GenOptions) bool { return o.DefaultTokens == 100 }, "default_max_tokens cut to the cap"},
		{map[string]string{"omnikv": "true"}, func(o GenOptions) bool {
			c := o.OmniKV
			return c.Enabled && c.FilterLayers == nil && c.Budget.Tokens == 2048 && c.WaitLayers == 1 && c.Window == 16 && c.DenseUntilBudget
		}, "OmniKV defaults, filter layers from the model's depth"},
		{map[string]string{"omnikv": "false", "budget": "-1"}, func(o GenOptions) bool { return !o.OmniKV.Enabled }, "OmniKV keys ignored while off"},
	}
	for _, tc := range tests {
		p := map[string]string{"weights": "m.gguf"}
		for k, v := range tc.params {
			p[k] = v
		}
		o, err := ParseGenOptions(Config{Name: "m", RepositoryDir: dir, Params: p})
		if err != nil || !tc.check(o) {
			t.Errorf("%v: %+v %v, want %s", tc.params, o, err, tc.want)
		}
	}
}
