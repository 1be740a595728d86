// Package engine runs generation: it owns the model's forward state, a KV page pool and a scheduler goroutine
// that batches every running sequence into each step (continuous batching): every decoding sequence
// contributes one token, and prompts fill the rest of the step in chunks, first come first served, within a
// budget that bounds how much they may slow the decoding sequences (a cost model of each token's weight work
// and attention; sched.go). One forward pass per step covers them all, and the step's logits are read back
// once. Tokens leave through a buffered channel per sequence sized so that the scheduler never blocks on a
// slow reader. Cancellation is honoured before the next step; a panic in a step fails that step's sequences,
// not the process.
package engine
