#!/usr/bin/env bash
# test.sh: the CUDA device's tests on the kernel emulator, without a GPU: kernels/*.cu built as host C++ by
# g++ (cudaemu.h, emu.cpp; cached in $TMPDIR by a hash of the sources), each GPU thread a fiber. Runs the
# whole conformance suite, sampling, Stats and the KV tiers through the device's real Go code (~1 minute on
# two cores). It checks arithmetic, indexing and the host logic; not GPU timing, streams or memory ordering.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
command -v g++ >/dev/null || { apt-get update -qq && apt-get install -y -qq g++ >/dev/null; }
CGO_ENABLED=1 go test -count=1 -tags cudaemu -run 'Emulated' ./backend/compute/cuda/
