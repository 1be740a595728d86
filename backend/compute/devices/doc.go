// Package devices is the device registry's one importer of the implementations: serve, the CLI and the tools
// open a device by name through it ("cpu", "cuda:0") and never import an implementation themselves. Opening
// "cuda:N" on a host without cgo, the CUDA driver, a GPU or NVRTC fails with an error naming what is missing.
package devices
