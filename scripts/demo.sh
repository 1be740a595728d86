#!/usr/bin/env bash
# The main job on the embedded default: build the omnikv CLI, fetch SmolLM2-135M-Instruct and stream an answer.
# Usage: scripts/demo.sh ["your prompt"]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v go >/dev/null || { echo "demo: Go 1.26 is required (https://go.dev/dl)" >&2; exit 1; }
model=$(scripts/fetch-model.sh)
mkdir -p build
echo "building build/omnikv ..." >&2
CGO_ENABLED=0 go build -o build/omnikv ./backend/cmd/omnikv
prompt=${1:-"What is the capital of France? Answer in one sentence."}
echo "prompt: $prompt" >&2
exec build/omnikv generate --model "$model" --prompt "$prompt" --max-tokens 96
