//go:build !amd64 || purego

package cpu

import "testing"

// forEachImpl runs f with the pure-Go kernels, the only ones in this build.
func forEachImpl(t *testing.T, f func(t *testing.T)) { t.Run("go", f) }
