// Package clienttest runs a GRPCInferenceService in process on a loopback TCP port, for the tests
// of the client library and of omnikv-client: a real gRPC server whose ModelStreamInfer is a
// handler the test supplies, plus Echo, a small decoupled "model" that streams the words of its
// prompt back the way the omnikv models stream text. Its wire encoding (BYTES elements, response
// parameters) is written independently of package client so that the client's decoding is tested
// against a second implementation.
package clienttest
