#!/usr/bin/env bash
# run.sh (on the GPU machine; no Go there): the GPU proof script, on what tests/gpu/build.sh put in build/gpu.
# Four parts, each timed and capped so that the whole stays under 8 minutes:
#   conformance  cuda.test: the kernels against Go references, and the device conformance suite (helper A:
#                a conformance test in backend/compute/cuda is in cuda.test already; another test binary goes
#                in the CONFORMANCE list below, built by build.sh)
#   compare      llama.test -test.run TestDeviceCompare: greedy decoding on the GPU vs the CPU device (16 cores
#                there) on the golden prompts, dense and OmniKV, SmolLM2's shape and types with synthetic weights
#                (and the real SmolLM2's first layers, build/gpu/smollm2-trunc.gguf, or $OMNIKV_MODEL's file)
#   probe        gpu-probe (nvcc): zero-copy gather from pinned host memory; its GB/s is the bench's --link-gbps
#   bench        omnikv bench, Llama-3-8B shape in bf16 (synthetic weights and KV), 8 decode steps: dense all on
#                the GPU, OmniKV with the sparse layers' KV in pinned host memory, and in a file (--offload-dir);
#                32K, 128K, 450K where memory allows; batch 1 and the largest batch that fits (computed below)
# Prints one table (each bench row with its floor: (weights + KV read) / HBM + fetched / link) and exits
# non-zero on any failure. Logs: a temporary directory, and with $OUT set (the device tool's folder) the table
# in $OUT/table.txt and every log in $OUT/gpu-logs.tgz (the tool brings back at most 8 files).
#   bash tests/gpu/run.sh             on the GPU machine (DEVICE=cuda:0)
#   bash tests/gpu/run.sh --dry-run   anywhere: the CPU device, the tiny shape, short contexts (the plumbing)
# Status: written without a GPU; it has not run on one yet (issue 11).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/build/gpu"
logs="$(mktemp -d /tmp/omnikv-gpu.XXXX)"
dry=0
[[ "${1:-}" == --dry-run ]] && dry=1
budget_s=${BUDGET_S:-470} # the whole script
t_start=$SECONDS
for f in cuda.test llama.test omnikv; do
	[[ -x "$bin/$f" ]] || { echo "run.sh: $bin/$f missing: run tests/gpu/build.sh where Go is, and carry build/gpu"; exit 2; }
done
# Conformance test binaries, each with the package directory it runs in (a test reads files beside it, as
# under go test). Helper A: add further conformance test binaries here (built by build.sh).
CONFORMANCE=("$bin/cuda.test:backend/compute/cuda")

if ((dry)); then
	DEVICE=cpu MODEL=${MODEL:-tiny:bf16} MODEL_Q4=${MODEL_Q4:-tiny:q4} SHAPE_LAYERS=4 KV_DIM=128 WEIGHTS=1500000 FILTER=1 BUDGET=64
	CONTEXTS=(1024 2048 4096) FILE_CONTEXTS=(2048 4096) BATCH_CTX=(1024 2048)
	COMPARE_MODELS=${COMPARE_MODELS:-tiny:bf16}
	unset OMNIKV_REQUIRE_GPU
else
	DEVICE=${DEVICE:-cuda:0} MODEL=${MODEL:-llama3-8b:bf16} MODEL_Q4=${MODEL_Q4:-llama3-8b:q4} SHAPE_LAYERS=32 KV_DIM=1024 WEIGHTS=16061054976 FILTER=2,8,18 BUDGET=2048
	CONTEXTS=(32768 131072 460800) FILE_CONTEXTS=(131072 460800) BATCH_CTX=(32768 131072)
	COMPARE_MODELS=smollm2-135m:q4_1,tiny:bf16
	[[ -f "$bin/smollm2-trunc.gguf" ]] && export OMNIKV_MODEL="$bin/smollm2-trunc.gguf" # SmolLM2's first layers (build.sh)
	[[ -n "${OMNIKV_MODEL:-}" && -f "${OMNIKV_MODEL:-}" ]] && COMPARE_MODELS="smollm2,$COMPARE_MODELS"
	export OMNIKV_REQUIRE_GPU=1
	if [[ -e /usr/local/cuda/lib64/libnvrtc.so.13 ]]; then
		export OMNIKV_NVRTC=/usr/local/cuda/lib64/libnvrtc.so.13 OMNIKV_CUDA_INCLUDE=/usr/local/cuda/include
	elif [[ -d "$bin/nvrtc" ]]; then
		export OMNIKV_NVRTC="$bin/nvrtc/libnvrtc.so.12" OMNIKV_CUDA_INCLUDE="$bin/nvrtc/include" LD_LIBRARY_PATH="$bin/nvrtc:${LD_LIBRARY_PATH:-}"
	fi
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
fi
echo "device $DEVICE, model $MODEL, logs in $logs"
rows="$logs/rows.tsv" # part, config, batch, context, ms, floor, dev bytes, rss bytes, seconds, result
: >"$rows"
failed=0
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$rows"; }
left() { echo $((budget_s - (SECONDS - t_start))); }

# run NAME CAP CMD...: runs CMD with a time cap (at most what is left), logs to $logs/NAME.log; sets rc, secs.
run() {
	local name=$1 cap=$2
	shift 2
	local t0=$SECONDS lim
	lim=$(($(left) < cap ? $(left) : cap))
	if ((lim < 10)); then rc=124 secs=0; echo "  $name: no time left" >"$logs/$name.log"; return; fi
	timeout --signal=INT --kill-after=10 "$lim" "$@" >"$logs/$name.log" 2>&1
	rc=$? secs=$((SECONDS - t0))
	echo "  $name: rc $rc, ${secs}s" >&2
}
verdict() { case $1 in 0) echo ok ;; 124 | 137) echo TIMEOUT ;; *) echo "FAIL($1)" ;; esac; }

# 1. conformance
for entry in "${CONFORMANCE[@]}"; do
	tb=${entry%%:*} n=$(basename "${entry%%:*}" .test)
	(
		cd "$root/${entry#*:}" || exit
		run "conformance-$n" 90 "$tb" -test.v -test.count=1 -test.timeout=85s
		echo "$rc $secs" >"$logs/conformance-$n.rc"
	)
	read -r rc secs <"$logs/conformance-$n.rc"
	summary="$(grep -c '^--- PASS' "$logs/conformance-$n.log") pass, $(grep -c '^--- SKIP' "$logs/conformance-$n.log") skip, $(grep -c '^--- FAIL' "$logs/conformance-$n.log") fail"
	row conformance "$n: $summary" - - - - - - "$secs" "$(verdict $rc)"
	((rc == 0)) || failed=1
done

# 2. compare (from the package's directory: the test finds the golden files from there)
(
	cd "$root/backend/llama" || exit
	export OMNIKV_TEST_DEVICE=$DEVICE OMNIKV_COMPARE_MODELS=$COMPARE_MODELS
	run compare 150 "$bin/llama.test" -test.run 'TestDeviceCompare' -test.v -test.count=1 -test.timeout=145s
	echo "$rc $secs" >"$logs/compare.rc"
)
read -r rc secs <"$logs/compare.rc"
ties=$(grep -c 'near-tie, accepted' "$logs/compare.log")
row compare "$COMPARE_MODELS: $(grep -c '^        --- PASS' "$logs/compare.log") cases pass, $ties after near-ties" - - - - - - "$secs" "$(verdict $rc)"
((rc == 0)) || failed=1

# 3. probe
LINK=""
if ((dry)) || ! command -v nvcc >/dev/null || [[ ! -f "$bin/probe/offload_bw.cu" ]]; then
	row probe "skipped (no nvcc or no probe source)" - - - - - - 0 skip
else
	run probe-build 60 nvcc -O3 -arch=sm_90 -o /tmp/omnikv-offload_bw "$bin/probe/offload_bw.cu"
	if ((rc == 0)); then run probe 40 /tmp/omnikv-offload_bw; fi
	LINK=$(grep 'zero-copy gather from pinned host: *98304' "$logs/probe.log" 2>/dev/null | sed -E 's/.*: ([0-9.]+) GB\/s$/\1/')
	row probe "zero-copy gather 98304 rows: ${LINK:-?} GB/s; $(grep -m1 'H2D pinned' "$logs/probe.log" 2>/dev/null)" - - - - - - "$secs" "$(verdict $rc)"
	((rc == 0)) || failed=1
fi

# 4. bench. Largest batch that fits, from the shape: KV per token = layers x 2 x kvDim x 2 bytes (fp16); dense
# keeps it all on the GPU; OmniKV keeps 1/4 there (8 of 32 layers dense with filter layers 2,8,18) and 3/4 in
# host memory (pinned); 10% of each memory and 2 GiB are left for the rest.
if ((dry)); then gpu_b=$((8 << 30)); else gpu_b=$(($(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0 | head -1) << 20)); fi
host_b=$(($(awk '/MemAvailable/ {print $2}' /proc/meminfo) << 10))
disk_b=$(($(df -Pk /tmp | awk 'NR==2 {print $4}') << 10))
kv_tok=$((SHAPE_LAYERS * 2 * KV_DIM * 2))
fit() { # fit CONTEXT GPU_SHARE_NUM/4 HOST_SHARE_NUM/4: the batch that fits, at least 1, at most 32
	local c=$1 g=$2 h=$3 free_g free_h b
	free_g=$((gpu_b * 9 / 10 - WEIGHTS - (2 << 30)))
	free_h=$((host_b * 7 / 10))
	b=$((free_g / (c * kv_tok * g / 4 + (256 << 20))))
	((h > 0)) && b=$((b < free_h / (c * kv_tok * h / 4) ? b : free_h / (c * kv_tok * h / 4)))
	((b > 32)) && b=32
	((dry)) && b=2
	echo $((b < 1 ? 1 : b))
}
common=(--device "$DEVICE" --synthetic-kv --decode-tokens 8 --json --filter-layers "$FILTER" --budget "$BUDGET")
[[ -n "$LINK" ]] && common+=(--link-gbps "$LINK")
bench() { # bench NAME CONFIG ARGS...: one omnikv bench run (the bf16 model unless ARGS name another)
	local name=$1 cfg=$2
	shift 2
	run "bench-$name" 150 "$root/build/gpu/omnikv" bench --synthetic-model "$MODEL" "${common[@]}" "$@"
	grep '^{' "$logs/bench-$name.log" | sed "s|^|$cfg\t$(verdict $rc)\t$secs\t|" >>"$logs/bench.rows"
	if ((rc != 0)); then row bench "$cfg: $(grep -v '^{' "$logs/bench-$name.log" | tail -1 | tail -c 100)" - - - - - - "$secs" "$(verdict $rc)"; failed=1; fi
}
: >"$logs/bench.rows"
dense_ctx=() okv_ctx=() file_ctx=()
for c in "${CONTEXTS[@]}"; do
	if ((c * kv_tok < gpu_b * 9 / 10 - WEIGHTS)); then dense_ctx+=("$c"); else row bench "dense at $c: skipped, its KV exceeds the GPU memory" - "$c" - - - - 0 skip; fi
	if ((c * kv_tok * 3 / 4 < host_b * 7 / 10)); then okv_ctx+=("$c"); else row bench "omnikv at $c: skipped, its sparse KV exceeds host memory" - "$c" - - - - 0 skip; fi
done
for c in "${FILE_CONTEXTS[@]}"; do
	if ((c * kv_tok * 3 / 4 < disk_b * 8 / 10)); then file_ctx+=("$c"); else row bench "omnikv file at $c: skipped, $((disk_b >> 30)) GiB free on /tmp" - "$c" - - - - 0 skip; fi
done
join() { local IFS=,; echo "$*"; }
# Most telling first: batch 1 dense vs OmniKV at every context, then batches, then the file tier, then q4.
[[ ${#dense_ctx[@]} -gt 0 ]] && bench dense-b1 "$MODEL dense, all KV on the device" --dense --context "$(join "${dense_ctx[@]}")"
[[ ${#okv_ctx[@]} -gt 0 ]] && bench omnikv-b1 "$MODEL omnikv, sparse KV in host memory" --modes omnikv --context "$(join "${okv_ctx[@]}")"
[[ ${#dense_ctx[@]} -gt 0 ]] && bench omnikv-res-b1 "$MODEL omnikv resident, all KV on the device" --modes omnikv --sparse-resident --context "$(join "${dense_ctx[@]}")"
for c in "${BATCH_CTX[@]}"; do
	bench "dense-b-$c" "$MODEL dense, all KV on the device" --dense --batch "$(fit "$c" 4 0)" --context "$c"
	bench "omnikv-b-$c" "$MODEL omnikv, sparse KV in host memory" --modes omnikv --batch "$(fit "$c" 1 3)" --context "$c"
done
offdir=$(mktemp -d /tmp/omnikv-offload.XXXX)
[[ ${#file_ctx[@]} -gt 0 ]] && bench omnikv-file "$MODEL omnikv, sparse KV in a file" --modes omnikv --offload-dir "$offdir" --context "$(join "${file_ctx[@]}")"
rm -rf "$offdir"
if (($(left) > 90)); then # 4-bit weights: the same step with a quarter of the weight bytes
	bench q4-dense "$MODEL_Q4 dense, all KV on the device" --synthetic-model "$MODEL_Q4" --dense --context "${BATCH_CTX[-1]}"
	bench q4-omnikv "$MODEL_Q4 omnikv, sparse KV in host memory" --synthetic-model "$MODEL_Q4" --modes omnikv --context "${BATCH_CTX[-1]}"
else
	row bench "$MODEL_Q4: skipped, under 90 s left" - - - - - - 0 skip
fi

python3 - "$rows" "$logs/bench.rows" "$((SECONDS - t_start))" <<'PY' | tee "$logs/table.txt"
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
for l in open(sys.argv[2]):
    cfg, res, secs, js = l.rstrip("\n").split("\t", 3)
    r = json.loads(js)
    ms = r.get("decode_ms_per_token") or r.get("decode_ms_per_step")
    fl = r.get("floor_ms_per_token") or r.get("floor_ms_per_step")
    rows.append(["bench", cfg, str(r.get("batch", 1)), str(r["context"]), f"{ms:.2f}", f"{fl:.2f}",
                 r.get("device_bytes", -1), r.get("rss_bytes", -1), secs, res])
def gib(b):
    b = int(b) if str(b).lstrip("-").isdigit() else -1
    return "-" if b < 0 else f"{b / 2**30:.1f}"
def ratio(ms, fl):
    try:
        return f"{float(ms) / float(fl):.1f}"
    except (ValueError, ZeroDivisionError):
        return "-"
print(f'{"part":<11} {"what":<56} {"batch":>5} {"context":>7} {"ms/step":>8} {"floor ms":>8} {"x floor":>7} {"dev GiB":>7} {"RSS GiB":>7} {"s":>4}  result')
for p, what, b, c, ms, fl, dev, rss, s, res in rows:
    what = what if res != "ok" else what[:56]
    print(f"{p:<11} {what:<56} {b:>5} {c:>7} {ms:>8} {fl:>8} {ratio(ms, fl):>7} {gib(dev):>7} {gib(rss):>7} {s:>4}  {res}")
print(f"total {sys.argv[3]} s")
PY
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
	cp "$logs/table.txt" "$OUT/table.txt"
	tar czf "$OUT/gpu-logs.tgz" -C "$logs" .
fi
((failed == 0)) || { echo "run.sh: FAILED (logs in $logs)"; exit 1; }
echo "run.sh: all parts passed"
