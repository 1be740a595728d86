// Package testmodel finds the real model the tests run on (SmolLM2-135M-Instruct, Q4_1 GGUF), for the test
// files of every package: $OMNIKV_MODEL, else .cache/models/ under the repository root (scripts/fetch-model.sh
// puts it there). Missing, the test fails when $CI is set (CI must run them) and is skipped otherwise.
package testmodel

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// SmolLM2 returns the model file's path.
func SmolLM2(t testing.TB) string {
	t.Helper()
	p := os.Getenv("OMNIKV_MODEL")
	if p == "" {
		_, file, _, _ := runtime.Caller(0)
		p = filepath.Join(filepath.Dir(file), "..", "..", "..", ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("model missing (%v): run scripts/fetch-model.sh or set OMNIKV_MODEL", err)
		}
		t.Skipf("model missing (%v): run scripts/fetch-model.sh or set OMNIKV_MODEL", err)
	}
	return p
}
