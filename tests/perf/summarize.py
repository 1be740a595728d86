"""Summarize a perf_analyzer --profile-export-file of a streaming (decoupled) model.

perf_analyzer 2.51 prints one latency per request for decoupled models (from send to the last response,
despite its "using the first response" banner). A token-streaming server is judged by more: this reads the
per-response timestamps of the profile export and prints, for each concurrency level,
  requests/s, generated tokens/s (completion_tokens of each final response),
  time to first token (first response - send) p50/p95,
  inter-token latency (gap between consecutive responses) p50/p95,
  request latency (last response - send) p50/p95.
Only requests that ended inside the measurement windows count (perf_analyzer's window_boundaries).

Usage: python3 tests/perf/summarize.py PROFILE.json [TITLE]
Standard library only.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

NS_PER_MS = 1e6


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in [0, 100]) of a non-empty list."""
    if not values:
        raise ValueError("percentile of no values")
    s = sorted(values)
    rank = max(1, -(-len(s) * p // 100))  # ceil(n * p / 100), at least 1
    return s[int(rank) - 1]


@dataclass
class Level:
    """The figures of one experiment (one concurrency level)."""

    mode: str
    value: int
    requests: int
    seconds: float
    tokens: int
    ttft_ms: list[float]
    itl_ms: list[float]
    latency_ms: list[float]

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def completion_tokens(request: dict) -> int:
    """Generated tokens of one request: completion_tokens of its final response, else its response count - 1."""
    outputs = request.get("response_outputs") or []
    if outputs:
        last = outputs[-1]
        n = last.get("completion_tokens")
        if last.get("finish_reason") and isinstance(n, int) and 0 <= n < 1 << 24:
            return n
    return max(0, len(request.get("response_timestamps") or []) - 1)


def summarize_experiment(exp: dict) -> Level:
    """Figures of one experiment of a profile export."""
    bounds = exp.get("window_boundaries") or []
    info = exp.get("experiment") or {}
    lo, hi = (bounds[0], bounds[-1]) if len(bounds) >= 2 else (None, None)
    ttft, itl, lat = [], [], []
    tokens = requests = 0
    for r in exp.get("requests") or []:
        t0, ts = r.get("timestamp"), r.get("response_timestamps") or []
        if t0 is None or not ts:
            continue  # no response: not a completed request
        if lo is not None and not (lo <= t0 and ts[-1] <= hi):
            continue
        requests += 1
        tokens += completion_tokens(r)
        ttft.append((ts[0] - t0) / NS_PER_MS)
        lat.append((ts[-1] - t0) / NS_PER_MS)
        # The final response carries no new token (finish_reason, counts): gaps between token responses only.
        token_ts = ts[:-1] if len(ts) > 1 else ts
        itl.extend((b - a) / NS_PER_MS for a, b in zip(token_ts, token_ts[1:]))
    seconds = (hi - lo) / 1e9 if lo is not None else 0.0
    return Level(str(info.get("mode", "?")), int(info.get("value", 0)), requests, seconds, tokens, ttft, itl, lat)


def summarize(profile: dict) -> list[Level]:
    """Figures of every experiment of a profile export, in order."""
    exps = profile.get("experiments")
    if not isinstance(exps, list):
        raise ValueError("not a perf_analyzer profile export: no 'experiments' list")
    return [summarize_experiment(e) for e in exps]


def fmt(values: list[float], p: float) -> str:
    return f"{percentile(values, p):8.1f}" if values else "       -"


def table(levels: list[Level]) -> str:
    """A fixed-width table of the levels."""
    head = (f"{'conc':>4} {'reqs':>5} {'req/s':>6} {'tok/s':>6} {'TTFT p50':>8} {'TTFT p95':>8} "
            f"{'ITL p50':>8} {'ITL p95':>8} {'lat p50':>8} {'lat p95':>8}   (ms)")
    rows = [head]
    for lv in levels:
        rows.append(f"{lv.value:>4} {lv.requests:>5} {lv.requests_per_s:6.2f} {lv.tokens_per_s:6.1f} "
                    f"{fmt(lv.ttft_ms, 50)} {fmt(lv.ttft_ms, 95)} {fmt(lv.itl_ms, 50)} {fmt(lv.itl_ms, 95)} "
                    f"{fmt(lv.latency_ms, 50)} {fmt(lv.latency_ms, 95)}")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[1]
    try:
        with open(path, encoding="utf-8") as f:
            profile = json.load(f)
        levels = summarize(profile)
    except (OSError, ValueError) as e:
        print(f"summarize: {path}: {e}", file=sys.stderr)
        return 1
    if len(argv) > 2:
        print(argv[2])
    print(table(levels))
    return 0 if all(lv.requests > 0 for lv in levels) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
