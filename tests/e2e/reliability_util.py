"""Helpers of test_reliability.py: one request on its own gRPC stream (with deadlines and cancellation),
model-repository copies with changed parameters, the faultinject backend build, /proc RSS, an optional
Prometheus scrape, and the figures file (.cache/reliability.json) that docs/serving.md's Reliability table
quotes.

Every wait here is bounded: a request has a deadline (then it is cancelled and reported as timed out), a
poll has a deadline, and nothing reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from conftest import REPO_ROOT

FIGURES = REPO_ROOT / ".cache" / "reliability.json"

# SmolLM2-135M-Instruct: 30 layers, 3 KV heads of 64, fp16 KV (the models' default kv_dtype).
KV_LAYERS, KV_DIM, KV_ELEM = 30, 3 * 64, 2
KV_BYTES_PER_TOKEN = KV_LAYERS * 2 * KV_DIM * KV_ELEM  # K and V of every layer: 23,040 bytes
PAGE_TOKENS = 64  # the engine's default page size
MIB = 1 << 20

# Distinct raw prompts for the generate model: fourteen short ones, then two long ones (about 160 and 250
# tokens) whose prefill shares steps with other sequences' decoding.
PROMPTS = [
    "The three primary colors are",
    "def fibonacci(n):\n    ",
    "Once upon a time, in a small village by the sea,",
    "The capital of France is",
    "List five fruits:\n1.",
    "Q: What is 12 times 12?\nA:",
    "import numpy as np\n\n# the mean of a list\n",
    "The quick brown fox",
    "Water boils at",
    "In 1969, the first humans",
    "<|im_start|>user\nWhat is the tallest mountain?<|im_end|>\n<|im_start|>assistant\n",
    "Dear hiring manager,\n",
    "SELECT name FROM users WHERE",
    "1, 2, 3, 4, 5,",
    " ".join(f"Fact {i}: {i} squared is {i * i}." for i in range(1, 26)) + " Fact 26:",
    "Summarize: " + " ".join(["The river flows past the mill, the mill grinds the grain, and the baker bakes "
                              "the bread that the village eats."] * 8) + "\nSummary:",
]


@dataclass
class Result:
    """What one request got back."""

    ids: list[int] = field(default_factory=list)
    text: str = ""
    finish: str | None = None
    error: str | None = None  # the error message (Triton's streams carry no code, only the message)
    sent: float = 0.0  # perf_counter at send
    first: float | None = None  # first response (token or error)
    end: float | None = None  # final response, error, cancel or timeout
    responses: int = 0
    cancelled: bool = False  # we cancelled it
    timed_out: bool = False  # no final response before the deadline (then cancelled)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled and not self.timed_out and self.finish is not None

    @property
    def latency(self) -> float:
        return (self.end or time.perf_counter()) - self.sent

    def describe(self) -> str:
        state = ("timed out" if self.timed_out else "cancelled" if self.cancelled else
                 f"error {self.error!r}" if self.error else f"finish {self.finish}")
        return f"{len(self.ids)} ids, {state}, {self.latency:.2f} s"


def _tensor(name: str, value: np.ndarray, dtype: str) -> grpcclient.InferInput:
    t = grpcclient.InferInput(name, list(value.shape), dtype)
    t.set_data_from_numpy(value)
    return t


def make_inputs(text: str, max_tokens: int | None = None, stream: bool = True,
                sampling: dict | None = None) -> list[grpcclient.InferInput]:
    """text_input, stream, exclude_input_in_output (true), and max_tokens / sampling_parameters when given."""
    ins = [_tensor("text_input", np.array([text.encode()], dtype=object), "BYTES"),
           _tensor("stream", np.array([stream]), "BOOL"),
           _tensor("exclude_input_in_output", np.array([True]), "BOOL")]
    if max_tokens is not None:
        ins.append(_tensor("max_tokens", np.array([max_tokens], np.int32), "INT32"))
    if sampling:
        ins.append(_tensor("sampling_parameters", np.array([json.dumps(sampling).encode()], dtype=object), "BYTES"))
    return ins


def infer(url: str, model: str, text: str, max_tokens: int | None = None, *, stream: bool = True,
          sampling: dict | None = None, seq: dict | None = None, timeout: float = 120.0,
          cancel_after: int | None = None, cancel_at: float | None = None, on_response=None) -> Result:
    """Sends one request on a gRPC stream of its own and collects the answer until the final response, an
    error, a cancel or the deadline (timeout s after sending: then the request is cancelled and timed_out set).
    cancel_after=k cancels once k responses came (0: right after sending); cancel_at=t cancels at
    perf_counter t if the request is still running. on_response(result) is called after each response."""
    q: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(url)
    client.start_stream(callback=lambda result, error: q.put((time.perf_counter(), result, error)))
    r = Result()
    cancel_stream = True  # unless the final response came: then the stream ends by itself
    try:
        r.sent = time.perf_counter()
        client.async_stream_infer(model, make_inputs(text, max_tokens, stream, sampling),
                                  enable_empty_final_response=True, **(seq or {}))
        deadline = r.sent + timeout
        while True:
            now = time.perf_counter()
            if (cancel_after is not None and r.responses >= cancel_after) or (cancel_at is not None and now >= cancel_at):
                r.cancelled, r.end = True, now
                return r
            wake = deadline if cancel_at is None else min(deadline, cancel_at)
            if now >= deadline:
                r.timed_out, r.end = True, now
                return r
            try:
                t, result, error = q.get(timeout=max(wake - now, 0.001))
            except queue.Empty:
                continue
            if r.first is None:
                r.first = t
            if error is not None:
                r.error, r.end = str(error), t
                cancel_stream = False
                return r
            resp = result.get_response()
            r.responses += 1
            ids = result.as_numpy("output_ids")
            if ids is not None:
                r.ids += [int(x) for x in ids.reshape(-1)]
            txt = result.as_numpy("text_output")
            if txt is not None:
                r.text += "".join(x.decode(errors="replace") for x in txt.reshape(-1))
            fin = result.as_numpy("finish_reason")
            if fin is not None and fin.size:
                r.finish = fin.reshape(-1)[0].decode()
            for name in ("prompt_tokens", "completion_tokens"):
                v = result.as_numpy(name)
                if v is not None and v.size:
                    setattr(r, name, int(v.reshape(-1)[0]))
            if on_response is not None:
                on_response(r)
            if resp.parameters["triton_final_response"].bool_param:
                r.end = t
                cancel_stream = False
                if r.finish is None:
                    r.finish = ""
                return r
    finally:
        try:
            client.stop_stream(cancel_requests=cancel_stream)
        finally:
            client.close()


def close_session(url: str, model: str, seq_id: int, timeout: float = 30.0) -> Result:
    """Ends a chat sequence: an empty text_input with sequence_end (also closes Triton's side of a sequence the
    backend has already forgotten; the backend then answers "unknown or expired")."""
    return infer(url, model, "", None, stream=False, seq={"sequence_id": seq_id, "sequence_end": True}, timeout=timeout)


def http_post(base: str, path: str, body: dict | None = None, timeout: float = 60.0) -> tuple[int, str]:
    req = urllib.request.Request(base + path, data=json.dumps(body or {}).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def model_ready(server, model: str) -> bool:
    try:
        with urllib.request.urlopen(f"{server.http_url}/v2/models/{model}/ready", timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until(cond, timeout: float, interval: float = 0.1) -> bool:
    """Polls cond() until it is true or timeout s passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def set_params(config: Path, params: dict[str, str]) -> None:
    """Sets config.pbtxt `parameters` string values: replaces a key's value, or adds the key."""
    text = config.read_text()
    for key, value in params.items():
        pat = re.compile(r'(\{\s*key:\s*"%s",\s*value:\s*\{\s*string_value:\s*")[^"]*("\s*\}\s*\})' % re.escape(key))
        if pat.search(text):
            text = pat.sub(lambda m: m.group(1) + value + m.group(2), text)
        else:
            i = text.index("\n]", text.index("parameters ["))  # the end of the parameters list
            text = text[:i].rstrip() + f',\n  {{ key: "{key}", value: {{ string_value: "{value}" }} }}' + text[i:]
    config.write_text(text)


def repo_copy(src_root: Path, dst_root: Path, models: dict[str, dict[str, str]]) -> Path:
    """Copies the named models of src_root into dst_root (model files stay links) with changed parameters."""
    for name, params in models.items():
        shutil.copytree(src_root / name, dst_root / name, symlinks=True)
        if params:
            set_params(dst_root / name / "config.pbtxt", params)
    return dst_root


def build_backend(out: Path, tags: str = "") -> Path:
    """go build -buildmode=c-shared of ./cgo (as conftest's _build_backend) with build tags; returns the
    backend directory (out, holding omnikv/libtriton_omnikv.so)."""
    go = shutil.which("go")
    if go is None:
        raise FileNotFoundError("go")
    lib = out / "omnikv" / "libtriton_omnikv.so"
    lib.parent.mkdir(parents=True, exist_ok=True)
    cmd = [go, "build", *(["-tags", tags] if tags else []), "-buildmode=c-shared", "-o", str(lib),
           "-ldflags", f"-extldflags -Wl,--version-script={REPO_ROOT / 'cgo' / 'exports.map'}", "./cgo"]
    r = subprocess.run(cmd, cwd=REPO_ROOT, env={**os.environ, "CGO_ENABLED": "1"}, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return out


def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, RssFile, ...) in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        f = v.split()
        if len(f) == 2 and f[1] == "kB":
            out[k] = int(f[0]) << 10
    return out


def scrape(server) -> str | None:
    """The metrics port's Prometheus text, or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()
    except (urllib.error.URLError, OSError):
        return None


def metric(server, name: str, **labels: str) -> float | None:
    """The sum of the series of family `name` whose labels include `labels`; None when the server does not
    export the family (the engine metrics are optional here)."""
    text = scrape(server)
    if text is None:
        return None
    total, seen = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total, seen = total + float(m.group(3)), True
    return total if seen else None


def _commit() -> str:
    """HEAD when the tests started (the session's backend is built from that tree), "+dirty" when backend/ or
    cgo/ had uncommitted changes then."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "--untracked-files=no", "--", "backend", "cgo") else "")


COMMIT = _commit()


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}


def record(name: str, summary: str, figures: dict) -> None:
    """Prints the one-line summary and stores the figures under `name` in .cache/reliability.json (the latest
    run's figures per scenario, and the summary lines of past runs under "history")."""
    print(f"\n[reliability] {name}: {summary}")
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(FIGURES.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data.setdefault("scenarios", {})[name] = {"summary": summary, **figures, "machine": machine(), "commit": COMMIT,
                                              "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    history = data.setdefault("history", [])  # every run's summary line, the last 200
    history.append({"scenario": name, "summary": summary, "commit": COMMIT, "when": data["scenarios"][name]["when"]})
    del history[:-200]
    tmp = FIGURES.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(FIGURES)


def quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))] if s else float("nan")
