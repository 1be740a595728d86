"""The omnikv and omnikv_chat models (SmolLM2-135M-Instruct) through the real tritonserver: greedy output
equal to the local CLI, streaming over gRPC and HTTP, bad inputs, chat sessions, cancellation, statistics,
unload/reload, and the Go client."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from conftest import REPO_ROOT

GEN, CHAT = "omnikv", "omnikv_chat"


@pytest.fixture(scope="module")
def server(triton, gguf_model):
    return triton.start([GEN, CHAT])


def http_post(server, path: str, body: dict, timeout: float = 120.0) -> tuple[int, str]:
    req = urllib.request.Request(server.http_url + path, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def generate(server, body: dict) -> dict:
    status, text = http_post(server, f"/v2/models/{GEN}/generate", body)
    assert status == 200, text
    return json.loads(text)


def generate_stream(server, body: dict, model: str = GEN) -> list[dict]:
    status, text = http_post(server, f"/v2/models/{model}/generate_stream", body)
    assert status == 200, text
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def _input(name: str, value) -> grpcclient.InferInput:
    arr = np.asarray(value)
    if arr.dtype.kind in "OUS":
        arr = np.array([v.encode() if isinstance(v, str) else bytes(v) for v in arr.reshape(-1)], dtype=object).reshape(arr.shape)
        dt = "BYTES"
    elif arr.dtype == np.bool_:
        dt = "BOOL"
    elif arr.dtype == np.int32:
        dt = "INT32"
    elif arr.dtype == np.int64:
        dt = "INT64"
    else:
        dt = "FP32"
    i = grpcclient.InferInput(name, list(arr.shape), dt)
    i.set_data_from_numpy(arr)
    return i


def grpc_generate(server, inputs: dict, model: str = GEN, params: dict | None = None, seq: dict | None = None,
                  timeout: float = 120.0) -> tuple[list[dict], Exception | None]:
    """One request on a gRPC stream; returns the responses (outputs as numpy) and the error, if any."""
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    out: list[dict] = []
    try:
        client.async_stream_infer(model, [_input(k, v) for k, v in inputs.items()], parameters=params or None,
                                  enable_empty_final_response=True, **(seq or {}))
        while True:
            result, error = q.get(timeout=timeout)
            if error is not None:
                return out, error
            resp = result.get_response()
            got = {o.name: result.as_numpy(o.name) for o in resp.outputs}
            if got:
                out.append(got)
            if resp.parameters["triton_final_response"].bool_param:
                return out, None
    finally:
        client.stop_stream()


def ids_of(responses: list[dict]) -> list[int]:
    return [int(x) for r in responses if "output_ids" in r for x in r["output_ids"]]


def text_of(responses: list[dict]) -> str:
    return "".join(v.decode() for r in responses if "text_output" in r for v in r["text_output"])


@pytest.fixture(scope="module")
def omnikv_cli(tmp_path_factory) -> str:
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain to build the CLI")
    out = tmp_path_factory.mktemp("cli") / "omnikv"
    subprocess.run([go, "build", "-o", str(out), "./backend/cmd/omnikv"], cwd=REPO_ROOT, check=True,
                   env={**os.environ, "CGO_ENABLED": "0"})
    return str(out)


PROMPTS = ["The three primary colors are", "def fibonacci(n):\n    "]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_equals_cli(server, omnikv_cli, gguf_model, prompt):
    cli = subprocess.run([omnikv_cli, "generate", "--model", str(gguf_model), "--prompt", prompt, "--raw",
                          "--json", "--max-tokens", "24"], capture_output=True, text=True, check=True)
    want = json.loads(cli.stdout)
    # Completion prompts: the CLI's --raw is the server's apply_chat_template=false.
    got = generate(server, {"text_input": prompt, "max_tokens": 24, "exclude_input_in_output": True, "apply_chat_template": False})
    want_ids = want["output_ids"]
    assert got["output_ids"] == want_ids, (got, want)
    assert got["text_output"] == want["text"]
    assert got["finish_reason"] == want["finish_reason"]
    # gRPC streaming gives the same tokens, and its deltas concatenate to the same text.
    responses, err = grpc_generate(server, {"text_input": [prompt], "max_tokens": np.array([24], np.int32),
                                            "stream": [True], "exclude_input_in_output": [True],
                                            "apply_chat_template": [False]})
    assert err is None, err
    assert ids_of(responses) == want_ids
    assert text_of(responses) == want["text"]
    assert len(responses) > 3, "streaming sent too few responses"


def test_http_generate_stream_concatenates(server):
    body = {"text_input": PROMPTS[0], "max_tokens": 20, "exclude_input_in_output": True}
    whole = generate(server, body)
    events = generate_stream(server, {**body, "stream": True})
    assert len(events) >= 5
    assert "".join(e.get("text_output", "") for e in events) == whole["text_output"]
    assert events[-1]["finish_reason"] == whole["finish_reason"]
    assert events[-1]["completion_tokens"] == len(whole["output_ids"])


# (body of an HTTP generate request, a word the error must contain)
BAD_HTTP = [
    ({"max_tokens": 4}, "text_input"),
    ({"text_input": "hi", "input_ids": [1, 2]}, "input_ids"),
    ({"text_input": ""}, "text_input"),
    ({"text_input": "hi", "max_tokens": 0}, "max_tokens"),
    ({"text_input": "hi", "max_tokens": -5}, "max_tokens"),
    ({"text_input": "hi", "max_tokens": 100000}, "max_tokens"),
    ({"text_input": "hi", "sampling_parameters": json.dumps({"temperature": -1})}, "temperature"),
    ({"text_input": "hi", "sampling_parameters": json.dumps({"top_p": 0})}, "top_p"),
    ({"text_input": "hi", "sampling_parameters": json.dumps({"top_p": 1.01})}, "top_p"),
    ({"text_input": "hi", "sampling_parameters": json.dumps({"top_k": -2})}, "top_k"),
    ({"text_input": "hi", "sampling_parameters": "{\"temperature\": 0.5"}, "sampling_parameters"),
    ({"text_input": "hi", "sampling_parameters": json.dumps({"temprature": 0.5})}, "temprature"),
    ({"input_ids": [1, 49152]}, "vocabulary"),
    ({"input_ids": [-7]}, "vocabulary"),
    ({"text_input": "word " * 9000, "max_tokens": 8}, "context"),
]


@pytest.mark.parametrize("body,word", BAD_HTTP, ids=[w + str(i) for i, (_, w) in enumerate(BAD_HTTP)])
def test_bad_input_http(server, body, word):
    status, text = http_post(server, f"/v2/models/{GEN}/generate", body)
    assert status == 400, (status, text)
    assert word in json.loads(text)["error"], text
    assert server.alive()


# gRPC: wrong dtypes and shapes, invalid UTF-8 (HTTP JSON cannot carry them).
BAD_GRPC = [
    ({"text_input": np.array([1], np.int32)}, "text_input"),
    ({"text_input": ["a", "b"]}, "text_input"),
    ({"text_input": [b"a\xffb"]}, "UTF-8"),
    ({"text_input": ["hi"], "max_tokens": np.array([1.5], np.float32)}, "max_tokens"),
    ({"text_input": ["hi"], "stream": ["yes"]}, "stream"),
    ({"input_ids": np.array([], np.int32)}, "input_ids"),
]


@pytest.mark.parametrize("inputs,word", BAD_GRPC, ids=[w + str(i) for i, (_, w) in enumerate(BAD_GRPC)])
def test_bad_input_grpc(server, inputs, word):
    _, err = grpc_generate(server, inputs)
    assert err is not None and word in str(err), err
    # The server and the model still work.
    good, err = grpc_generate(server, {"text_input": ["Hello"], "max_tokens": np.array([3], np.int32)})
    assert err is None and len(ids_of(good)) == 3


def test_chat_session_turn3_equals_stateless(server):
    turns = [[1, 4093, 28, 9, 3015, 2], [198, 1, 4093, 28, 1303], [314, 2, 198, 1, 520]]
    conv: list[int] = []
    answer: list[int] = []
    seq_id = 90210
    for i, turn in enumerate(turns):
        responses, err = grpc_generate(server, {"input_ids": np.array(turn, np.int32), "max_tokens": np.array([10], np.int32)},
                                       model=CHAT, seq={"sequence_id": seq_id, "sequence_start": i == 0})
        assert err is None, err
        answer = ids_of(responses)
        conv += turn + answer
    stateless = generate(server, {"input_ids": conv[: len(conv) - len(answer)], "max_tokens": 10})
    assert stateless["output_ids"] == answer
    # END frees the session; a later turn on it is an error naming it.
    _, err = grpc_generate(server, {"input_ids": np.array([13], np.int32), "max_tokens": np.array([2], np.int32)},
                           model=CHAT, seq={"sequence_id": seq_id, "sequence_end": True})
    assert err is None, err


def test_chat_expired_and_unknown_session(triton, gguf_model, model_repository_root, tmp_path):
    # The backend's idle timeout (1 s here) is shorter than Triton's, so Triton still routes the sequence's next
    # turn to the backend, which has freed the session: the turn gets a clear error naming the session.
    src = tmp_path / "repo"
    shutil.copytree(model_repository_root / CHAT, src / CHAT, symlinks=True)
    cfg = src / CHAT / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace('string_value: "600"', 'string_value: "1"'))
    srv = triton.start([CHAT], source=src)
    inp = {"input_ids": np.array([1, 2, 3], np.int32), "max_tokens": np.array([2], np.int32)}
    _, err = grpc_generate(srv, inp, model=CHAT, seq={"sequence_id": 777, "sequence_start": True})
    assert err is None, err
    _, err = grpc_generate(srv, inp, model=CHAT, seq={"sequence_id": 777})
    assert err is None, err  # within the timeout: the session is there
    time.sleep(2.5)
    _, err = grpc_generate(srv, inp, model=CHAT, seq={"sequence_id": 777})
    assert err is not None and "expired" in str(err) and "777" in str(err), err
    # A sequence Triton never saw start is refused (by Triton) with an error too.
    _, err = grpc_generate(srv, inp, model=CHAT, seq={"sequence_id": 4242})
    assert err is not None, "a turn of an unknown sequence was answered"
    assert srv.alive()
    srv.stop()


def test_cancel_stops_generation(server):
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    # Counting keeps this small model going for hundreds of tokens (no early end-of-sequence).
    client.async_stream_infer(GEN, [_input("text_input", [", ".join(str(i) for i in range(1, 30)) + ","]),
                                    _input("max_tokens", np.array([400], np.int32)),
                                    _input("stream", [True])], request_id="long")
    got = 0
    while got < 3:
        result, error = q.get(timeout=60)
        assert error is None, error
        got += 1
    client.stop_stream(cancel_requests=True)
    deadline = time.time() + 20
    while time.time() < deadline and "cancelled after" not in server.log():
        time.sleep(0.2)
    log = server.log()
    assert "cancelled after" in log, log[-2000:]
    line = [l for l in log.splitlines() if "cancelled after" in l][-1]
    assert "KV pages in use: 0" in line, line
    generated = int(line.split("cancelled after ")[1].split()[0])
    assert generated < 400, line  # stopped well short of max_tokens
    good = generate(server, {"text_input": "Hi", "max_tokens": 2})
    assert len(good["output_ids"]) == 2


def test_statistics(server):
    generate(server, {"text_input": "Statistics", "max_tokens": 2})
    stats = server.get_json(f"/v2/models/{GEN}/stats")
    s = stats["model_stats"][0]
    assert int(s["inference_count"]) >= 1
    assert int(s["inference_stats"]["success"]["count"]) >= 1


def test_unload_and_reload(triton, gguf_model, model_repository_root):
    srv = triton.start([GEN], source=model_repository_root, copy=False)
    assert generate(srv, {"text_input": "Hi", "max_tokens": 2})["output_ids"]
    status, text = http_post(srv, f"/v2/repository/models/{GEN}/unload", {})
    assert status == 200, text
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{srv.http_url}/v2/models/{GEN}/ready", timeout=5)
        except urllib.error.HTTPError:
            break
        time.sleep(0.2)
    status, _ = http_post(srv, f"/v2/models/{GEN}/generate", {"text_input": "Hi", "max_tokens": 2})
    assert status != 200
    status, text = http_post(srv, f"/v2/repository/models/{GEN}/load", {})
    assert status == 200, text
    assert len(generate(srv, {"text_input": "Hi", "max_tokens": 2})["output_ids"]) == 2
    srv.stop()


def test_go_client(server, tmp_path):
    go = shutil.which("go")
    if go is None or not (REPO_ROOT / "client" / "cmd" / "omnikv-client").is_dir():
        pytest.skip("no Go toolchain or client")
    exe = tmp_path / "omnikv-client"
    subprocess.run([go, "build", "-o", str(exe), "./client/cmd/omnikv-client"], cwd=REPO_ROOT, check=True)
    want = generate(server, {"text_input": PROMPTS[0], "max_tokens": 16, "exclude_input_in_output": True})
    r = subprocess.run([str(exe), "generate", "--url", server.grpc_url, "--model", GEN, "--prompt", PROMPTS[0],
                        "--stream", "--max-tokens", "16"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert want["text_output"] in r.stdout, (r.stdout, want)
    assert "tokens/s" in r.stderr
