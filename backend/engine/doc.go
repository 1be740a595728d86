// Package engine runs generation for one model and owns a request end to end: validation (once),
// tokenization with the model's chat template, chat sessions by id, admission against the KV memory budgets,
// continuous batching, sampling, stop strings and detokenized text deltas, cancellation and metrics. serve
// only maps Triton requests to GenRequests and Events to responses.
//
// The scheduler goroutine batches every running sequence into each step: every decoding sequence
// contributes one token, and prompts fill the rest of the step in chunks, first come first served, within a
// budget that bounds how much they may slow the decoding sequences (a cost model of each token's weight work
// and attention; sched.go). One forward pass per step covers them all, and the step's logits are read back
// once. Tokens leave through a buffered channel per sequence sized so that the scheduler never blocks on a
// slow reader. Cancellation is honoured before the next step; a panic anywhere in a step (the scheduler, the
// model, a device worker) fails that step's sequences, not the process.
//
// A session is its conversation (session.go): each turn renders the whole conversation, keeps the longest
// prefix its KV cache holds and prefills the rest, so a turn's context is right whatever ended the turn before,
// and a session whose KV was evicted (idle sessions go first when a request needs memory) re-prefills
// transparently. Admission reserves a request's whole KV (prompt, max_tokens, OmniKV staging) before it runs;
// what does not fit waits up to QueueTimeout; free memory above a watermark goes back to the OS.
package engine
