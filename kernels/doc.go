// Package kernels holds the CUDA C++ sources of the GPU device (one op per .cu file; omnikv.cuh, device.cuh
// and dequant.cuh hold shared helpers and layouts), embedded for NVRTC, which backend/compute/cuda uses to
// compile them for the GPU's own architecture when a device opens. Every kernel's arguments carry their
// shapes in a comment. The sources are compiled by a test on every CI run (no GPU needed), but none has run
// on a GPU yet.
package kernels
