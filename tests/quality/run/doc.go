// Command run measures OmniKV's answer quality on a long-context retrieval set (tests/quality/make_dataset.py):
// for each sample it prefills the chat-templated prompt once, then decodes a fixed number of greedy tokens in
// every mode (dense, OmniKV at several budgets or filter layer sets, the sink_recent baseline), resetting the
// sequence to the prompt between modes, and scores accuracy (the answer appears in the decoded text) and
// agreement with dense (common prefix of the token sequences, exact match).
//
//	go run ./tests/quality/run -model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
//	    -data tests/quality/testdata/passkey.jsonl -out .cache/quality/results.jsonl
//	go run ./tests/quality/run -report .cache/quality/results.jsonl     # the table from saved results
//
// Progress goes to stderr, the markdown table to stdout. Results are appended per sample to -out, and samples
// already there are skipped, so an interrupted run resumes.
package main
