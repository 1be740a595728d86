// Package kernels will hold the CUDA C++ sources of the GPU device (one op per file), embedded for NVRTC by
// backend/compute/cuda. There are none yet: every op runs on the CPU device (backend/compute/cpu), which is a
// complete implementation of compute.Device, and a KIND_GPU instance fails to load with a clear error.
package kernels
