// Package engine runs generation: it owns the model's forward state, a KV page pool and a scheduler goroutine
// that batches every running sequence into each step (continuous batching): decoding sequences contribute one
// token each, and one sequence at a time contributes a chunk of its prompt. Tokens leave through a buffered
// channel per sequence sized so that the scheduler never blocks on a slow reader. Cancellation is honoured
// before the next step.
package engine
