// Package tinymodel writes tiny random-weight Hugging Face model directories (config.json +
// model.safetensors) from a fixed seed, byte for byte the same on every machine and Go version.
//
// The goldens in tests/reference/golden/testdata record what transformers computes for these models and the
// sha256 of the files it loaded; the tests here regenerate each preset and check those hashes, so any drift in
// the generator is caught. Randomness comes from splitmix64 and an Irwin-Hall (n=12) approximation of the
// normal distribution built from integer sums only, so no libm or FMA contraction can change a bit.
package tinymodel
