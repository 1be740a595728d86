// Package llama is the Llama-family model: hyperparameters read from a Hugging Face config.json or GGUF
// metadata, weights bound by name from a weights.Set, and the forward pass over a batch of sequences written
// against compute.Device: each step's layout (slots, block tables, batches) is built once and every op covers
// all sequences of the step. A Sequence carries its KV cache and, with OmniKV, its selection state on the
// device. It covers Llama 1-3 (RoPE with llama3 or linear scaling), Mistral-style GQA models, tied or untied
// embeddings and Qwen2-style q/k/v biases.
package llama
