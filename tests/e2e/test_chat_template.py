"""The omnikv model's chat template through the real tritonserver (SmolLM2-135M-Instruct, whose GGUF carries
its jinja template): a plain question on HTTP generate gets an answer, apply_chat_template=false gives the
raw completion (the input, the request parameter, the sampling_parameters key), the messages input renders a
conversation, and bad messages are refused with a clear 400."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from test_generate import GEN, grpc_generate, http_post, ids_of, text_of

QUESTION = "What is 2+2?"


@pytest.fixture(scope="module")
def server(triton, gguf_model):
    return triton.start([GEN])


def generate(server, body: dict) -> dict:
    status, text = http_post(server, f"/v2/models/{GEN}/generate", body)
    assert status == 200, text
    return json.loads(text)


def as_list(v) -> list:
    """HTTP generate writes a one-element output as a scalar."""
    return v if isinstance(v, list) else [v]


def curl_generate(server, body: dict) -> dict:
    """The request a user types: curl on HTTP generate (urllib when curl is missing)."""
    if shutil.which("curl") is None:
        return generate(server, body)
    r = subprocess.run(["curl", "-sS", "-f", f"{server.http_url}/v2/models/{GEN}/generate", "-d", json.dumps(body)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_plain_question_gets_an_answer(server):
    got = curl_generate(server, {"text_input": QUESTION, "max_tokens": 16})
    text = got["text_output"]
    print(f"templated answer: {text!r} ({got['completion_tokens']} tokens, finish {got['finish_reason']}, prompt {got['prompt_tokens']} tokens)")
    assert text.strip() and not text.startswith(QUESTION), got  # the answer, not the prompt echoed
    assert got["completion_tokens"] > 1 and len(as_list(got["output_ids"])) == got["completion_tokens"], got
    assert got["finish_reason"] in ("stop", "length"), got
    assert "4" in text, got
    raw = generate(server, {"text_input": QUESTION, "max_tokens": 16, "apply_chat_template": False})
    # prompt_tokens counts the templated prompt (SmolLM2's template adds its system prompt and turn markers).
    assert got["prompt_tokens"] > raw["prompt_tokens"] + 10, (got, raw)


def test_raw_mode_is_the_completion(server):
    body = {"text_input": QUESTION, "max_tokens": 16}
    raw = generate(server, {**body, "apply_chat_template": False})
    print(f"raw: {raw['text_output']!r} ({raw['completion_tokens']} tokens)")
    # The old behaviour: SmolLM2-Instruct ends a bare "What is 2+2?" at once (its end token), and the vLLM
    # default leads the text with the prompt.
    assert raw["text_output"].startswith(QUESTION), raw
    assert raw["prompt_tokens"] == 7, raw  # BOS-less SmolLM2: "What is 2+2?" tokenized as it is
    # The same switch as the sampling_parameters key, as a string and over gRPC as a BOOL input.
    for other in ({**body, "sampling_parameters": json.dumps({"apply_chat_template": False})},
                  {**body, "sampling_parameters": json.dumps({"apply_chat_template": "false"})}):
        again = generate(server, other)
        assert again["output_ids"] == raw["output_ids"] and again["prompt_tokens"] == raw["prompt_tokens"], (again, raw)
    out, err = grpc_generate(server, {"text_input": [QUESTION], "max_tokens": np.array([16], np.int32),
                                      "apply_chat_template": np.array([False])})
    assert err is None, err
    assert ids_of(out) == as_list(raw["output_ids"])
    out, err = grpc_generate(server, {"text_input": [QUESTION], "max_tokens": np.array([16], np.int32)},
                             params={"apply_chat_template": False})
    assert err is None, err
    assert ids_of(out) == as_list(raw["output_ids"])
    # exclude_input_in_output given false echoes text_input as sent, templated or not.
    echoed = generate(server, {**body, "exclude_input_in_output": False})
    assert echoed["text_output"].startswith(QUESTION) and echoed["text_output"] != QUESTION, echoed


def test_messages(server):
    templated = generate(server, {"text_input": QUESTION, "max_tokens": 16})
    one = generate(server, {"messages": json.dumps([{"role": "user", "content": QUESTION}]), "max_tokens": 16})
    assert one["output_ids"] == templated["output_ids"] and one["prompt_tokens"] == templated["prompt_tokens"], (one, templated)
    conv = [{"role": "system", "content": "You answer in French."},
            {"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Bonjour !"},
            {"role": "user", "content": QUESTION}]
    many = generate(server, {"messages": json.dumps(conv), "max_tokens": 16})
    assert many["prompt_tokens"] > one["prompt_tokens"] and many["completion_tokens"] > 1, many
    # Streaming deltas of a messages request concatenate to the one-response text.
    out, err = grpc_generate(server, {"messages": [json.dumps(conv)], "max_tokens": np.array([16], np.int32),
                                      "stream": np.array([True])})
    assert err is None, err
    assert ids_of(out) == as_list(many["output_ids"]) and text_of(out) == many["text_output"]


BAD = [
    ({"messages": '[{"role": "user", "content": "hi"}', "max_tokens": 4}, "messages: malformed JSON"),
    ({"messages": '{"role": "user", "content": "hi"}'}, "messages: malformed JSON"),
    ({"messages": "[]"}, "messages: empty"),
    ({"messages": '[{"role": "user", "content": 42}]'}, '"content" must be a string'),
    ({"messages": '[{"role": "user", "text": "hi"}]'}, 'unknown key "text"'),
    ({"messages": '[{"role": "user", "content": "hi"}]', "text_input": "hi"}, "give either messages or text_input"),
    ({"messages": '[{"role": "user", "content": "hi"}]', "apply_chat_template": False}, "always rendered with the chat template"),
    ({"input_ids": [1, 2], "apply_chat_template": True}, "input_ids are never templated"),
    ({"text_input": "hi", "sampling_parameters": json.dumps({"apply_chat_template": "maybe"})}, "apply_chat_template"),
]


@pytest.mark.parametrize("body,word", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_messages_are_400(server, body, word):
    status, text = http_post(server, f"/v2/models/{GEN}/generate", body)
    assert status == 400, (status, text)
    assert word in json.loads(text)["error"], text
    assert server.alive()
