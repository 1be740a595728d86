// Package cuda is the CUDA device behind the compute seam (issue 11), written as the project's own thin cgo
// layer: it dlopens the CUDA libraries at run time (the driver, libcuda.so.1; NVRTC to compile kernels/*.cu
// for the GPU's own architecture; cuBLASLt, optionally, for f16/bf16 prefill matmuls), so that building,
// testing and serving CPU instances need no CUDA library, and a GPU instance on a host without one fails to
// load with a message naming what is missing. gorgonia.org/cu is not used: its init() calls cuInit and exits
// the whole process on a host without a visible GPU (a c-shared library importing it would kill
// tritonserver), it does not build against CUDA 13, and it has no fp16/bf16 GEMM
// (../shared/facts/toolchain.md).
//
// It owns: the driver probe (driver.go, info.go), NVRTC (nvrtc.go) and the kernel cache (modules.go); the
// device layer's driver calls (stream.go: context current per call, streams, events, async copies, pinned
// and registered host memory, launches) and memory pool (pool.go); and Device, every compute.Device method
// (device.go, ops.go, kv.go, attend.go, sel.go, fence.go) plus token choice on the GPU (sample.go) and
// cuBLASLt (blaslt.go). docs/cuda.md describes it. None of it has run on a GPU yet: it is compile-checked,
// and its conformance test (computetest.Run) skips without a GPU.
package cuda
