// Package kernels holds the CUDA C++ sources of the GPU device (one op per .cu file; omnikv.cuh holds shared
// helpers), embedded for NVRTC, which backend/compute/cuda uses to compile them for the GPU's own
// architecture at instance start. Every kernel's arguments carry their shapes in a comment. The CUDA device
// that launches them is not built yet (issue 11): the sources are compiled by a test on every CI run (no GPU
// needed), but none has run on a GPU, and a KIND_GPU instance fails to load with a clear error.
package kernels
