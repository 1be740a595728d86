//go:build !cgo

package cuda

import (
	"errors"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
)

var errNoCgo = errors.New("cuda: this build has no cgo, so it cannot load the CUDA driver")

// Probe needs cgo (the driver is loaded with dlopen); this build has none.
func Probe(int) (Info, error) { return Info{}, errNoCgo }

// OpenDevice needs cgo; this build has none.
func OpenDevice(int) (compute.Device, error) { return nil, errNoCgo }
