// Package client is a small Go client for a Triton Inference Server speaking the KServe v2 gRPC
// protocol (stubs in client/inferencepb), shaped for the omnikv models: Generate sends one
// request over ModelStreamInfer (the only RPC a decoupled model answers) and hands each streamed
// response to a callback as a Delta of text, token ids and finish reason, until the response
// flagged triton_final_response. It also owns the wire details a caller should not redo: the
// raw tensor encoding (BYTES elements as a 4-byte little-endian length then the bytes), request
// parameters (sequence_id, sequence_start, sequence_end), and the health and repository calls
// (Live, Ready, ModelReady, Load, Unload).
//
// The command-line front end is client/cmd/omnikv-client; client/clienttest holds an in-process
// gRPC server for tests.
package client
