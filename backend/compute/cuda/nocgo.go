//go:build !cgo

package cuda

import "errors"

// Probe needs cgo (the driver is loaded with dlopen); this build has none.
func Probe(int) (Info, error) {
	return Info{}, errors.New("cuda: this build has no cgo, so it cannot load the CUDA driver")
}
