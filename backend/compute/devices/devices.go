package devices

import (
	"fmt"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	_ "github.com/omnikv-triton/omnikv-triton/backend/compute/cpu" // registers "cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/compute/cuda"
)

func init() {
	// The CUDA device's ops are not built yet (issue 11). Opening "cuda:N" probes the driver and the GPU so
	// that the error says what is missing on this host first.
	compute.Register("cuda", func(ordinal int) (compute.Device, error) {
		info, err := cuda.Probe(ordinal)
		if err != nil {
			return nil, fmt.Errorf("%w (use KIND_CPU or device cpu)", err)
		}
		return nil, fmt.Errorf("cuda: found %v, but the CUDA device is not built into this library yet (KIND_GPU needs it; use KIND_CPU or device cpu)", info)
	})
}

// Open opens a device by name: "cpu", or "kind:ordinal".
func Open(name string) (compute.Device, error) { return compute.Open(name) }

// Kinds lists the device kinds this build can open.
func Kinds() []string { return compute.Kinds() }
