"""Issue 10 through the real tritonserver: abandoned chat sessions do not hold new ones back, requests
written for Triton's vLLM backend work unchanged (string-valued sampling parameters, its additional outputs,
no prompt echo when streaming, n completions), and a misspelt request parameter is refused by name."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from test_generate import CHAT, GEN, grpc_generate, http_post, text_of

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def server(triton, gguf_model):
    return triton.start([GEN, CHAT])


def test_abandoned_sessions_do_not_hold_new_ones(server):
    # 70 sessions started and never ended: more than Triton's old candidate limit of 64, under max_sessions.
    t0 = time.monotonic()
    for sid in range(1000, 1070):
        out, err = grpc_generate(server, {"text_input": np.array(["Hi"]), "max_tokens": np.array([1], np.int32)},
                                 model=CHAT, seq={"sequence_id": sid, "sequence_start": True}, timeout=30)
        assert err is None, f"session {sid}: {err}"
    opened = time.monotonic() - t0
    t1 = time.monotonic()
    out, err = grpc_generate(server, {"text_input": np.array([PROMPT]), "max_tokens": np.array([4], np.int32)},
                             model=CHAT, seq={"sequence_id": 2000, "sequence_start": True, "sequence_end": True}, timeout=20)
    assert err is None, err
    assert time.monotonic() - t1 < 20
    print(f"70 abandoned sessions opened in {opened:.1f} s; a new session answered in {time.monotonic() - t1:.2f} s")
    for sid in range(1000, 1070):  # close them: an open sequence delays the server's shutdown
        grpc_generate(server, {"text_input": np.array([""])}, model=CHAT, seq={"sequence_id": sid, "sequence_end": True})


def test_vllm_sample_client_request(server):
    # samples/client.py of the vLLM backend: string-valued sampling parameters, streaming, prompt included.
    sp = json.dumps({"temperature": "0.1", "top_p": "0.95", "max_tokens": "12"})
    out, err = grpc_generate(server, {"text_input": np.array([PROMPT]), "stream": np.array([True]),
                                      "sampling_parameters": np.array([sp]), "exclude_input_in_output": np.array([False])})
    assert err is None, err
    text = text_of(out)
    assert text and PROMPT not in text, f"streaming echoed the prompt: {text!r} {out}"
    # Non-streaming with the prompt: it leads the text.
    status, body = http_post(server, f"/v2/models/{GEN}/generate",
                             {"text_input": PROMPT, "sampling_parameters": sp, "exclude_input_in_output": False})
    assert status == 200, body
    assert json.loads(body)["text_output"].startswith(PROMPT)


def test_vllm_additional_outputs_and_n(server):
    sp = json.dumps({"temperature": 1.0, "n": 2, "logprobs": 1, "max_tokens": 5, "seed": 3})
    inputs = {"text_input": np.array([PROMPT]), "sampling_parameters": np.array([sp]),
              "return_finish_reason": np.array([True]), "return_cumulative_logprob": np.array([True]),
              "return_logprobs": np.array([True]), "return_num_input_tokens": np.array([True]),
              "return_num_output_tokens": np.array([True]), "exclude_input_in_output": np.array([True]),
              "apply_chat_template": np.array([False])}  # as vLLM: the prompt as it is
    out, err = grpc_generate(server, inputs)
    assert err is None, err
    final = out[-1]
    assert final["text_output"].shape == (2,)
    assert [v.decode() for v in final["finish_reason"]] == ["length", "length"]
    assert list(final["num_output_tokens"]) == [5, 5]
    assert final["num_input_tokens"][0] == 5  # "The capital of France is"
    assert all(v < 0 for v in final["cumulative_logprob"])
    for lp in final["logprobs"]:
        per_token = json.loads(lp)
        assert len(per_token) == 5 and all(1 <= len(t) <= 2 for t in per_token)


def test_misspelt_request_parameter_is_refused(server):
    status, body = http_post(server, f"/v2/models/{GEN}/generate", {"text_input": PROMPT, "temprature": 0.5})
    assert status == 400 and "temprature" in body, body
    out, err = grpc_generate(server, {"text_input": np.array([PROMPT])}, params={"temprature": 0.5})
    assert err is not None and "temprature" in str(err)
