"""Send every bad input of docs/serving.md's table to a running server and print what it answers.

The table in docs/serving.md pastes this script's output. Run it against scripts/serve.sh's server:
    .cache/tritonvenv/bin/python tests/perf/bad_inputs.py [--http 127.0.0.1:8000] [--grpc 127.0.0.1:8001]
Each case is one request (HTTP generate or a gRPC ModelStreamInfer stream); the script then checks that the
server still answers a good request. Exit status 1 when a bad input was accepted or the server stopped
answering. Needs tritonclient[grpc] and numpy (both in .cache/tritonvenv).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import urllib.error
import urllib.request

import numpy as np
import tritonclient.grpc as grpcclient

GEN, CHAT = "omnikv", "omnikv_chat"
CHAT_PROMPT = "<|im_start|>user\nhi<|im_end|>\n"


def http_generate(base: str, model: str, body: dict) -> tuple[int, str]:
    """POSTs one /generate request; returns the HTTP status and the error (or the body when it succeeded)."""
    req = urllib.request.Request(f"http://{base}/v2/models/{model}/generate", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            text = r.read().decode()
            try:  # Triton answers some errors with status 200 and an "error" field
                return r.status, "ERROR " + json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                return r.status, text
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)["error"]
        except (ValueError, KeyError):
            return e.code, text


def tensor(name: str, value: np.ndarray) -> grpcclient.InferInput:
    kinds = {"O": "BYTES", "b": "BOOL", "i": {4: "INT32", 8: "INT64"}, "f": {4: "FP32", 8: "FP64"}}
    kind = kinds[value.dtype.kind]
    dtype = kind if isinstance(kind, str) else kind[value.dtype.itemsize]
    t = grpcclient.InferInput(name, list(value.shape), dtype)
    t.set_data_from_numpy(value)
    return t


def grpc_stream(url: str, model: str, inputs: dict[str, np.ndarray], **seq) -> tuple[bool, str]:
    """Sends one request on a ModelStreamInfer stream; returns (ok, error message or the text answered)."""
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    text = []
    try:
        client.async_stream_infer(model, [tensor(k, v) for k, v in inputs.items()],
                                  enable_empty_final_response=True, **seq)
        while True:
            result, error = q.get(timeout=120)
            if error is not None:
                return False, str(error)
            out = result.as_numpy("text_output")
            if out is not None:
                text.extend(x.decode(errors="replace") for x in out.reshape(-1))
            if result.get_response().parameters["triton_final_response"].bool_param:
                return True, "".join(text)
    except grpcclient.InferenceServerException as e:
        return False, str(e)
    finally:
        client.stop_stream()


def s(*values) -> np.ndarray:
    """A BYTES tensor."""
    return np.array([v if isinstance(v, bytes) else v.encode() for v in values], dtype=object)


def i32(*values) -> np.ndarray:
    return np.array(values, dtype=np.int32)


# (row of the docs table, model, HTTP body or None, gRPC inputs or None, gRPC sequence args)
CASES = [
    ("neither text_input nor input_ids", GEN, {"max_tokens": 4}, None, {}),
    ("both text_input and input_ids", GEN, {"text_input": "hi", "input_ids": [1, 2]}, None, {}),
    ("wrong dtype: text_input INT32", GEN, None, {"text_input": i32(1)}, {}),
    ("wrong dtype: max_tokens FP32", GEN, None, {"text_input": s("hi"), "max_tokens": np.array([1.5], np.float32)}, {}),
    ("wrong dtype: stream STRING", GEN, None, {"text_input": s("hi"), "stream": s("yes")}, {}),
    ("wrong dtype: max_tokens as JSON string (HTTP)", GEN, {"text_input": "hi", "max_tokens": "8"}, None, {}),
    ("wrong shape: text_input [2]", GEN, None, {"text_input": s("a", "b")}, {}),
    ("wrong shape: max_tokens [2]", GEN, None, {"text_input": s("hi"), "max_tokens": i32(4, 5)}, {}),
    ("empty prompt: text_input \"\"", GEN, {"text_input": ""}, None, {}),
    ("empty prompt: input_ids []", GEN, None, {"input_ids": i32()}, {}),
    ("invalid UTF-8 in text_input", GEN, None, {"text_input": s(b"a\xffb")}, {}),
    ("prompt + max_tokens over the context", GEN, {"text_input": "word " * 9000, "max_tokens": 8}, None, {}),
    ("max_tokens 0", GEN, {"text_input": "hi", "max_tokens": 0}, None, {}),
    ("max_tokens -5", GEN, {"text_input": "hi", "max_tokens": -5}, None, {}),
    ("max_tokens over max_tokens_cap", GEN, {"text_input": "hi", "max_tokens": 100000}, None, {}),
    ("temperature < 0", GEN, {"text_input": "hi", "sampling_parameters": json.dumps({"temperature": -1})}, None, {}),
    ("top_p 0", GEN, {"text_input": "hi", "sampling_parameters": json.dumps({"top_p": 0})}, None, {}),
    ("top_p 1.01", GEN, {"text_input": "hi", "sampling_parameters": json.dumps({"top_p": 1.01})}, None, {}),
    ("top_k < 0", GEN, {"text_input": "hi", "sampling_parameters": json.dumps({"top_k": -2})}, None, {}),
    ("malformed sampling_parameters JSON", GEN, {"text_input": "hi", "sampling_parameters": '{"temperature": 0.5'},
     None, {}),
    ("unknown sampling key", GEN, {"text_input": "hi", "sampling_parameters": json.dumps({"temprature": 0.5})},
     None, {}),
    ("sampling value of the wrong type", GEN, {"text_input": "hi", "sampling_parameters": json.dumps({"top_k": "x"})},
     None, {}),
    ("token id >= vocabulary", GEN, {"input_ids": [1, 49152]}, None, {}),
    ("token id < 0", GEN, {"input_ids": [-7]}, None, {}),
    ("unknown input name", GEN, None, {"text_input": s("hi"), "prompt": s("hi")}, {}),
    ("chat: turn of an unknown session (no sequence_start)", CHAT, None, {"text_input": s("hello")},
     {"sequence_id": 424242}),
    ("chat: no sequence_id", CHAT, None, {"text_input": s("hello")}, {}),
    ("chat: HTTP generate (cannot carry a sequence_id)", CHAT, {"text_input": "hello"}, None, {}),
    ("chat: empty text_input without sequence_end", CHAT, None, {"text_input": s("")},
     {"sequence_id": 424243, "sequence_start": True}),
    ("HTTP generate with stream true", GEN, {"text_input": "hi", "max_tokens": 2, "stream": True}, None, {}),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--http", default="127.0.0.1:8000")
    ap.add_argument("--grpc", default="127.0.0.1:8001")
    args = ap.parse_args()
    failed = 0
    print("| bad input | sent as | answer |")
    print("| --- | --- | --- |")
    for row, model, body, inputs, seq in CASES:
        if body is not None:
            status, msg = http_generate(args.http, model, body)
            ok, how = status == 200 and not msg.startswith("ERROR "), f"HTTP generate -> {status}"
            msg = msg.removeprefix("ERROR ")
        else:
            ok, msg = grpc_stream(args.grpc, model, inputs, **seq)
            how = "gRPC stream"
        if ok:
            failed += 1
            msg = "ACCEPTED: " + msg[:80]
        print(f"| {row} | {how} | `{msg}` |".replace("\n", " "))
        sys.stdout.flush()
    # The rejected first turn above still opened sequence 424243 in Triton's sequence batcher; an open sequence
    # holds server shutdown until --exit-timeout-secs. An END turn closes it (the backend answers "unknown
    # session": it never made one).
    grpc_stream(args.grpc, CHAT, {"text_input": s("")}, sequence_id=424243, sequence_end=True)
    good_ok, good = grpc_stream(args.grpc, GEN, {"text_input": s(CHAT_PROMPT), "max_tokens": i32(3)})
    print(f"\nafter all cases, a good request: {'ok' if good_ok else 'FAILED'}: {good!r}")
    return 1 if failed or not good_ok else 0


if __name__ == "__main__":
    sys.exit(main())
