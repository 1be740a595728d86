//go:build cgo

package cuda

import "github.com/omnikv-triton/omnikv-triton/backend/compute"

// OpenDevice opens GPU ordinal as a compute.Device (see Open); the error names what this host lacks: the
// driver (libcuda.so.1), a GPU, NVRTC, or the kernel headers.
func OpenDevice(ordinal int) (compute.Device, error) {
	d, err := Open(ordinal)
	if err != nil {
		return nil, err
	}
	return d, nil
}
