"""The omnikv_spike model (echo mode) through the real tritonserver: gRPC streaming, HTTP
generate_stream, panics turned into INTERNAL errors, statistics."""

from __future__ import annotations

import json
from pathlib import Path
import queue
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

MODEL = "omnikv_spike"
MODELS = Path(__file__).parent / "models"  # the test-only repository that holds it
PANIC_IN_CHECK = "omnikv-spike-panic-check"  # backend/serve.PanicInCheck
PANIC_IN_RUN = "omnikv-spike-panic-run"  # backend/serve.PanicInRun


@pytest.fixture(scope="module")
def server(triton):
    return triton.start([MODEL], source=MODELS)


def _text_input(text: str) -> grpcclient.InferInput:
    i = grpcclient.InferInput("text_input", [1], "BYTES")
    i.set_data_from_numpy(np.array([text.encode()], dtype=object))
    return i


def grpc_stream(server, requests: list[tuple[str, str, dict]], timeout: float = 20.0) -> dict[str, list]:
    """Sends (id, text, parameters) requests on one gRPC stream; returns per id the list of
    events: str pieces, then "FINAL", or an Exception (an error ends the request)."""
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    try:
        for rid, text, params in requests:
            client.async_stream_infer(MODEL, [_text_input(text)], request_id=rid,
                                      parameters=params or None, enable_empty_final_response=True)
        events: dict[str, list] = {rid: [] for rid, _, _ in requests}
        open_ids = set(events)
        while open_ids:
            result, error = q.get(timeout=timeout)
            if error is not None:
                # Stream errors carry no request id: callers send a failing request alone.
                assert len(open_ids) == 1, f"error {error} with several requests open: {open_ids}"
                rid = open_ids.pop()
                events[rid].append(error)
                continue
            resp = result.get_response()
            out = result.as_numpy("text_output")
            if out is not None:
                events[resp.id].extend(v.decode() for v in out)
            if resp.parameters["triton_final_response"].bool_param:
                events[resp.id].append("FINAL")
                open_ids.discard(resp.id)
        return events
    finally:
        client.stop_stream()
        client.close()


def http_generate_stream(server, body: dict) -> list[dict]:
    req = urllib.request.Request(f"{server.http_url}/v2/models/{MODEL}/generate_stream",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            lines = list(r)
    except urllib.error.HTTPError as e:  # an error before the first event: one error event
        lines = list(e)
        e.close()
    events = []
    for line in lines:
        line = line.decode().strip()
        if line.startswith("data:"):
            events.append(json.loads(line[len("data:"):]))
        elif line.startswith("{"):
            events.append(json.loads(line))
    return events


def test_grpc_stream_echoes_word_by_word(server):
    ev = grpc_stream(server, [("a", "hello big  world", {}), ("b", "solo", {})])
    assert ev["a"] == ["hello", " big", " world", "FINAL"]
    assert ev["b"] == ["solo", "FINAL"]


def test_grpc_stream_concurrent_requests_interleave(server):
    # A slow request must not hold up a later one: each runs on its own goroutine.
    ev = grpc_stream(server, [("slow", "w1 w2 w3 w4", {"echo_delay_ms": 150}), ("fast", "x y", {})])
    assert ev["slow"] == ["w1", " w2", " w3", " w4", "FINAL"]
    assert ev["fast"] == ["x", " y", "FINAL"]


def test_grpc_int32_output_and_response_parameters(server):
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    client.async_stream_infer(MODEL, [_text_input("p q r")], request_id="params")
    got = []
    for _ in range(3):
        result, error = q.get(timeout=10)
        assert error is None, error
        idx = result.as_numpy("word_index")
        assert idx.dtype == np.int32 and idx.shape == (1,), idx
        params = result.get_response().parameters
        got.append((int(idx[0]), params["word_index"].int64_param, params["sequence_start"].bool_param,
                    "sequence_id" in params))
    client.stop_stream()
    client.close()
    assert got == [(0, 0, False, False), (1, 1, False, False), (2, 2, False, False)]


def test_http_generate_stream(server):
    events = http_generate_stream(server, {"text_input": "stream me back"})
    assert [e.get("text_output") for e in events] == ["stream", " me", " back"]
    assert [e.get("word_index") for e in events] == [0, 1, 2]
    assert all(e["model_name"] == MODEL for e in events)


def test_invalid_parameter_is_rejected(server):
    events = http_generate_stream(server, {"text_input": "a b", "parameters": {"echo_delay_ms": "soon"}})
    assert len(events) == 1 and "want an INT" in events[0]["error"], events


@pytest.mark.parametrize("trigger,where", [
    (PANIC_IN_CHECK, "TRITONBACKEND_ModelInstanceExecute: internal error: panic"),
    (PANIC_IN_RUN, "internal error: panic: echo: deliberate panic in Run"),
])
def test_panic_becomes_internal_error_and_server_lives(server, trigger, where):
    ev = grpc_stream(server, [("p", trigger, {})])
    assert len(ev["p"]) == 1 and isinstance(ev["p"][0], Exception), ev
    msg = str(ev["p"][0])
    assert where in msg, msg
    assert "goroutine" not in msg, "the stack belongs in the server log, not in the client's error"
    assert server.alive() and server.ready()
    # The server log holds the panic with its stack (ERROR level).
    log = server.log()
    assert "deliberate panic" in log and "goroutine" in log
    # And the backend keeps serving.
    assert grpc_stream(server, [("after", "still alive", {})])["after"] == ["still", " alive", "FINAL"]


def test_statistics_reported(server):
    before = server.get_json(f"/v2/models/{MODEL}/stats")["model_stats"][0]["inference_stats"]["success"]["count"]
    grpc_stream(server, [("s", "count me", {})])
    stats = server.get_json(f"/v2/models/{MODEL}/stats")["model_stats"][0]
    inf = stats["inference_stats"]
    assert inf["success"]["count"] == before + 1
    # Timestamps must come from Triton's steady clock: a wall-clock stamp makes queue time absurd.
    assert 0 <= inf["queue"]["ns"] < 60e9 * max(1, inf["queue"]["count"]), inf["queue"]


@pytest.fixture(scope="module")
def verbose_server(triton):
    return triton.start([MODEL], source=MODELS, extra_args=("--log-verbose=1", "--backend-config=omnikv,e2e_marker=42"))


def test_model_logs_reach_triton_verbose_log(verbose_server):
    # zerolog events of the model go through TRITONSERVER_LogMessage; Debug only with --log-verbose.
    srv = verbose_server
    assert grpc_stream(srv, [("logged-req", "x", {})])["logged-req"] == ["x", "FINAL"]
    lines = [l for l in srv.log().splitlines() if "echo.go" in l and "request=logged-req" in l]
    assert lines, srv.log()[-3000:]
    assert "instance=omnikv_spike_0_0" in lines[0] and "model=omnikv_spike" in lines[0], lines[0]
    # --backend-config=omnikv,key=value reaches the backend (TRITONBACKEND_BackendConfig).
    init = [l for l in srv.log().splitlines() if "initialized (server backend API" in l]
    assert init and "e2e_marker:42" in init[0], init


def test_client_cancel_stops_the_request(verbose_server):
    # Cancelling the gRPC stream reaches the model through TRITONBACKEND_ResponseFactoryIsCancelled.
    srv = verbose_server
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    words = " ".join(f"w{i}" for i in range(40))
    client.async_stream_infer(MODEL, [_text_input(words)], request_id="cancel-me", parameters={"echo_delay_ms": 50})
    result, error = q.get(timeout=10)
    assert error is None and result.as_numpy("text_output")[0] == b"w0"
    client.stop_stream(cancel_requests=True)
    client.close()
    deadline = time.monotonic() + 10
    while "client cancelled the request" not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    ended = [l for l in srv.log().splitlines() if "cancel-me" in l and " ended: " in l]
    assert ended and "client cancelled the request" in ended[0], srv.log()[-3000:]
    n = int(ended[0].split("stopped after ")[1].split()[0])
    assert 1 <= n < 40, ended[0]
    assert grpc_stream(srv, [("after-cancel", "ok", {})])["after-cancel"] == ["ok", "FINAL"]


def test_bad_config_fails_model_load(triton, tmp_path):
    src = tmp_path / "src"
    bad = src / "bad_batch"
    (bad / "1").mkdir(parents=True)
    cfg = (triton_model_source() / "config.pbtxt").read_text()
    cfg = cfg.replace('name: "omnikv_spike"', 'name: "bad_batch"').replace("max_batch_size: 0", "max_batch_size: 8")
    (bad / "config.pbtxt").write_text(cfg)
    srv = triton.start(["bad_batch"], source=src, extra_args=("--exit-on-error=false", "--strict-readiness=false"))
    index = {m["name"]: m for m in json.loads(_post(srv, "/v2/repository/index"))}
    assert index["bad_batch"]["state"] == "UNAVAILABLE", index
    assert "max_batch_size must be 0" in index["bad_batch"]["reason"], index
    srv.stop()


def triton_model_source():
    return MODELS / MODEL


def _post(server, path: str, body: bytes = b"{}") -> bytes:
    req = urllib.request.Request(server.http_url + path, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def test_unload_during_stream_and_reload(triton):
    # Explicit model control: unloading while a request streams must end that request (all words
    # or an error), not crash; the Go library is never really unloaded (-z nodelete), so loading
    # the model again re-runs TRITONBACKEND_Initialize in the same runtime and must work.
    srv = triton.start([MODEL], source=MODELS, extra_args=("--model-control-mode=explicit", f"--load-model={MODEL}"))
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    client.async_stream_infer(MODEL, [_text_input(" ".join(f"u{i}" for i in range(20)))], request_id="unload",
                              parameters={"echo_delay_ms": 50}, enable_empty_final_response=True)
    result, error = q.get(timeout=10)
    assert error is None
    _post(srv, f"/v2/repository/models/{MODEL}/unload")
    got, ended = 1, False
    while not ended:
        result, error = q.get(timeout=20)
        if error is not None:
            ended = True
            break
        got += result.as_numpy("text_output") is not None
        ended = result.get_response().parameters["triton_final_response"].bool_param
    client.stop_stream()
    client.close()
    # Observed with 2.51.0: the unload waits for the streaming request, which completes.
    assert (error is None and got == 20) or (error is not None and got < 20), (got, error)
    assert srv.alive()
    deadline = time.monotonic() + 20
    while "successfully unloaded 'omnikv_spike'" not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "successfully unloaded 'omnikv_spike'" in srv.log()
    _post(srv, f"/v2/repository/models/{MODEL}/load")
    assert grpc_stream(srv, [("reloaded", "back again", {})])["reloaded"] == ["back", " again", "FINAL"]
    # Observed with 2.51.0: the backend library stays loaded across a model unload and reload.
    assert srv.log().count("initialized (server backend API") == 1, srv.log()[-3000:]
    srv.stop()


def test_sequence_batcher_passes_correlation_id_and_flags(triton):
    # The chat model will sit behind the sequence batcher: check ids and START/END reach the backend.
    seq_model = "omnikv_spike_seq"
    srv = triton.start([seq_model], source=MODELS)
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    turns = [("t1", 42, True, False), ("t2", 42, False, False), ("t3", 42, False, True), ("s1", "chat-7", True, True)]
    seen = []
    for rid, seq, start, end in turns:
        client.async_stream_infer(seq_model, [_text_input(f"turn {rid}")], request_id=rid, sequence_id=seq,
                                  sequence_start=start, sequence_end=end, enable_empty_final_response=True)
        while True:
            result, error = q.get(timeout=10)
            assert error is None, error
            resp = result.get_response()
            if resp.parameters["triton_final_response"].bool_param:
                break
            p = resp.parameters
            sid = p["sequence_id"]
            sid = sid.int64_param if sid.WhichOneof("parameter_choice") == "int64_param" else sid.string_param
            seen.append((resp.id, sid, p["sequence_start"].bool_param, p["sequence_end"].bool_param))
    client.stop_stream()
    client.close()
    want = []
    for rid, seq, start, end in turns:
        want += [(rid, seq, start, end)] * 2  # two words per turn
    assert seen == want
    # Turns of one sequence never overlap: the backend holds a request until its final response,
    # so the batcher issues turn 2 only after turn 1 is done, even when both are sent at once.
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    client.async_stream_infer(seq_model, [_text_input("a1 a2 a3 a4")], request_id="turn1", sequence_id=7,
                              sequence_start=True, parameters={"echo_delay_ms": 100},
                              enable_empty_final_response=True)
    client.async_stream_infer(seq_model, [_text_input("b1 b2")], request_id="turn2", sequence_id=7,
                              sequence_end=True, enable_empty_final_response=True)
    order = []
    while order.count("FINAL") < 2:
        result, error = q.get(timeout=10)
        assert error is None, error
        resp = result.get_response()
        out = result.as_numpy("text_output")
        order.append("FINAL" if resp.parameters["triton_final_response"].bool_param else out[0].decode().strip())
    client.stop_stream()
    client.close()
    assert order == ["a1", "a2", "a3", "a4", "FINAL", "b1", "b2", "FINAL"], order
    # A sequence must begin with START: Triton itself rejects this one.
    with pytest.raises(Exception, match="(?i)start"):
        grpc_stream_model(srv, seq_model, "orphan", sequence_id=99)
    srv.stop()


def grpc_stream_model(server, model: str, text: str, **kw):
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    try:
        client.async_stream_infer(model, [_text_input(text)], **kw)
        result, error = q.get(timeout=10)
        if error is not None:
            raise error
        return result
    finally:
        client.stop_stream()
        client.close()


def test_serves_the_checked_in_repository_in_place(triton):
    # copy=False: the (test) repository itself, explicit control, only the named model loaded.
    srv = triton.start([MODEL], source=MODELS, copy=False)
    index = {m["name"]: m for m in json.loads(_post(srv, "/v2/repository/index"))}
    assert index[MODEL].get("state") == "READY", index
    assert [n for n, m in index.items() if m.get("state") == "READY"] == [MODEL], index
    assert grpc_stream(srv, [("inplace", "in place", {})])["inplace"] == ["in", " place", "FINAL"]
    srv.stop()
