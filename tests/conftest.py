"""Shared fixtures and the test tiers.

Tier 1 runs anywhere the project is installed. Tier 2 needs a service that a learner's laptop may lack
(a PostgreSQL server, a Chromium browser). Tier-2 tests ask for the service through a fixture below: without
it they are *skipped* with the reason, unless `MLOPS_KIT_REQUIRE_SERVICES=1` is set (as `.ci/run` does), in
which case the missing service is a *failure*: CI always runs every tier.
"""
import contextlib, hashlib, os, shutil, signal, socket, subprocess, sys, time, uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES_VARIABLE = "MLOPS_KIT_REQUIRE_SERVICES"
POSTGRES_URL_VARIABLE = "MLOPS_KIT_POSTGRES_URL"
CHROMIUM_VARIABLE = "MLOPS_KIT_CHROMIUM"


def services_required() -> bool:
    "True when a missing service must fail the test run instead of skipping (CI)"
    return os.environ.get(REQUIRE_SERVICES_VARIABLE, "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str):
    "Skip the current test for `reason`, or fail it when services are required"
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_SERVICES_VARIABLE} is set, so this test must run)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    "A free TCP port on the loopback interface"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def library_module_files() -> dict:
    "Every generated module of the library as {dotted name: file}, packages' __init__ under the package's name"
    files = {}
    for path in sorted((REPO_ROOT / "mlops_kit").rglob("*.py")):
        if path.name == "_modidx.py" or ".ipynb_checkpoints" in path.parts: continue
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


MLOPS_KIT_COMMAND = str(Path(sys.executable).parent / "mlops-kit")  # the console script of the installed package


def file_hash(path) -> str:
    "sha256 of the file's bytes: equal before and after a refused call means nothing saved changed"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def folder_hashes(folder) -> dict:
    "sha256 of every file under `folder`"
    return {str(path.relative_to(folder)): file_hash(path) for path in sorted(Path(folder).rglob("*")) if path.is_file()}


@contextlib.contextmanager
def serve_command(*arguments, env=None):
    "`mlops-kit serve` in a child process on a free port; its URL and the process, stopped afterwards"
    port = free_port()
    process = subprocess.Popen([MLOPS_KIT_COMMAND, "serve", "--port", str(port), *map(str, arguments)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try: yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        try: process.wait(timeout=30)
        except subprocess.TimeoutExpired: process.kill()
        process.stdout.close()


def wait_until_ready(url: str, process, name: str, timeout: float = 90) -> dict:
    "Poll a server started by a command until its model `name` is ready; its model metadata (fails if the process ends first)"
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return httpx.get(f"{url}/v2/models/{name}", timeout=5).json()
        except httpx.TransportError: pass
        time.sleep(0.2)
    raise AssertionError(f"{url} was not ready after {timeout} s")


def triton_float_inputs(frame) -> list:
    "One tritonclient input per column of `frame`, FP64 in JSON (not binary): how a Triton user sends numeric features"
    import numpy as np
    import tritonclient.http as triton_http
    inputs = []
    for name in frame.columns:
        tensor = triton_http.InferInput(name, [len(frame)], "FP64")
        tensor.set_data_from_numpy(frame[name].to_numpy(np.float64), binary_data=False)
        inputs.append(tensor)
    return inputs


@pytest.fixture(scope="module")
def wine():
    "The wine data (multiclass, classes 0/1/2)"
    from mlops_kit.data import load_real_dataset
    return load_real_dataset("wine")


@pytest.fixture(scope="module")
def diabetes():
    "The diabetes data (regression)"
    from mlops_kit.data import load_real_dataset
    return load_real_dataset("diabetes")


@pytest.fixture(scope="module")
def cancer():
    "The breast cancer data (binary, 0/1)"
    from mlops_kit.data import load_real_dataset
    return load_real_dataset("breast_cancer")


@pytest.fixture(scope="session")
def case():
    "The course's case study (seed 42), loaded once per test process; tests must not modify it"
    from mlops_kit.data import load_case_study
    return load_case_study(seed=42)


REFERENCE_END = "2024-07-01"  # monitoring's reference is the case study's first six months, 2024-01 to 2024-06


@pytest.fixture(scope="session")
def reference(case):
    "The features of the first six months, before any planted problem: what the monitoring tests compare with"
    clean = case.clean_sample()
    return clean.frame.loc[clean.frame.month < REFERENCE_END, clean.features]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    "Path of a Chromium browser for headless tests (tier 2)"
    candidates = [os.environ.get(CHROMIUM_VARIABLE), shutil.which("chromium"), shutil.which("chromium-browser")]
    found = next((path for path in candidates if path and os.access(path, os.X_OK)), None)
    if found is None:
        skip_or_fail(f"no Chromium browser: install Debian's `chromium` package or set {CHROMIUM_VARIABLE}")
    return found


def _postgres_server_url() -> str:
    return os.environ.get(POSTGRES_URL_VARIABLE, "")


@pytest.fixture
def postgres_url():
    "URL of a fresh, empty PostgreSQL database, dropped after the test (tier 2)"
    server_url = _postgres_server_url()
    if not server_url:
        skip_or_fail(f"no PostgreSQL server: set {POSTGRES_URL_VARIABLE}=postgresql://user:password@host:port/dbname")
    try:
        import psycopg
    except ImportError:
        skip_or_fail("psycopg is not installed: `pip install -e '.[dev]'`")
    database = f"mlops_kit_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
    except psycopg.OperationalError as error:
        skip_or_fail(f"cannot reach the PostgreSQL server at {POSTGRES_URL_VARIABLE}: {error}")
    yield server_url.rsplit("/", 1)[0] + "/" + database
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def wait_until_serving(url: str, process: subprocess.Popen, log_path: Path, seconds: float = 90):
    "The first 200 answer from `url`; fails the test if `process` exits or nothing answers in time, with its log's tail"
    import httpx
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"nothing answered {url} within {seconds}s:\n{log_path.read_text()[-3000:]}")


def stop_process_group(process: subprocess.Popen):
    "Stop a process started with start_new_session=True and everything it started: politely, then for good"
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
