#!/usr/bin/env python3
"""Concurrent streaming generation through a running tritonserver: aggregate tokens/s and per-stream
inter-token latency at each concurrency level, with Triton's own gRPC client (tritonclient).

At concurrency C, C client threads each keep one gRPC stream busy: they send REQUESTS requests one after
another on the `omnikv` model, each a distinct prompt of PROMPT token ids (input_ids, filler ids), greedy,
`max_tokens` TOKENS with `ignore_eos` (every request decodes exactly TOKENS tokens), streaming one response
per token. Figures, per level:
  tokens/s       all generated tokens / wall time from the first request sent to the last response
  ITL p50/p99    gaps between consecutive responses of one request (the first token excluded)
  TTFT p50       request sent -> first response
Bounded: every level sends C*REQUESTS requests, a timeout stops a stuck run.

Start the server first (scripts/serve.sh), then with the Triton venv:
  .cache/tritonvenv/bin/python tests/perf/concurrency.py --levels 1,2,4,8,16 [--json]
"""

import argparse
import json
import queue
import statistics
import sys
import threading
import time

import numpy as np
import tritonclient.grpc as grpcclient


def quantile(v, q):
    if not v:
        return float("nan")
    s = sorted(v)
    return s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]


def one_stream(url, model, prompts, tokens, timeout, out):
    """Sends the prompts one after another on one stream; appends (sent, [arrival times]) per request."""
    client = grpcclient.InferenceServerClient(url)
    done = queue.Queue()
    arrivals = []

    def callback(result, error):
        now = time.perf_counter()
        if error is not None:
            done.put(error)
            return
        arrivals.append(now)
        final = result.get_response().parameters.get("triton_final_response")
        if final is not None and final.bool_param:
            done.put(None)

    client.start_stream(callback=callback)
    try:
        for ids in prompts:
            arrivals.clear()
            inputs = [
                grpcclient.InferInput("input_ids", [len(ids)], "INT32"),
                grpcclient.InferInput("max_tokens", [1], "INT32"),
                grpcclient.InferInput("stream", [1], "BOOL"),
                grpcclient.InferInput("sampling_parameters", [1], "BYTES"),
                grpcclient.InferInput("exclude_input_in_output", [1], "BOOL"),
            ]
            inputs[0].set_data_from_numpy(np.array(ids, dtype=np.int32))
            inputs[1].set_data_from_numpy(np.array([tokens], dtype=np.int32))
            inputs[2].set_data_from_numpy(np.array([True]))
            inputs[3].set_data_from_numpy(np.array([json.dumps({"ignore_eos": True})], dtype=object))
            inputs[4].set_data_from_numpy(np.array([True]))
            sent = time.perf_counter()
            client.async_stream_infer(model, inputs, enable_empty_final_response=True)
            err = done.get(timeout=timeout)
            if err is not None:
                raise RuntimeError(f"request failed: {err}")
            out.append((sent, list(arrivals)))
    finally:
        client.stop_stream()
        client.close()


def level(url, model, conc, requests, prompt_len, tokens, timeout):
    outs = [[] for _ in range(conc)]
    errors = []

    def worker(i):
        prompts = [[100 + (j * 37 + (i * requests + r) * 101) % 20000 for j in range(prompt_len)] for r in range(requests)]
        try:
            one_stream(url, model, prompts, tokens, timeout, outs[i])
        except Exception as e:  # reported below
            errors.append(f"stream {i}: {e}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit("concurrency.py: " + "; ".join(errors))
    gaps, ttft, generated = [], [], 0
    for o in outs:
        for sent, arr in o:
            toks = [a for a in arr[:-1]] if len(arr) > tokens else arr  # the empty final response, if separate
            generated += min(tokens, len(toks))
            if toks:
                ttft.append(toks[0] - sent)
            gaps += [b - a for a, b in zip(toks, toks[1:])]
    return {
        "concurrency": conc, "requests": conc * requests, "prompt_tokens": prompt_len, "max_tokens": tokens,
        "tokens_per_s": generated / wall, "itl_p50_ms": 1000 * quantile(gaps, 0.5), "itl_p99_ms": 1000 * quantile(gaps, 0.99),
        "itl_mean_ms": 1000 * statistics.fmean(gaps) if gaps else float("nan"), "ttft_p50_ms": 1000 * quantile(ttft, 0.5),
        "wall_s": wall,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="127.0.0.1:8001")
    p.add_argument("--model", default="omnikv")
    p.add_argument("--levels", default="1,2,4,8,16")
    p.add_argument("--requests", type=int, default=3, help="requests per stream and level")
    p.add_argument("--prompt", type=int, default=128, help="prompt tokens")
    p.add_argument("--tokens", type=int, default=64, help="generated tokens per request")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    rows = []
    for c in [int(x) for x in a.levels.split(",")]:
        r = level(a.url, a.model, c, a.requests, a.prompt, a.tokens, a.timeout)
        rows.append(r)
        if a.json:
            print(json.dumps(r), flush=True)
        print(f"concurrency {c:3d}: {r['tokens_per_s']:7.1f} tok/s, ITL p50 {r['itl_p50_ms']:6.2f} ms p99 {r['itl_p99_ms']:6.2f} ms, "
              f"TTFT p50 {r['ttft_p50_ms']:7.1f} ms ({r['requests']} requests, {r['wall_s']:.1f} s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
