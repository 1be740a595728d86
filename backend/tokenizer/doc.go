// Package tokenizer owns text <-> token id conversion for the served models: exact byte-level BPE (GPT-2,
// SmolLM2, Llama-3 style) and SentencePiece-style BPE with byte fallback (Llama-2, Mistral), built either from
// a Hugging Face tokenizer.json (+ tokenizer_config.json) or from a GGUF file's tokenizer.ggml.* metadata; the
// special/added tokens; streaming decode that never splits a UTF-8 character; and the model's own jinja chat
// template (tokenizer.chat_template, or chat_template in tokenizer_config.json), rendered by
// github.com/ardanlabs/jinja with the globals Hugging Face's apply_chat_template supplies (chat.go; goldens
// against transformers in tests/reference/chat).
//
// The package imports no other project package. Encode output equals Hugging Face tokenizers /
// transformers ids exactly on the committed corpus (tests/reference/tokenizer).
//
// A Tokenizer is immutable after construction except for its word cache, and safe for concurrent use.
package tokenizer
