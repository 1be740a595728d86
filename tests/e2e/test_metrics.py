"""The engine's metrics on Triton's metrics port (cgo/metrics.go): every family of backend/engine/metrics.go is
there for each loaded model with its labels, histograms native or emulated, the values move with requests, a
model's series go with its unload and come back with its load, and a server without metrics still serves."""

from __future__ import annotations

import json
import math
import queue
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from conftest import REPO_ROOT

GEN, CHAT = "omnikv", "omnikv_chat"
METRICS_GO = REPO_ROOT / "backend" / "engine" / "metrics.go"
NATIVE, EMULATED = "Triton histogram metrics", "emulated with counters"  # cgo/metrics.go's log line


@dataclass
class Family:
    name: str
    kind: str  # counter, gauge, histogram
    fixed: list[dict] = field(default_factory=list)  # one label set per metric of the family


def engine_metrics() -> tuple[dict[str, Family], list[float]]:
    """The families and bucket bounds that backend/engine/metrics.go defines, read from its source."""
    src = METRICS_GO.read_text()
    fams: dict[str, Family] = {}
    for var, kind in (("counterInfo", "counter"), ("gaugeInfo", "gauge"), ("histInfo", "histogram")):
        block = re.search(r"var %s = \[\w+\]MetricInfo\{\n(.*?)\n\}" % var, src, re.S)
        assert block, f"{var} not found in {METRICS_GO}"
        for line in block.group(1).splitlines():
            m = re.search(r'Name: "(\w+)"', line)
            if not m:
                continue
            lab = re.search(r"Labels: map\[string\]string\{([^}]*)\}", line)
            fixed = dict(re.findall(r'"(\w+)": "([^"]*)"', lab.group(1))) if lab else {}
            fams.setdefault(m.group(1), Family(m.group(1), kind)).fixed.append(fixed)
    buckets = re.search(r"var HistogramBuckets = \[\]float64\{([^}]*)\}", src)
    assert buckets, f"HistogramBuckets not found in {METRICS_GO}"
    bounds = [float(x) for x in buckets.group(1).split(",")]
    assert len(fams) >= 10 and bounds, (fams, bounds)
    return fams, bounds


FAMILIES, BOUNDS = engine_metrics()


@dataclass
class Scrape:
    types: dict[str, str]  # family -> TYPE
    samples: list[tuple[str, dict, float]]  # (series name, labels, value)

    def find(self, name: str, **labels: str) -> list[float]:
        return [v for n, lab, v in self.samples if n == name and all(lab.get(k) == x for k, x in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        got = self.find(name, **labels)
        assert len(got) == 1, f"{name}{labels}: {len(got)} series"
        return got[0]


def scrape(server, wait: float = 10.0) -> Scrape:
    """The metrics port's exposition, parsed. Triton opens that port after its HTTP port says ready: a refused
    connection is retried for `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as r:
                text = r.read().decode()
            break
        except urllib.error.URLError as e:
            if not isinstance(e.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        elif line and not line.startswith("#"):
            m = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
            assert m, f"bad exposition line {line!r}"
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return Scrape(types, samples)


def le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else format(bound, "g")


def histogram_mode(server) -> str:
    modes = re.findall(r"omnikv metric histograms: (.*?)\"?$", server.log(), re.M)
    assert modes, "the backend did not log its histogram mode"
    return modes[-1]


def check_histogram(s: Scrape, name: str, model: str) -> None:
    """Series _bucket (cumulative, every bound and +Inf), _sum, _count of one model's histogram."""
    lab = {"model": model, "version": "1"}
    buckets = [s.value(name + "_bucket", le=le(b), **lab) for b in BOUNDS + [math.inf]]
    assert buckets == sorted(buckets), f"{name}: buckets not cumulative: {buckets}"
    assert buckets[-1] == s.value(name + "_count", **lab), name
    assert s.value(name + "_sum", **lab) >= 0


def check_present(s: Scrape, model: str, mode: str) -> None:
    """Every family of engine/metrics.go, with its fixed labels, for model version 1."""
    for f in FAMILIES.values():
        if f.kind == "histogram":
            if mode == NATIVE:
                assert s.types.get(f.name) == "histogram", (f.name, s.types.get(f.name))
            else:
                for part in ("_bucket", "_sum", "_count"):
                    assert s.types.get(f.name + part) == "counter", (f.name + part, s.types.get(f.name + part))
            check_histogram(s, f.name, model)
            continue
        assert s.types.get(f.name) == f.kind, (f.name, s.types.get(f.name), f.kind)
        for fixed in f.fixed:
            got = s.find(f.name, model=model, version="1", **fixed)
            assert len(got) == 1, f"{f.name}{{model={model},{fixed}}}: {len(got)} series"


@pytest.fixture(scope="module")
def server(triton, gguf_model):
    return triton.start([GEN, CHAT])


def test_every_family_present(server):
    assert histogram_mode(server) == NATIVE  # the bundled Triton 2.51 has histogram metrics
    s = scrape(server)
    for model in (GEN, CHAT):
        check_present(s, model, NATIVE)
    # Nothing but what engine/metrics.go defines, in our namespace.
    ours = {n for n, _, _ in s.samples if n.startswith("omnikv_")}
    want = {f.name + p for f in FAMILIES.values() for p in (("_bucket", "_sum", "_count") if f.kind == "histogram" else ("",))}
    assert ours == want, ours ^ want


def _input(name: str, value) -> grpcclient.InferInput:
    arr = np.asarray(value)
    if arr.dtype.kind in "OUS":
        arr = np.array([str(v).encode() for v in arr.reshape(-1)], dtype=object)
        dt = "BYTES"
    else:
        dt = {np.dtype(np.bool_): "BOOL", np.dtype(np.int32): "INT32"}[arr.dtype]
    i = grpcclient.InferInput(name, list(arr.shape), dt)
    i.set_data_from_numpy(arr)
    return i


def http_generate(server, body: dict, model: str = GEN) -> dict:
    req = urllib.request.Request(f"{server.http_url}/v2/models/{model}/generate", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def stream_tokens(server, prompt: str, max_tokens: int, cancel_after: int | None = None, during=None) -> int:
    """One streaming gRPC request; returns the tokens received. With cancel_after, calls during() after that many
    responses, then cancels the request."""
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    got = 0
    try:
        client.async_stream_infer(GEN, [_input("text_input", [prompt]), _input("max_tokens", np.array([max_tokens], np.int32)),
                                        _input("stream", [True])], enable_empty_final_response=True)
        while True:
            result, error = q.get(timeout=120)
            assert error is None, error
            resp = result.get_response()
            if any(o.name == "output_ids" for o in resp.outputs):
                got += len(result.as_numpy("output_ids"))
            if cancel_after is not None and got >= cancel_after:
                if during:
                    during()
                client.stop_stream(cancel_requests=True)
                return got
            if resp.parameters["triton_final_response"].bool_param:
                return got
    finally:
        client.stop_stream()


def wait_for(server, cond, timeout: float = 20.0) -> Scrape:
    """Scrapes until cond(scrape) holds (the engine reports a request's end after its last response)."""
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(server)
        if cond(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.2)


def test_metrics_move(server):
    lab = {"model": GEN, "version": "1"}
    before = scrape(server)

    def delta(s: Scrape, name: str) -> float:
        return s.value(name, **lab) - before.value(name, **lab)

    one = http_generate(server, {"text_input": "The capital of France is", "max_tokens": 8})
    streamed = stream_tokens(server, "Count with me: one, two,", 12)
    assert streamed > 1
    during: list[Scrape] = []
    # Counting keeps this small model going (no early end-of-sequence); cancelled after 3 tokens.
    cancelled = stream_tokens(server, ", ".join(str(i) for i in range(1, 30)) + ",", 400, cancel_after=3,
                              during=lambda: during.append(scrape(server)))
    s = wait_for(server, lambda s: delta(s, "omnikv_requests_finished_total") >= 3
                 and s.value("omnikv_running_sequences", **lab) == 0)

    generated = len(one["output_ids"]) + streamed + cancelled
    assert delta(s, "omnikv_prompt_tokens_total") >= one["prompt_tokens"]
    assert delta(s, "omnikv_generation_tokens_total") >= generated
    assert delta(s, "omnikv_requests_finished_total") >= 3
    assert delta(s, "omnikv_cancellations_total") >= 1
    assert delta(s, "omnikv_time_to_first_token_seconds_count") >= 3
    assert delta(s, "omnikv_inter_token_latency_seconds_count") >= len(one["output_ids"]) - 1 + streamed - 1
    assert delta(s, "omnikv_step_seconds_count") >= len(one["output_ids"])
    assert delta(s, "omnikv_step_seconds_sum") > 0
    for name in ("omnikv_time_to_first_token_seconds", "omnikv_inter_token_latency_seconds", "omnikv_step_seconds"):
        check_histogram(s, name, GEN)
    # While the cancelled request ran: one running sequence holding resident KV.
    assert during[0].value("omnikv_running_sequences", **lab) >= 1
    assert during[0].value("omnikv_kv_bytes", tier="resident", state="used", **lab) > 0
    # After it: no sequence, no KV in use; the other model saw none of it.
    assert s.value("omnikv_running_sequences", **lab) == 0
    assert s.value("omnikv_kv_bytes", tier="resident", state="used", **lab) == 0
    assert s.value("omnikv_generation_tokens_total", model=CHAT, version="1") == before.value(
        "omnikv_generation_tokens_total", model=CHAT, version="1")


def test_emulated_histograms(triton, gguf_model):
    srv = triton.start([GEN], extra_args=("--backend-config=omnikv,emulate-histograms=true",))
    try:
        assert histogram_mode(srv) == EMULATED
        check_present(scrape(srv), GEN, EMULATED)
        http_generate(srv, {"text_input": "Hello", "max_tokens": 4})
        s = scrape(srv)
        for f in FAMILIES.values():
            if f.kind == "histogram":
                check_histogram(s, f.name, GEN)
    finally:
        srv.stop()


def test_series_follow_model_load(triton, gguf_model, model_repository_root):
    srv = triton.start([GEN], source=model_repository_root, copy=False)
    try:
        mode = histogram_mode(srv)
        check_present(scrape(srv), GEN, mode)
        http_generate(srv, {"text_input": "Hi", "max_tokens": 2})
        req = urllib.request.Request(f"{srv.http_url}/v2/repository/models/{GEN}/unload", data=b"{}", method="POST")
        urllib.request.urlopen(req, timeout=60).close()
        s = wait_for(srv, lambda s: not s.find("omnikv_prompt_tokens_total", model=GEN))
        assert not [n for n, lab, _ in s.samples if n.startswith("omnikv_") and lab.get("model") == GEN]
        req = urllib.request.Request(f"{srv.http_url}/v2/repository/models/{GEN}/load", data=b"{}", method="POST")
        urllib.request.urlopen(req, timeout=120).close()
        s = scrape(srv)
        check_present(s, GEN, mode)
        assert s.value("omnikv_prompt_tokens_total", model=GEN, version="1") == 0  # a reloaded model starts afresh
        assert len(http_generate(srv, {"text_input": "Hi", "max_tokens": 2})["output_ids"]) == 2
        assert "omnikv metric update failed" not in srv.log()
    finally:
        srv.stop()


def test_metrics_off_still_serves(triton, gguf_model):
    srv = triton.start([GEN], extra_args=("--allow-metrics=false",))
    try:
        assert len(http_generate(srv, {"text_input": "Hi", "max_tokens": 2})["output_ids"]) == 2
        with pytest.raises((urllib.error.URLError, OSError)):
            scrape(srv, wait=2.0)
    finally:
        srv.stop()
