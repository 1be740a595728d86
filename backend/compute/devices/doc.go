// Package devices is the device registry's one importer of the implementations: serve, the CLI and the tools
// open a device by name through it ("cpu", "cuda:0") and never import an implementation themselves. It also
// records the kinds that this build knows of but cannot open (cuda, until the CUDA device exists), so that
// asking for one says why.
package devices
