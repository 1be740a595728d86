package cpu

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// modelPath returns the default model file: $OMNIKV_MODEL, else .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
// under the repository root. When it is missing the test fails if $CI is set and is skipped otherwise.
func modelPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("OMNIKV_MODEL")
	if p == "" {
		_, file, _, _ := runtime.Caller(0)
		p = filepath.Join(filepath.Dir(file), "..", "..", "..", ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("model file missing (set OMNIKV_MODEL or run the setup script): %v", err)
		}
		t.Skipf("model file missing (set OMNIKV_MODEL or run the setup script): %v", err)
	}
	return p
}
