package cuda

import "fmt"

// Info describes a GPU.
type Info struct {
	Ordinal      int
	Name         string
	Major, Minor int   // compute capability
	Memory       int64 // bytes
	CanMapHost   bool  // pinned host memory can be mapped into the device's address space (zero-copy gathers)
	Driver       int   // CUDA driver API version, e.g. 13000
}

// Arch is the NVRTC architecture of the GPU's own code, e.g. "sm_90".
func (i Info) Arch() string { return fmt.Sprintf("sm_%d%d", i.Major, i.Minor) }

func (i Info) String() string {
	return fmt.Sprintf("GPU %d: %s (%s, %.1f GiB, driver %d.%d)", i.Ordinal, i.Name, i.Arch(), float64(i.Memory)/(1<<30), i.Driver/1000, i.Driver%1000/10)
}
