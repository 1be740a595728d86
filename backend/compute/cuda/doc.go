// Package cuda is the CUDA device behind the compute seam (issue 11), written as the project's own thin cgo
// layer: it dlopens the CUDA libraries at run time (NVRTC to compile kernels/*.cu for the GPU's own
// architecture; the driver, libcuda.so.1, and cuBLASLt as the device grows), so that building, testing and
// serving CPU instances need no CUDA library, and a GPU instance on a host without one fails to load with a
// message naming what is missing. gorgonia.org/cu is not used: its init() calls cuInit and exits the whole
// process on a host without a visible GPU (a c-shared library importing it would kill tritonserver), it does
// not build against CUDA 13, and it has no fp16/bf16 GEMM (../shared/facts/toolchain.md).
//
// So far: NVRTC (nvrtc.go) and the compile check of every kernel (nvrtc_test.go), which runs without a GPU;
// and the driver probe (driver.go: dlopen libcuda.so.1, cuInit, the GPU's name, architecture and memory). The
// device itself (contexts, streams, memory, the ops) is not built yet: a KIND_GPU instance fails to load
// saying what the host lacks (cgo, the driver, a GPU) or, on a GPU host, that the device is not built yet.
package cuda
