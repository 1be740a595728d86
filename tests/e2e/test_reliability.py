"""Reliability of the omnikv backend under the real tritonserver: concurrency, cancellation storms, unload
while streaming, memory-budget and session-limit refusals, idle-session reaping under load, injected panics
(faultinject build) and the process RSS against the KV budgets. Each test prints a one-line summary and stores
its figures in .cache/reliability.json (docs/serving.md, section Reliability, quotes them).

Run (2.5 minutes on the 2-core machine at load average ~3; longer when it is busier):
    .cache/tritonvenv/bin/python -m pytest tests/e2e/test_reliability.py -q -p no:cacheprovider -x -s

Codes: Triton's gRPC stream carries an error's message but not its code (tritonclient's exception has no
status for a stream response), and HTTP generate answers 400 whatever the code, so the tests check the
message that the backend attaches to each code: "session limit" and "budget" (UNAVAILABLE), "unknown or
expired" (NOT_FOUND), "internal error" (INTERNAL).

Environment (besides conftest's): OMNIKV_FAULTINJECT_BACKEND_DIR, a prebuilt `-tags faultinject` backend
directory (default: built here with go).
"""

from __future__ import annotations

import os
import random
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import Launcher, _find_tritonserver, _missing
from reliability_util import (KV_BYTES_PER_TOKEN, MIB, PAGE_TOKENS, PROMPTS, Result, build_backend, close_session,
                              http_post, infer, metric, model_ready, proc_status, quantile, record, repo_copy,
                              wait_until)

GEN, CHAT = "omnikv", "omnikv_chat"
GREEDY = {"temperature": 0}
LONG = {"temperature": 0, "ignore_eos": True}  # exactly max_tokens tokens

@pytest.fixture(scope="module")
def gen_server(triton, gguf_model):
    srv = triton.start([GEN])
    yield srv
    srv.stop()


def log_count(server, pattern: str) -> int:
    return len(re.findall(pattern, server.log()))


# 1. Concurrency ---------------------------------------------------------------------------------------------

def test_concurrent_streams_equal_solo(gen_server):
    """200 requests over 32 concurrent streams (max_tokens 8..32, 3/4 streamed) equal their solo runs."""
    url = gen_server.grpc_url
    solo = {}
    for i, p in enumerate(PROMPTS):  # sequentially, one at a time: the reference
        r = infer(url, GEN, p, 32, stream=False, sampling=GREEDY, timeout=60)
        assert r.ok, (p, r.describe())
        solo[i] = r.ids
    rng = random.Random(1)
    work = [(k % len(PROMPTS), rng.randint(8, 32), rng.random() < 0.75) for k in range(200)]
    rng.shuffle(work)

    def one(w):
        p, mt, stream = w
        return w, infer(url, GEN, PROMPTS[p], mt, stream=stream, sampling=GREEDY, timeout=120)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(32) as ex:
        done = list(ex.map(one, work))
    wall = time.perf_counter() - t0
    bad = [(PROMPTS[p][:30], mt, r.describe()) for (p, mt, _), r in done if not r.ok]
    assert not bad, f"{len(bad)} requests failed: {bad[:5]}"
    # Greedy decoding: an answer with max_tokens m is the solo answer (32 tokens) cut at m.
    wrong = [(PROMPTS[p][:30], mt, r.ids, solo[p][:mt]) for (p, mt, _), r in done if r.ids != solo[p][:mt]]
    assert not wrong, f"{len(wrong)} of {len(done)} answers differ from their solo run, e.g. {wrong[:2]}"
    tokens = sum(len(r.ids) for _, r in done)
    lat = [r.latency for _, r in done]
    fig = {"requests": len(done), "streams": 32, "tokens": tokens, "wall_s": round(wall, 2),
           "tokens_per_s": round(tokens / wall, 1), "latency_median_s": round(statistics.median(lat), 3),
           "latency_p95_s": round(quantile(lat, 0.95), 3), "latency_max_s": round(max(lat), 3)}
    record("concurrency", f"{len(done)} requests on 32 streams, all equal to solo: {wall:.1f} s, "
           f"{tokens / wall:.0f} tokens/s, latency median {fig['latency_median_s']} s, max {fig['latency_max_s']} s", fig)
    assert gen_server.alive()


# 2. Cancellation storm ----------------------------------------------------------------------------------------

def test_cancellation_storm(gen_server):
    """64 streams, 32 of them cancelled at seeded random points (while queued or decoding): the others and
    the cancelled ones' partial answers equal the solo answers, nothing stays running or holds KV."""
    srv, url = gen_server, gen_server.grpc_url
    prompts = PROMPTS[:4]
    mt = 48
    ref = [infer(url, GEN, p, mt, sampling=LONG, timeout=60) for p in prompts]
    assert all(r.ok and len(r.ids) == mt for r in ref), [r.describe() for r in ref]
    probe_before = infer(url, GEN, PROMPTS[5], 16, stream=False, sampling=GREEDY, timeout=60)
    assert probe_before.ok
    rng = random.Random(2)
    cancel = {i: rng.randint(0, 40) for i in rng.sample(range(64), 32)}  # stream -> responses before its cancel
    cancels_logged0 = log_count(srv, r"request cancelled after")
    metric_cancels0 = metric(srv, "omnikv_cancellations_total", model=GEN)

    def one(i):
        return infer(url, GEN, prompts[i % 4], mt, sampling=LONG, timeout=120, cancel_after=cancel.get(i))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(64) as ex:
        res = list(ex.map(one, range(64)))
    storm = time.perf_counter() - t0
    assert srv.alive()
    for i, r in enumerate(res):
        want = ref[i % 4].ids
        if i in cancel:
            assert r.cancelled or r.ok, (i, r.describe())
            assert r.ids == want[:len(r.ids)], (i, "a cancelled stream's tokens are not a prefix of the solo answer")
        else:
            assert r.ok and r.ids == want, (i, r.describe())
    n_cancelled = sum(r.cancelled for r in res)

    # Nothing left running or holding KV: the server log (a last cancelled request, alone, logs the KV pages
    # still in use, storm leftovers included), then the engine's gauges when the server exports them.
    wait_until(lambda: log_count(srv, r"request cancelled after") - cancels_logged0 >= n_cancelled, 20)
    cancels_logged = log_count(srv, r"request cancelled after") - cancels_logged0
    metric_cancels = None if metric_cancels0 is None else metric(srv, "omnikv_cancellations_total", model=GEN) - metric_cancels0
    before = log_count(srv, r"request cancelled after")
    last = infer(url, GEN, "1, 2, 3, 4, 5, 6, 7, 8,", 300, sampling=LONG, cancel_after=3, timeout=60)
    assert last.cancelled, last.describe()
    assert wait_until(lambda: log_count(srv, r"request cancelled after") > before, 20), "no log line for the last cancel"
    line = [ln for ln in srv.log().splitlines() if "request cancelled after" in ln][-1]
    assert re.search(r"KV pages in use: 0\b", line), line
    probe_after = infer(url, GEN, PROMPTS[5], 16, stream=False, sampling=GREEDY, timeout=60)
    assert probe_after.ok and probe_after.ids == probe_before.ids, (probe_before.ids, probe_after.ids)
    gauges = {}
    for name, labels in (("omnikv_running_sequences", {}), ("omnikv_queued_sequences", {}),
                         ("omnikv_kv_bytes", {"state": "used"})):
        if metric(srv, name, model=GEN, **labels) is not None:
            wait_until(lambda: metric(srv, name, model=GEN, **labels) == 0, 10)
            gauges[name] = metric(srv, name, model=GEN, **labels)
    fig = {"streams": 64, "cancels_requested": len(cancel), "cancelled_before_final": n_cancelled,
           "cancels_in_server_log": cancels_logged, "cancels_in_metrics": metric_cancels,
           "storm_wall_s": round(storm, 2), "gauges_after": gauges}
    record("cancellation_storm", f"64 streams, {n_cancelled} cancelled ({cancels_logged} cancels in the server log"
           f"{'' if metric_cancels is None else f', {metric_cancels:.0f} in metrics'}) in {storm:.1f} s; "
           f"the rest equal solo; KV pages in use after: 0; gauges after: {gauges or 'not exported'}", fig)
    assert all(v == 0 for v in gauges.values()), f"gauges not back to 0 with nothing running: {gauges}"


# 3. Unload while streaming ------------------------------------------------------------------------------------

UNLOAD_BOUND_S = 60.0


def test_unload_while_streaming(triton, gguf_model):
    """8 long streams, the model unloaded through the repository API mid-stream: each stream ends (error or
    final) within UNLOAD_BOUND_S, the server lives, and the reloaded model answers as before."""
    srv = triton.start([GEN], extra_args=("--model-control-mode=explicit", f"--load-model={GEN}"))
    try:
        url = srv.grpc_url
        probe = infer(url, GEN, PROMPTS[3], 12, stream=False, sampling=GREEDY, timeout=60)
        assert probe.ok
        mt = 256
        started = [threading.Event() for _ in range(8)]
        res: list[Result | None] = [None] * 8

        def stream(i):
            res[i] = infer(url, GEN, PROMPTS[i], mt, sampling=LONG, timeout=UNLOAD_BOUND_S + 30,
                           on_response=lambda r, e=started[i]: r.responses >= 3 and e.set())
            started[i].set()

        threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        assert all(e.wait(60) for e in started), "streams did not start"
        unload: dict = {}

        def do_unload():
            t = time.perf_counter()
            unload["status"], unload["body"] = http_post(srv.http_url, f"/v2/repository/models/{GEN}/unload", {}, timeout=UNLOAD_BOUND_S + 30)
            unload["s"] = time.perf_counter() - t

        t_unload = time.perf_counter()
        ut = threading.Thread(target=do_unload, daemon=True)
        ut.start()
        for t in threads:
            t.join(max(0.0, t_unload + UNLOAD_BOUND_S - time.perf_counter()))
        ended = time.perf_counter() - t_unload
        assert not any(t.is_alive() for t in threads), f"streams still open {UNLOAD_BOUND_S} s after the unload"
        ut.join(max(0.0, t_unload + UNLOAD_BOUND_S - time.perf_counter()))
        assert not ut.is_alive(), "the unload call did not return"
        assert unload["status"] == 200, unload
        assert srv.alive()
        for i, r in enumerate(res):
            assert r is not None and not r.timed_out, (i, r and r.describe())
            if r.error is None:
                assert r.finish == "length" and len(r.ids) == mt, (i, r.describe())
        finals = sum(r.error is None for r in res)
        errors = sorted({r.error[:120] for r in res if r.error})
        assert wait_until(lambda: not model_ready(srv, GEN), 30), "the model is still ready after its unload"
        gone = infer(url, GEN, PROMPTS[3], 4, stream=False, timeout=30)
        assert gone.error is not None, "an unloaded model answered"
        status, body = http_post(srv.http_url, f"/v2/repository/models/{GEN}/load", {}, timeout=120)
        assert status == 200, body
        again = infer(url, GEN, PROMPTS[3], 12, stream=False, sampling=GREEDY, timeout=60)
        assert again.ok and again.ids == probe.ids, (probe.ids, again.describe())
        fig = {"streams": 8, "max_tokens": mt, "ended_with_final": finals, "ended_with_error": 8 - finals,
               "errors": errors, "last_stream_end_s_after_unload": round(ended, 2), "unload_call_s": round(unload["s"], 2),
               "bound_s": UNLOAD_BOUND_S}
        record("unload_while_streaming", f"8 streams, unload mid-stream: {finals} finished, {8 - finals} ended with an "
               f"error, the last {ended:.1f} s after the unload (bound {UNLOAD_BOUND_S:.0f} s); reload answers as before", fig)
    finally:
        srv.stop()


# 4. Budget exhaustion -----------------------------------------------------------------------------------------

def test_budget_and_session_limit(triton, gguf_model, model_repository_root, tmp_path):
    """max_sessions 4 and a KV budget for two long sessions: of six new sessions two run, two are refused
    after queue_timeout_s naming the budget, two at once naming the session limit; the two that ran equal
    their solo answers."""
    # queue_timeout well under the time the two admitted sessions run (400 tokens: 2.8 s on a fast 2-core machine),
    # so that the third and fourth are refused before either finishes and frees its pages.
    mt, queue_timeout = 400, 1.0
    # Dense (omnikv false), so that every layer's KV is in the resident tier: a session reserves its prompt
    # (under 112 tokens with the template) + 400 tokens = 7 or 8 pages of 64 tokens; the budget holds 20 pages:
    # two sessions fit, a third does not.
    page = PAGE_TOKENS * KV_BYTES_PER_TOKEN
    budget = 20 * page
    src = repo_copy(model_repository_root, tmp_path / "repo", {CHAT: {
        "max_sessions": "4", "kv_resident_budget": str(budget), "kv_offload_budget": "0",
        "queue_timeout_s": str(queue_timeout), "omnikv": "false"}})
    srv = triton.start([CHAT], source=src)
    url = srv.grpc_url
    texts = [f"Write a long story about a {animal} who learns to {skill}." for animal, skill in
             [("cat", "sail"), ("dog", "paint"), ("fox", "sing"), ("owl", "cook"), ("bear", "fly"), ("mouse", "swim")]]
    res: list[Result | None] = [None] * 6
    try:
        def turn(i):
            res[i] = infer(url, CHAT, texts[i], mt, sampling=LONG, seq={"sequence_id": 1000 + i, "sequence_start": True},
                           timeout=120)

        threads = []
        for i in range(6):  # in this order, so that the first two are the ones admitted
            threads.append(threading.Thread(target=turn, args=(i,), daemon=True))
            threads[-1].start()
            time.sleep(0.3)
        for t in threads:
            t.join(150)
        assert all(r is not None for r in res), "a turn did not return"
        for i, r in enumerate(res):
            print(f"session {1000 + i}: {r.describe()}")
        admitted = [i for i, r in enumerate(res) if r.ok]
        limit = [i for i, r in enumerate(res) if r.error and "session limit" in r.error]
        budget_refused = [i for i, r in enumerate(res) if r.error and "budget" in r.error]
        assert admitted == [0, 1], [(i, r.describe()) for i, r in enumerate(res)]
        # Sessions 2-5 arrive 0.3 s apart, but a loaded machine can reorder two neighbours on their way
        # through Triton: which two wait for the budget and which two meet the limit is not asserted by index.
        assert len(limit) == 2 and len(budget_refused) == 2 and sorted(limit + budget_refused) == [2, 3, 4, 5], \
            [(i, r.describe()) for i, r in enumerate(res)]
        for i in budget_refused:
            assert "resident" in res[i].error and "queue_timeout_s" in res[i].error, res[i].error
            assert queue_timeout - 0.2 <= res[i].latency <= queue_timeout + 5, res[i].describe()
        for i in limit:
            assert res[i].latency < 1.0, res[i].describe()
        assert all(len(res[i].ids) == mt for i in admitted)
    finally:
        for i in range(6):  # closes Triton's sequences too (the refused ones' backend answer: unknown session)
            close_session(url, CHAT, 1000 + i)
    # Solo: each admitted conversation again, alone, in a new session.
    for i in admitted:
        solo = infer(url, CHAT, texts[i], mt, sampling=LONG, seq={"sequence_id": 2000 + i, "sequence_start": True}, timeout=120)
        assert solo.ok, solo.describe()
        assert res[i].ids == solo.ids, f"session {1000 + i} under the limits differs from its solo run"
        close_session(url, CHAT, 2000 + i)
    assert srv.alive()
    lim_ms = [1000 * res[i].latency for i in limit]
    bud_s = [res[i].latency for i in budget_refused]
    fig = {"sessions_tried": 6, "max_sessions": 4, "kv_resident_budget_bytes": budget, "queue_timeout_s": queue_timeout,
           "admitted": len(admitted), "refused_session_limit": len(limit), "refused_budget": len(budget_refused),
           "session_limit_refusal_ms_max": round(max(lim_ms), 1), "budget_refusal_s": [round(x, 2) for x in bud_s],
           "budget_error": res[budget_refused[0]].error, "limit_error": res[limit[0]].error}
    record("budget_exhaustion", f"6 new sessions, max_sessions 4, budget {budget / MIB:.1f} MiB: 2 admitted (equal solo), "
           f"2 refused for the session limit in <= {max(lim_ms):.0f} ms, 2 for the budget after "
           f"{min(bud_s):.2f}-{max(bud_s):.2f} s (queue_timeout_s {queue_timeout:.0f})", fig)
    srv.stop()


# 5. Idle reaping under load -----------------------------------------------------------------------------------

def test_idle_sessions_reaped_under_load(triton, gguf_model, model_repository_root, tmp_path):
    """session_idle_timeout_s 2: three abandoned sessions are gone after it (their turn: unknown or expired)
    while stateless traffic and a busy chat session run unaffected; a new session then works."""
    idle = 2.0
    # Only the backend's timeout changes: Triton keeps routing the sequences, so the backend's answer shows.
    src = repo_copy(model_repository_root, tmp_path / "repo", {GEN: {}, CHAT: {"session_idle_timeout_s": str(idle)}})
    srv = triton.start([GEN, CHAT], source=src)
    url = srv.grpc_url
    first_turn = "What is the capital of France?"
    ref_chat = infer(url, CHAT, first_turn, 12, seq={"sequence_id": 1, "sequence_start": True}, timeout=60)
    assert ref_chat.ok, ref_chat.describe()
    close_session(url, CHAT, 1)
    ref_gen = {p: infer(url, GEN, PROMPTS[p], 16, stream=False, sampling=GREEDY, timeout=60) for p in (0, 3, 7)}
    assert all(r.ok for r in ref_gen.values())

    stop = threading.Event()
    traffic: list[tuple[int, Result]] = []
    busy: list[Result] = []

    def stateless(k):
        n = 0
        while not stop.is_set() and n < 200:
            p = (0, 3, 7)[(k + n) % 3]
            traffic.append((p, infer(url, GEN, PROMPTS[p], 16, stream=n % 2 == 0, sampling=GREEDY, timeout=60)))
            n += 1

    def busy_session():
        n = 0
        while not stop.is_set() and n < 100:
            busy.append(infer(url, CHAT, f"Say a word with {n % 7 + 2} letters.", 4,
                              seq={"sequence_id": 300, "sequence_start": n == 0}, timeout=60))
            n += 1
            time.sleep(0.3)

    workers = [threading.Thread(target=stateless, args=(k,), daemon=True) for k in range(2)]
    workers.append(threading.Thread(target=busy_session, daemon=True))
    for w in workers:
        w.start()
    try:
        abandoned = [201, 202, 203]
        for s in abandoned:
            r = infer(url, CHAT, first_turn, 12, seq={"sequence_id": s, "sequence_start": True}, timeout=60)
            assert r.ok and r.ids == ref_chat.ids, r.describe()
        t_abandon = time.perf_counter()
        open_metric = metric(srv, "omnikv_open_sessions", model=CHAT)
        if open_metric is not None:  # 3 abandoned + the busy one, until the reaper runs
            assert wait_until(lambda: metric(srv, "omnikv_open_sessions", model=CHAT) == 1, idle + 10), \
                f"open sessions: {metric(srv, 'omnikv_open_sessions', model=CHAT)}"
        else:
            time.sleep(idle + 1.5)  # idle timeout + the reaper's period (<= 1 s) + margin
        reaped_after = time.perf_counter() - t_abandon
        for s in abandoned:
            r = infer(url, CHAT, "Are you still there?", 4, seq={"sequence_id": s}, timeout=30)
            assert r.error and "unknown or expired" in r.error and str(s) in r.error, r.describe()
        new = infer(url, CHAT, first_turn, 12, seq={"sequence_id": 400, "sequence_start": True}, timeout=60)
        assert new.ok and new.ids == ref_chat.ids, new.describe()
        time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join(90)
    assert not any(w.is_alive() for w in workers)
    bad = [(p, r.describe()) for p, r in traffic if not r.ok or r.ids != ref_gen[p].ids]
    assert not bad, f"stateless traffic affected: {bad[:3]}"
    assert busy and all(r.ok for r in busy), [r.describe() for r in busy if not r.ok][:3]
    for s in (300, 400, 201, 202, 203):
        close_session(url, CHAT, s)
    assert srv.alive()
    fig = {"session_idle_timeout_s": idle, "abandoned": 3, "gone_after_s": round(reaped_after, 2),
           "stateless_requests_during": len(traffic), "busy_session_turns_during": len(busy),
           "open_sessions_metric": open_metric is not None}
    record("idle_reaping", f"3 sessions abandoned, gone {reaped_after:.1f} s later (idle timeout {idle:.0f} s) while "
           f"{len(traffic)} stateless requests and {len(busy)} turns of a busy session ran, all correct", fig)
    srv.stop()


# 6. Injected panics -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fault_triton(tmp_path_factory, gguf_model):
    """A launcher whose servers run the `-tags faultinject` build."""
    env_dir = os.environ.get("OMNIKV_FAULTINJECT_BACKEND_DIR")
    if env_dir:
        bdir = Path(env_dir)
        if not (bdir / "omnikv" / "libtriton_omnikv.so").exists():
            pytest.fail(f"OMNIKV_FAULTINJECT_BACKEND_DIR={env_dir} has no omnikv/libtriton_omnikv.so", pytrace=False)
    else:
        try:
            bdir = build_backend(tmp_path_factory.mktemp("faultinject"), tags="faultinject")
        except FileNotFoundError:
            _missing("the Go toolchain (to build the faultinject backend); or set OMNIKV_FAULTINJECT_BACKEND_DIR")
    server, ld = _find_tritonserver()
    launcher = Launcher(server, ld, bdir, tmp_path_factory.mktemp("triton_fault"))
    yield launcher
    launcher.stop_all()


def test_injected_panics(fault_triton):
    """A panic in the scheduler and one in a CPU device worker: the faulting request fails with the internal
    error; a healthy stream decoding at the time fails with it too (it shares the step) or completes
    correctly; afterwards the server answers exactly as before."""
    srv = fault_triton.start([GEN])
    url = srv.grpc_url
    healthy_text, mt = PROMPTS[2], 160
    ref = infer(url, GEN, healthy_text, mt, sampling=LONG, timeout=90)
    probe = infer(url, GEN, PROMPTS[0], 16, stream=False, sampling=GREEDY, timeout=60)
    assert ref.ok and probe.ok
    outcome = {}
    for marker in ("OMNIKV_FAULT_SCHEDULER", "OMNIKV_FAULT_DEVICE"):
        errs0 = metric(srv, "omnikv_step_errors_total", model=GEN)
        going = threading.Event()
        h: list[Result] = []
        t = threading.Thread(target=lambda: h.append(infer(url, GEN, healthy_text, mt, sampling=LONG, timeout=90,
                                                           on_response=lambda r: r.responses >= 5 and going.set())),
                             daemon=True)
        t.start()
        assert going.wait(60), "the healthy stream did not start"
        f = infer(url, GEN, f"Please repeat: {marker}", 8, stream=False, sampling=GREEDY, timeout=60)
        t.join(120)
        assert not t.is_alive() and h, "the healthy stream did not end"
        assert f.error is not None and "internal error" in f.error and "fault injected" in f.error, f.describe()
        hr = h[0]
        if hr.error is None:
            assert hr.ok and hr.ids == ref.ids, hr.describe()
            how = "completed, equal to solo"
        else:
            assert "internal error" in hr.error, hr.describe()
            assert hr.ids == ref.ids[:len(hr.ids)], "the healthy stream's tokens before the fault differ"
            how = f"failed with the same step (INTERNAL after {len(hr.ids)} tokens)"
        assert srv.alive()
        after = infer(url, GEN, PROMPTS[0], 16, stream=False, sampling=GREEDY, timeout=60)
        assert after.ok and after.ids == probe.ids, after.describe()
        if errs0 is not None:
            assert metric(srv, "omnikv_step_errors_total", model=GEN) - errs0 == 1
        outcome[marker] = {"faulting_request": f.error, "healthy_stream": how}
    again = infer(url, GEN, healthy_text, mt, sampling=LONG, timeout=90)
    assert again.ok and again.ids == ref.ids
    fig = {"faults": outcome}
    record("injected_panics", "; ".join(f"{m.split('_')[-1].lower()}: faulting request INTERNAL, healthy stream "
                                        f"{o['healthy_stream']}" for m, o in outcome.items())
           + "; server answers as before", fig)
    srv.stop()


# 7. RSS against the budgets -----------------------------------------------------------------------------------

# Non-KV growth after load: lazily built state (batched-step buffers, packed weights), the Go heap's growth to
# its steady state under traffic (measured here: ~150-200 MiB over the first thousand requests), allocator and
# gRPC buffers.
RSS_ALLOWANCE = 256 * MIB


def test_rss_within_budgets(triton, gguf_model, model_repository_root, tmp_path):
    """1,000 mixed requests (stateless and chat, streamed and not, 16 cancelled) leaving 64 chat sessions
    abandoned with long prompts: the process RSS stays within its RSS after load + both models' KV budgets
    + RSS_ALLOWANCE. Without the budgets those sessions alone would hold more KV than that."""
    res_budget = off_budget = 32 * MIB
    params = {"kv_resident_budget": "32MiB", "kv_offload_budget": "32MiB", "kv_free_watermark": "16MiB"}
    src = repo_copy(model_repository_root, tmp_path / "repo", {GEN: params, CHAT: params})
    srv = triton.start([GEN, CHAT], source=src)
    url, pid = srv.grpc_url, srv.proc.pid
    base = proc_status(pid)
    rng = random.Random(7)
    filler = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()

    def long_prompt(k):  # ~210 tokens with the chat template, distinct per session
        return f"Session {k}. Remember these words: " + " ".join(filler[(k * 7 + j) % len(filler)] + str(j) for j in range(50)) + ". Which came first?"

    tasks = []  # (kind, arg): each task is one request, except a conversation (5)
    tasks += [("abandon", k) for k in range(64)]
    tasks += [("conversation", k) for k in range(30)]
    tasks += [("cancel", k) for k in range(16)]
    n_stateless = 1000 - 64 - 30 * 5 - 16
    tasks += [("stateless", k) for k in range(n_stateless)]
    rng.shuffle(tasks)
    abandoned: list[Result] = []

    def run(task) -> list[Result]:
        kind, k = task
        if kind == "abandon":
            r = infer(url, CHAT, long_prompt(k), 4, stream=False, seq={"sequence_id": 7000 + k, "sequence_start": True}, timeout=180)
            abandoned.append(r)
            return [r]
        if kind == "conversation":
            out = [infer(url, CHAT, f"Turn {t} of chat {k}: name a {['color', 'city', 'tree', 'fish'][t]}.", 2 + (k + t) % 6,
                         stream=(k + t) % 2 == 0, seq={"sequence_id": 8000 + k, "sequence_start": t == 0}, timeout=180)
                   for t in range(4)]
            out.append(close_session(url, CHAT, 8000 + k, timeout=60))
            return out
        if kind == "cancel":
            return [infer(url, GEN, PROMPTS[k % 14], 200, sampling=LONG, cancel_after=2 + k % 5, timeout=180)]
        p = PROMPTS[k % 14] + f" ({k})"  # the short prompts
        return [infer(url, GEN, p, 1 + k % 6, stream=k % 3 != 0, sampling=GREEDY, timeout=180)]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as ex:
        results = [r for rs in ex.map(run, tasks) for r in rs]
    wall = time.perf_counter() - t0
    assert len(results) == 1000
    cancelled = [r for r in results if r.cancelled]
    failed = [r.describe() for r in results if not r.ok and not r.cancelled]
    assert not failed, f"{len(failed)} requests failed: {failed[:5]}"
    assert srv.alive()
    after = proc_status(pid)
    time.sleep(3)  # the engines trim free KV above the watermark when idle
    settled = proc_status(pid)
    kv_budgets = 2 * (res_budget + off_budget)  # two models
    bound = base["VmRSS"] + kv_budgets + RSS_ALLOWANCE
    # What the abandoned sessions would hold without budgets (prompt + answer, every layer, fp16).
    unbounded = sum((r.prompt_tokens or 0) + len(r.ids) for r in abandoned) * KV_BYTES_PER_TOKEN
    kv = {f"{m}:{tier}:{state}": metric(srv, "omnikv_kv_bytes", model=m, tier=tier, state=state)
          for m in (GEN, CHAT) for tier in ("resident", "offload") for state in ("used", "free")}
    kv = {k: v for k, v in kv.items() if v is not None}
    fig = {"requests": len(results), "cancelled": len(cancelled), "abandoned_sessions": len(abandoned), "wall_s": round(wall, 1),
           "rss_after_load_mib": round(base["VmRSS"] / MIB, 1), "rss_after_mib": round(after["VmRSS"] / MIB, 1),
           "rss_anon_file_after_load_mib": [round(base["RssAnon"] / MIB, 1), round(base["RssFile"] / MIB, 1)],
           "rss_anon_file_settled_mib": [round(settled["RssAnon"] / MIB, 1), round(settled["RssFile"] / MIB, 1)],
           "rss_settled_mib": round(settled["VmRSS"] / MIB, 1), "rss_peak_mib": round(settled["VmHWM"] / MIB, 1),
           "kv_budgets_mib": kv_budgets / MIB, "allowance_mib": RSS_ALLOWANCE / MIB, "bound_mib": round(bound / MIB, 1),
           "abandoned_kv_unbounded_mib": round(unbounded / MIB, 1), "kv_metrics_mib": {k: round(v / MIB, 2) for k, v in kv.items()}}
    record("rss", f"1000 requests ({len(cancelled)} cancelled, 64 sessions abandoned) in {wall:.0f} s: RSS {base['VmRSS'] / MIB:.0f} MiB "
           f"after load -> {settled['VmRSS'] / MIB:.0f} MiB (peak {settled['VmHWM'] / MIB:.0f}), bound {bound / MIB:.0f} MiB "
           f"(budgets {kv_budgets / MIB:.0f} + allowance {RSS_ALLOWANCE / MIB:.0f}); unbounded the abandoned sessions "
           f"would hold {unbounded / MIB:.0f} MiB of KV", fig)
    for m in (GEN, CHAT):
        for tier, b in (("resident", res_budget), ("offload", off_budget)):
            used = kv.get(f"{m}:{tier}:used")
            assert used is None or used <= b, f"{m} {tier} KV in use {used / MIB:.1f} MiB over its budget {b / MIB:.0f} MiB"
    assert after["VmRSS"] <= bound and settled["VmRSS"] <= bound, fig
    for k in range(64):  # not part of the measurement: lets the server stop without waiting for the sequences
        close_session(url, CHAT, 7000 + k)
    srv.stop()
