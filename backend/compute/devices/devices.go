package devices

import (
	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	_ "github.com/omnikv-triton/omnikv-triton/backend/compute/cpu" // registers "cpu"
)

func init() {
	compute.Unavailable("cuda", "the CUDA device is not built into this library yet (KIND_GPU needs it; use KIND_CPU or device cpu)")
}

// Open opens a device by name: "cpu", or "kind:ordinal".
func Open(name string) (compute.Device, error) { return compute.Open(name) }

// Kinds lists the device kinds this build can open.
func Kinds() []string { return compute.Kinds() }
