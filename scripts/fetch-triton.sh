#!/usr/bin/env bash
# fetch-triton.sh: make a real tritonserver available on this machine, idempotently.
#
# Creates a Python venv at .cache/tritonvenv (relative to the repository root) holding
#   - nvidia-pytriton==0.7.0 (it bundles tritonserver 2.51.0 = container 24.10, libs grafted
#     into site-packages/nvidia_pytriton.libs),
#   - tritonclient[all], pytest and openai (clients for tests/e2e; openai for the OpenAI gateway test).
# Then prints, as shell assignments that can be eval'd:
#   TRITONSERVER=<path of the tritonserver binary>
#   TRITON_LD_LIBRARY_PATH=<what LD_LIBRARY_PATH must hold to start it>
#   TRITON_PYTHON=<the venv's python>
# Usage: eval "$(scripts/fetch-triton.sh)"   (progress goes to stderr)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TRITON_VENV:-$root/.cache/tritonvenv}"
python="${PYTHON:-python3.11}"
stamp="$venv/.fetch-triton-done"
want="nvidia-pytriton==0.7.0 tritonclient[all] pytest openai==3.51.0"

log() { echo "fetch-triton: $*" >&2; }

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
	if [[ ! -x "$venv/bin/python" ]]; then
		log "creating venv $venv with $python"
		"$python" -m venv "$venv"
	fi
	log "installing $want (first run downloads ~1 GB)"
	# shellcheck disable=SC2086
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $want >&2
	echo "$want" >"$stamp"
else
	log "venv $venv already complete"
fi

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
server="$site/pytriton/tritonserver/bin/tritonserver"
libs="$site/nvidia_pytriton.libs"
if [[ ! -x "$server" ]]; then
	log "error: $server missing or not executable after install"
	exit 1
fi
# tritonserver links libpython3.x (Python backend support); take it from the interpreter that built the venv.
pylib="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')"
ldpath="$libs:$pylib"

missing="$(LD_LIBRARY_PATH="$ldpath" ldd "$server" | grep 'not found' || true)"
if [[ -n "$missing" ]]; then
	log "error: tritonserver has unresolved libraries:"
	echo "$missing" >&2
	exit 1
fi

printf 'TRITONSERVER=%q\n' "$server"
printf 'TRITON_LD_LIBRARY_PATH=%q\n' "$ldpath"
printf 'TRITON_PYTHON=%q\n' "$venv/bin/python"
