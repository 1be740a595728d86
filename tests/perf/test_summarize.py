"""Tests of summarize.py on small hand-made profile exports (no server, no perf_analyzer).

Run: python3 -m pytest tests/perf -q
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import summarize  # noqa: E402

MS = 1_000_000  # ns


def req(t0_ms: float, resp_ms: list[float], completion: int | None = None, finish: str = "length") -> dict:
    outputs = [{"text_output": "x", "finish_reason": ""} for _ in resp_ms]
    if outputs and completion is not None:
        outputs[-1] = {"text_output": "", "finish_reason": finish, "completion_tokens": completion}
    return {"timestamp": int(t0_ms * MS), "response_timestamps": [int(t * MS) for t in resp_ms],
            "response_outputs": outputs}


def exp(value: int, bounds_ms: list[float], requests: list[dict]) -> dict:
    return {"experiment": {"mode": "concurrency", "value": value},
            "window_boundaries": [int(b * MS) for b in bounds_ms], "requests": requests}


@pytest.mark.parametrize("values,p,want", [
    ([5.0], 50, 5.0),
    ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
    ([1.0, 2.0, 3.0, 4.0], 95, 4.0),
    ([4.0, 1.0, 3.0, 2.0], 25, 1.0),
    (list(map(float, range(1, 101))), 95, 95.0),
])
def test_percentile(values, p, want):
    assert summarize.percentile(values, p) == want


def test_percentile_empty():
    with pytest.raises(ValueError):
        summarize.percentile([], 50)


@pytest.mark.parametrize("name,experiment,want", [
    # One request: sent at 100, tokens at 150, 160, 180, final at 181 -> TTFT 50, gaps 10 and 20, latency 81.
    ("one", exp(1, [0, 1000], [req(100, [150, 160, 180, 181], completion=3)]),
     dict(requests=1, tokens=3, ttft=[50.0], itl=[10.0, 20.0], lat=[81.0], rps=1.0, tps=3.0)),
    # A request ending after the last window boundary is left out.
    ("outside", exp(2, [0, 500], [req(10, [20, 30, 31], completion=2), req(400, [450, 600], completion=1)]),
     dict(requests=1, tokens=2, ttft=[10.0], itl=[10.0], lat=[21.0], rps=2.0, tps=4.0)),
    # Without a sane completion_tokens the token count is the response count - 1.
    ("fallback", exp(1, [0, 2000], [req(0, [5, 6, 7, 8, 9]), req(10, [20, 21], completion=-267829247)]),
     dict(requests=2, tokens=5, ttft=[5.0, 10.0], itl=[1.0, 1.0, 1.0], lat=[9.0, 11.0], rps=1.0, tps=2.5)),
    # A request with no response did not complete.
    ("noresp", exp(1, [0, 1000], [req(0, []), req(0, [100, 200], completion=1)]),
     dict(requests=1, tokens=1, ttft=[100.0], itl=[], lat=[200.0], rps=1.0, tps=1.0)),
])
def test_summarize_experiment(name, experiment, want):
    lv = summarize.summarize_experiment(experiment)
    assert lv.requests == want["requests"], name
    assert lv.tokens == want["tokens"], name
    assert lv.ttft_ms == pytest.approx(want["ttft"]), name
    assert lv.itl_ms == pytest.approx(want["itl"]), name
    assert lv.latency_ms == pytest.approx(want["lat"]), name
    assert lv.requests_per_s == pytest.approx(want["rps"]), name
    assert lv.tokens_per_s == pytest.approx(want["tps"]), name


def test_summarize_rejects_other_json():
    with pytest.raises(ValueError, match="experiments"):
        summarize.summarize({"data": []})


def test_main_prints_table_and_fails_on_empty_level(tmp_path):
    good = {"experiments": [exp(1, [0, 1000], [req(100, [150, 160, 181], completion=2)]),
                            exp(2, [0, 1000], [req(100, [300, 400, 401], completion=2)] * 2)]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(good))
    script = Path(summarize.__file__)
    run = subprocess.run([sys.executable, str(script), str(path), "omnikv"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "omnikv" and "TTFT p50" in lines[1]
    assert lines[2].split()[:4] == ["1", "1", "1.00", "2.0"]
    assert lines[3].split()[:5] == ["2", "2", "2.00", "4.0", "200.0"]
    empty = {"experiments": [exp(1, [0, 10], [req(100, [150], completion=1)])]}
    path.write_text(json.dumps(empty))
    run = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True)
    assert run.returncode == 1
