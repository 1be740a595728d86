package devices

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	_ "github.com/omnikv-triton/omnikv-triton/backend/compute/cpu" // registers "cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cuda"
)

func init() {
	// "cuda:N" opens the CUDA device on GPU N (issue 11). A host without cgo, the driver (libcuda.so.1), a
	// GPU, NVRTC or the kernel headers gets an error naming what is missing; CPU instances never touch it.
	compute.Register("cuda", func(ordinal int) (compute.Device, error) {
		dev, err := cuda.OpenDevice(ordinal)
		if err != nil {
			return nil, fmt.Errorf("%w (use KIND_CPU or device cpu)", err)
		}
		return dev, nil
	})
}

// Open opens a device by name: "cpu", or "kind:ordinal".
func Open(name string) (compute.Device, error) { return compute.Open(name) }

// Kinds lists the device kinds this build can open.
func Kinds() []string { return compute.Kinds() }
