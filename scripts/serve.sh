#!/usr/bin/env bash
# The main job: build libtriton_omnikv.so, fetch SmolLM2-135M-Instruct and a real tritonserver, serve the
# example model repository on 127.0.0.1 and answer one streaming request.
#   scripts/serve.sh ["your prompt"]      leaves the server running (prints how to stop it)
#   scripts/serve.sh --stop               stops a server started by this script
# Ports: HTTP 8000, gRPC 8001, metrics 8002 (override with HTTP_PORT, GRPC_PORT, METRICS_PORT).
# TRITON_ARGS adds tritonserver flags, e.g. TRITON_ARGS=--log-verbose=1 (the backend's debug log).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pidfile=.cache/tritonserver.pid
log=.cache/tritonserver.log
http=${HTTP_PORT:-8000} grpc=${GRPC_PORT:-8001} metrics=${METRICS_PORT:-8002}

stop() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    local pid
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 60); do # wait for it to let go of its ports (it drains for up to 30 s)
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    echo "tritonserver stopped" >&2
  fi
  rm -f "$pidfile"
}
if [ "${1:-}" = "--stop" ]; then stop; exit 0; fi

say() { printf '\n== %s\n' "$*" >&2; }
command -v go >/dev/null || { echo "serve: Go 1.26 is required" >&2; exit 1; }
command -v cmake >/dev/null && command -v gcc >/dev/null && command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq cmake gcc curl >/dev/null; }

say "building the backend (cmake -> go build -buildmode=c-shared)"
cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/cmake
cmake --install build/cmake --prefix build/install >/dev/null
nm -D --defined-only build/install/backends/omnikv/libtriton_omnikv.so | awk '{print "   exports " $3}' >&2

say "fetching the model and linking it into model_repository/"
scripts/fetch-model.sh --link >/dev/null

say "fetching tritonserver (PyPI nvidia-pytriton 0.7.0)"
eval "$(scripts/fetch-triton.sh)"

stop
say "starting tritonserver on 127.0.0.1 (HTTP $http, gRPC $grpc), log in $log"
LD_LIBRARY_PATH="$TRITON_LD_LIBRARY_PATH" setsid "$TRITONSERVER" \
  --model-repository="$root/model_repository" --backend-directory="$root/build/install/backends" \
  --http-address=127.0.0.1 --grpc-address=127.0.0.1 --metrics-address=127.0.0.1 \
  --http-port="$http" --grpc-port="$grpc" --metrics-port="$metrics" \
  --pinned-memory-pool-byte-size=0 ${TRITON_ARGS:-} >"$log" 2>&1 &
echo $! >"$pidfile"
for i in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$http/v2/health/ready" >/dev/null; then break; fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "tritonserver exited; see $log" >&2; tail -20 "$log" >&2; exit 1; fi
  sleep 0.5
done
curl -sf "http://127.0.0.1:$http/v2/health/ready" >/dev/null || { echo "tritonserver not ready after 60 s; see $log" >&2; exit 1; }

prompt=${1:-"<|im_start|>user\nWhat is the capital of France? Answer in one sentence.<|im_end|>\n<|im_start|>assistant\n"}
say "POST /v2/models/omnikv/generate_stream (streamed answer below)"
body=$("$TRITON_PYTHON" -c 'import json,sys; print(json.dumps({"text_input": sys.argv[1].encode().decode("unicode_escape"), "stream": True, "max_tokens": 64, "exclude_input_in_output": True}))' "$prompt")
curl -sN -X POST "http://127.0.0.1:$http/v2/models/omnikv/generate_stream" -d "$body" |
  "$TRITON_PYTHON" -u -c '
import json, sys
for line in sys.stdin:
    if not line.startswith("data:"):
        continue
    ev = json.loads(line[5:])
    if "error" in ev:
        sys.exit("error: " + ev["error"])
    sys.stdout.write(ev.get("text_output", "")); sys.stdout.flush()
    if ev.get("finish_reason"):
        sys.stderr.write("\n[finish_reason: %s, %s prompt tokens, %s generated]\n" % (ev["finish_reason"], ev.get("prompt_tokens"), ev.get("completion_tokens")))
'
echo
say "tritonserver keeps running (pid $(cat "$pidfile")): stop it with  scripts/serve.sh --stop"
