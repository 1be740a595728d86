"""The OpenAI-compatible gateway (`omnikv-client openai`, client/openai) in front of the real tritonserver serving
omnikv (SmolLM2-135M-Instruct), driven by PyPI's official `openai` client: chat and completions, streamed and
not, usage, stop, max_tokens, n, logprobs, errors, and a client that leaves cancelling the generation. Answers at
temperature 0 are checked against Triton's own generate endpoint for the same messages or prompt."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import REPO_ROOT, _missing

try:
    import openai
except ImportError:  # scripts/fetch-triton.sh installs it
    openai = None

MODEL = "omnikv"
CHAT = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three primary colours."}]


@pytest.fixture(scope="module")
def server(triton, gguf_model):
    return triton.start([MODEL])


@pytest.fixture(scope="module")
def gateway_bin(tmp_path_factory):
    go = shutil.which("go")
    if go is None:
        _missing("the Go toolchain (to build omnikv-client)")
    out = tmp_path_factory.mktemp("gateway") / "omnikv-client"
    r = subprocess.run([go, "build", "-o", str(out), "./client/cmd/omnikv-client"], cwd=REPO_ROOT,
                       env={**os.environ, "CGO_ENABLED": "0"}, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"building omnikv-client failed:\n{r.stdout}{r.stderr}", pytrace=False)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gateway(server, gateway_bin, tmp_path_factory):
    """The gateway's base URL (http://127.0.0.1:PORT); it runs until the module's tests end."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("gateway-log") / "gateway.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(gateway_bin), "openai", "--listen", f"127.0.0.1:{port}", "--url", server.grpc_url,
                             "--model", MODEL], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"gateway exited with {proc.returncode}:\n{log_path.read_text()}", pytrace=False)
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"gateway not healthy after 30 s:\n{log_path.read_text()}", pytrace=False)
        time.sleep(0.1)
    yield url
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    log.close()
    assert code == 0, f"gateway exit status {code}:\n{log_path.read_text()}"


@pytest.fixture(scope="module")
def client(gateway):
    if openai is None:
        _missing("the openai package (scripts/fetch-triton.sh installs it into .cache/tritonvenv)")
    return openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0, timeout=120)


def triton_generate(server, body: dict) -> dict:
    """Triton's own HTTP generate endpoint (the reference for the gateway's answers)."""
    req = urllib.request.Request(f"{server.http_url}/v2/models/{MODEL}/generate", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def test_models(client):
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_chat(client, server):
    r = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=0, max_tokens=24)
    text = r.choices[0].message.content
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert text and r.choices[0].finish_reason in ("stop", "length")
    # the same messages straight to Triton: the gateway adds nothing and loses nothing
    ref = triton_generate(server, {"messages": json.dumps(CHAT), "max_tokens": 24, "exclude_input_in_output": True,
                                   "sampling_parameters": json.dumps({"temperature": 0})})
    assert text == ref["text_output"]
    assert r.choices[0].finish_reason == ref["finish_reason"]
    assert r.usage.prompt_tokens == ref["prompt_tokens"] > 10  # the template's system turn and the user turn
    assert r.usage.completion_tokens == ref["completion_tokens"] > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_equals_non_stream(client):
    whole = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=0, max_tokens=24)
    chunks = list(client.chat.completions.create(model=MODEL, messages=CHAT, temperature=0, max_tokens=24, stream=True,
                                                 stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([p for p in pieces if p]) > 3, "streamed in one piece"
    assert "".join(pieces) == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_completions(client, server):
    prompt = "The capital of France is"
    r = client.completions.create(model=MODEL, prompt=prompt, temperature=0, max_tokens=12)
    ref = triton_generate(server, {"text_input": prompt, "max_tokens": 12, "exclude_input_in_output": True,
                                   "apply_chat_template": False, "sampling_parameters": json.dumps({"temperature": 0})})
    assert r.object == "text_completion"
    assert r.choices[0].text == ref["text_output"] and r.choices[0].text.strip()
    assert r.usage.prompt_tokens == ref["prompt_tokens"] == 5  # raw text: no chat template around it
    assert r.usage.completion_tokens == ref["completion_tokens"]
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt=prompt, temperature=0, max_tokens=12, stream=True) if c.choices)
    assert streamed == r.choices[0].text


def test_prompt_list(client):
    """Several prompts run as concurrent Triton requests; each choice equals that prompt asked alone."""
    prompts = ["The capital of France is", "Once upon a time"]
    alone = [client.completions.create(model=MODEL, prompt=p, temperature=0, max_tokens=8) for p in prompts]
    both = client.completions.create(model=MODEL, prompt=prompts, temperature=0, max_tokens=8)
    assert [c.index for c in both.choices] == [0, 1]
    assert [c.text for c in both.choices] == [a.choices[0].text for a in alone]
    assert both.usage.prompt_tokens == sum(a.usage.prompt_tokens for a in alone)
    assert both.usage.completion_tokens == sum(a.usage.completion_tokens for a in alone)


def test_stop(client):
    full = client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", temperature=0, max_tokens=16).choices[0].text
    assert len(full) > 8, full
    stop = full[len(full) // 2:len(full) // 2 + 2]
    r = client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", temperature=0, max_tokens=16, stop=[stop, "never seen"])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == full[:full.index(stop)]
    c = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=0, max_tokens=24, stop=" ")
    assert " " not in c.choices[0].message.content and c.choices[0].finish_reason == "stop"


def test_max_tokens_is_length(client):
    r = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=0, max_completion_tokens=3)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3
    r = client.completions.create(model=MODEL, prompt="Once upon a time", temperature=0, max_tokens=2)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 2


def test_n_and_logprobs(client):
    r = client.completions.create(model=MODEL, prompt="My favourite fruit is", temperature=0.9, seed=5, n=2, max_tokens=6)
    assert [c.index for c in r.choices] == [0, 1]
    assert 2 <= r.usage.completion_tokens <= 12
    c = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=0, max_tokens=5, logprobs=True, top_logprobs=2)
    content = c.choices[0].logprobs.content
    assert len(content) == c.usage.completion_tokens
    for t in content:
        assert len(t.top_logprobs) == 2 and t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob
        assert t.token == t.top_logprobs[0].token and t.logprob == t.top_logprobs[0].logprob  # greedy: the top token


def test_errors(client):
    with pytest.raises(openai.BadRequestError, match="temperature must be in"):
        client.chat.completions.create(model=MODEL, messages=CHAT, temperature=5)
    with pytest.raises(openai.BadRequestError, match="tools=.* is not supported") as e:
        client.chat.completions.create(model=MODEL, messages=CHAT, tools=[{"type": "function", "function": {"name": "f"}}])
    assert e.value.body["param"] == "tools" and e.value.body["code"] == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError, match="n must be 1 with greedy sampling"):  # the backend's refusal
        client.completions.create(model=MODEL, prompt="x", n=2, temperature=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=CHAT)
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: bogus"):
        client.chat.completions.create(model=MODEL, messages=CHAT, extra_body={"bogus": 1})


def test_client_leaving_cancels(client, server):
    before = server.log().count("request cancelled after")
    stream = client.chat.completions.create(model=MODEL, messages=CHAT, temperature=0, max_tokens=400, stream=True,
                                            extra_body={"ignore_eos": True})
    seen = 0
    for chunk in stream:
        seen += bool(chunk.choices and chunk.choices[0].delta.content)
        if seen == 3:
            break
    stream.close()
    deadline = time.monotonic() + 20
    while server.log().count("request cancelled after") == before:
        assert time.monotonic() < deadline, "Triton never cancelled the request:\n" + server.log()[-3000:]
        time.sleep(0.2)
