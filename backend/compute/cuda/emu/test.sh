#!/usr/bin/env bash
# test.sh: the CUDA device's tests on the kernel emulator, without a GPU: kernels/*.cu built as host C++ by
# g++ (cudaemu.h, emu.cpp; cached in $TMPDIR by a hash of the sources), each GPU thread a fiber. Runs the
# whole conformance suite, sampling, Stats and the KV tiers through the device's real Go code (~1 minute on
# two cores), then a whole model against the CPU device (~2 minutes). It checks arithmetic, indexing and the
# host logic; not GPU timing, streams or memory ordering.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
command -v g++ >/dev/null || { apt-get update -qq && apt-get install -y -qq g++ >/dev/null; }
CGO_ENABLED=1 go test -count=1 -tags cudaemu -run 'Emulated' ./backend/compute/cuda/
# Whole model, end to end through the CUDA device's Go code and emulated kernels against the CPU device: greedy
# decoding of the tiny synthetic model, dense and OmniKV on a short chat prompt (~16 s), and OmniKV selecting
# 32 of a 600-token prompt's tokens for 64 steps (~110 s): filter layers, Select, Gather from host pages, sparse
# attention. (All ten golden prompts take ~25 min: OMNIKV_TEST_DEVICE=cudaemu:0 go test -tags cudaemu
# -run TestDeviceCompare/tiny:bf16 ./backend/llama/.)
for run in 'TestDeviceCompare/tiny:bf16/(dense|omnikv)/chat_capital$' 'TestDeviceCompare/tiny:bf16/omnikv/chat_filler_600$'; do
  CGO_ENABLED=1 OMNIKV_TEST_DEVICE=cudaemu:0 OMNIKV_COMPARE_MODELS=tiny:bf16 go test -count=1 -tags cudaemu -v -run "$run" ./backend/llama/ |
    grep -E '^(=== RUN|--- |ok|FAIL|PASS)|tokens equal|differ'
done
