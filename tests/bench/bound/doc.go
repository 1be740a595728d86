// Command bound measures this machine's limits that bound LLM decoding on the CPU and turns them into a
// per-token bound for a given GGUF model.
//
// It owns: a streaming read-bandwidth probe (pure Go loop with 8 accumulators, runtime memmove via copy(),
// and on amd64 an AVX2 read kernel in Go assembly), a peak floating-point rate probe (AVX2 and AVX-512 FMA
// loops in Go assembly, scalar fallback elsewhere), a minimal GGUF header reader (metadata + tensor table,
// no tensor data), and the traffic model: bytes a decode step must read per token (every matrix once, one
// embedding row, the output head, the KV cache at a given context) and the FLOPs it must do.
//
// Usage:
//
//	go run ./tests/bench/bound --model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf --context 128,2048,8192
//
// With --json it prints one JSON object per line (a "machine" line and one "bound" line per context) for
// tests/bench/run_all.sh. It is a benchmark tool, not part of CI.
package main
