"""End-to-end fixtures: the real tritonserver with the real libtriton_omnikv.so.

Run with the Triton venv (scripts/fetch-triton.sh makes it):
    .cache/tritonvenv/bin/python -m pytest tests/e2e -q

Environment:
    TRITONSERVER         path of the tritonserver binary (default: the one nvidia-pytriton
                         installed into this interpreter's site-packages)
    TRITON_LD_LIBRARY_PATH  extra library path for it (default: nvidia_pytriton.libs + libpython dir)
    OMNIKV_BACKEND_DIR   a prebuilt backend directory holding omnikv/libtriton_omnikv.so
                         (default: built here with `go build -buildmode=c-shared ./cgo`)
    CI                   when set, a missing server or Go toolchain fails instead of skipping.

Reusable pieces for later models: `triton` (session-scoped launcher; `triton.start([...models])`
gives a running Server on free 127.0.0.1 ports with a temporary model repository), `Server`
(urls, log text, `alive()`, `ready()`, `get_json()`, `stop()`), `model_repository_root`, and
`model_file()` / the `gguf_model` fixture (env OMNIKV_MODEL or .cache/models/...; skip, or fail
under CI, when missing).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_REPOSITORY = REPO_ROOT / "model_repository"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def _missing(what: str) -> None:
    """Fails under CI, skips elsewhere."""
    msg = f"e2e prerequisite missing: {what}"
    if os.environ.get("CI"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _find_tritonserver() -> tuple[Path, str]:
    env = os.environ.get("TRITONSERVER")
    site = Path(sysconfig.get_paths()["purelib"])
    server = Path(env) if env else site / "pytriton" / "tritonserver" / "bin" / "tritonserver"
    if not os.access(server, os.X_OK):
        _missing(f"tritonserver not found at {server}; run scripts/fetch-triton.sh and use .cache/tritonvenv/bin/python")
    ld = os.environ.get("TRITON_LD_LIBRARY_PATH")
    if ld is None:
        ld = os.pathsep.join([str(site / "nvidia_pytriton.libs"), sysconfig.get_config_var("LIBDIR") or ""])
    return server, ld


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Server:
    """One running tritonserver process (its own process group)."""

    def __init__(self, proc: subprocess.Popen, ports: list[int], log_path: Path, repo: Path):
        self.proc = proc
        self.http_port, self.grpc_port, self.metrics_port = ports
        self.log_path = log_path
        self.repo = repo

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.http_url + "/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.http_url + path, timeout=10) as r:
            return json.loads(r.read())

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"tritonserver exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"tritonserver not ready after {timeout}s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL; checks that nothing of the group is left."""
        pgid = self.proc.pid
        if self.alive():
            os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while True:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            if time.monotonic() > deadline:
                os.killpg(pgid, signal.SIGKILL)
                raise RuntimeError(f"processes of group {pgid} outlived tritonserver")
            time.sleep(0.1)


class Launcher:
    """Starts tritonservers with a temporary model repository; stops them all at the end."""

    def __init__(self, server: Path, ld_path: str, backend_dir: Path, tmp: Path):
        self.server, self.ld_path, self.backend_dir, self.tmp = server, ld_path, backend_dir, tmp
        self.running: list[Server] = []

    def start(self, models: list[str], source: Path = MODEL_REPOSITORY, extra_args: tuple[str, ...] = (),
              copy: bool = True) -> Server:
        """Starts a server with the named models of source. copy=True builds a temporary repository
        (files over 1 MiB, such as weights, are symlinked); copy=False serves source itself and
        loads only the named models (explicit model control)."""
        run_dir = self.tmp / f"server{len(self.running)}"
        run_dir.mkdir(parents=True)
        if copy:
            repo = run_dir / "models"
            repo.mkdir()
            for m in models:
                shutil.copytree(source / m, repo / m, copy_function=_copy_or_link)
        else:
            repo = source
            extra_args = ("--model-control-mode=explicit", *(f"--load-model={m}" for m in models), *extra_args)
        ports = _free_ports(3)
        log_path = run_dir / "tritonserver.log"
        args = [
            str(self.server),
            f"--model-repository={repo}",
            f"--backend-directory={self.backend_dir}",
            "--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1",
            f"--http-port={ports[0]}", f"--grpc-port={ports[1]}", f"--metrics-port={ports[2]}",
            "--pinned-memory-pool-byte-size=0",
            "--exit-timeout-secs=10",
            *extra_args,
        ]
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [self.ld_path, env.get("LD_LIBRARY_PATH", "")] if p)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        srv = Server(proc, ports, log_path, repo)
        self.running.append(srv)
        srv.wait_ready()
        return srv

    def stop_all(self) -> None:
        errors = []
        for srv in self.running:
            try:
                srv.stop()
            except Exception as e:  # keep stopping the others
                errors.append(e)
        if errors:
            raise errors[0]


def _copy_or_link(src: str, dst: str) -> None:
    if os.path.getsize(src) > 1 << 20:
        os.symlink(os.path.abspath(src), dst)
    else:
        shutil.copy2(src, dst)


def model_file() -> Path:
    """The default GGUF model (env OMNIKV_MODEL, else .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf);
    skips the test when it is missing, fails under CI."""
    p = Path(os.environ.get("OMNIKV_MODEL") or REPO_ROOT / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not p.is_file():
        _missing(f"model file {p} (set OMNIKV_MODEL or run the setup script)")
    return p


def _build_backend(out: Path) -> Path:
    env_dir = os.environ.get("OMNIKV_BACKEND_DIR")
    if env_dir:
        lib = Path(env_dir) / "omnikv" / "libtriton_omnikv.so"
        if not lib.exists():
            pytest.fail(f"OMNIKV_BACKEND_DIR={env_dir} has no omnikv/libtriton_omnikv.so", pytrace=False)
        return Path(env_dir)
    go = shutil.which("go")
    if go is None:
        _missing("the Go toolchain (to build libtriton_omnikv.so); or set OMNIKV_BACKEND_DIR")
    lib = out / "omnikv" / "libtriton_omnikv.so"
    lib.parent.mkdir(parents=True)
    cmd = [go, "build", "-buildmode=c-shared", "-o", str(lib),
           "-ldflags", f"-extldflags -Wl,--version-script={REPO_ROOT / 'cgo' / 'exports.map'}", "./cgo"]
    r = subprocess.run(cmd, cwd=REPO_ROOT, env={**os.environ, "CGO_ENABLED": "1"}, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"building the backend failed:\n{r.stdout}{r.stderr}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def model_repository_root() -> Path:
    return MODEL_REPOSITORY


@pytest.fixture(scope="session")
def gguf_model() -> Path:
    return model_file()


@pytest.fixture(scope="session")
def backend_dir(tmp_path_factory) -> Path:
    return _build_backend(tmp_path_factory.mktemp("backends"))


@pytest.fixture(scope="session")
def triton(tmp_path_factory, backend_dir):
    server, ld = _find_tritonserver()
    launcher = Launcher(server, ld, backend_dir, tmp_path_factory.mktemp("triton"))
    yield launcher
    launcher.stop_all()
