// Package serve is the Triton-facing logic of the omnikv backend written in plain Go (no cgo):
// the request and response types that the C adapters in cgo/ fill and drain, the Model and
// Sender interfaces they meet at, model configuration parsing, error kinds (codes that cgo/
// maps to Triton error codes in one place), and the rule that every accepted request ends with
// exactly one final response, even when a model panics.
//
// Nothing in this package knows about C handles: cgo/ copies a Triton request's inputs and
// parameters into a Request, wraps the request's response factory in a Sender, and calls Serve.
package serve
