"""Our model service (validation, prediction log, metrics) against a bare FastAPI app and against MLServer, serving the same pipeline, in one run.

The model is the design lesson's simple model, trained on the case study's first half-year and registered with a decision
threshold. Three servers run side by side, each in its own process tree:

- ours: `mlops_kit.deployment.create_app`, logging every request to a SQLite prediction log before it answers; measured on
  `/predict` (JSON records) and on the Open Inference Protocol's `/v2/models/churn/infer` (V2 columnar tensors); with one
  scoring process (`ServiceSettings(scoring_processes=1)`: batches of 100 rows or more are scored in a worker process
  while the server reads the next request), as MLServer's default of one inference worker; --scoring-processes changes it;
- bare: one idiomatic FastAPI route, `async def` like ours, that takes the same JSON records, builds a DataFrame and
  calls `predict_proba`; no schema checks, no log, no metrics;
- mlserver: MLServer 1.7 with mlserver-sklearn, serving the same registered version saved with joblib (the form
  mlserver-sklearn loads), on `/v2/models/churn/infer` with the same V2 bodies as ours. It logs no inputs or outputs.

MLServer runs in its own virtual environment, made on first use in the system's temporary folder and reused: `python -m
venv` with this interpreter, then `pip install` of MLSERVER_PINS and of this environment's own scikit-learn, numpy,
pandas and joblib (the model file is a pickle) and httptools (the same HTTP parser). uvloop is pinned to 0.21: MLServer
does not pin it, and under uvloop 0.22-0.23 its default inference worker process cannot start (`asyncio.get_event_loop()`
raises in the child). With that pin MLServer keeps its defaults: one inference worker process (`parallel_workers: 1`, so
the model is scored in a child process; --mlserver-workers changes it), models loaded from the repository at startup
(`load_models_at_startup`), its Prometheus metrics recorded per request and served on their own port (ours records
per-request metrics too), its gRPC server listening unused. Changed from its defaults, to match ours: `gzip_enabled:
false` (ours compresses no response; the client accepts gzip), `debug: false` (no access log), loggers at WARNING.
Equal settings on both sides: 127.0.0.1, uvicorn with httptools (set for ours and bare; MLServer's uvicorn picks
httptools when installed) and uvloop (uvicorn's and MLServer's default), no access log, log level warning.

A separate client process (httpx, keep-alive, a fixed number of concurrent connections) sends identical request
bodies, real case-study rows from the months after training: single rows (8 connections) and 1,000-row batches
(2 connections); the records bodies to `/predict`, the V2 bodies (one tensor per column: BYTES for text with
`content_type: str`, BOOL, INT64 and FP64; `content_type: pd` on the request, so that MLServer builds a DataFrame;
only the `predict_proba` output asked for) to both `/v2/.../infer`. Before measuring, every server's probabilities on
every 1,000-row body are checked against the pipeline's own (within 1e-9); a difference stops the run. The servers are
measured alternately, for --rounds rounds after a discarded warm-up round; server CPU per request is read from /proc for
each server's whole process tree. Printed: p50 and p99 latency, throughput and server CPU of each; ours / bare on
`/predict` (target: at most 1.15x at p50 and 1.3x at p99, both sizes); ours on `/predict` and on V2 / MLServer on V2
(target: at most 1.0x its p50 and at least 1.0x its throughput, both sizes); and the floor, the pipeline's own
`predict_proba` on a prepared DataFrame.

    python bench/serving.py [--rounds 5] [--seconds 5] [--servers ours,bare,mlserver] [--mlserver-workers N] [--scoring-processes N]
"""
import argparse, asyncio, contextlib, json, os, platform, signal, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HOST = "127.0.0.1"
MODEL = "churn"
SIZES = {1: 8, 1000: 2} # rows per request -> concurrent connections
SERVERS = ["ours", "bare", "mlserver"]
ENDPOINTS = {"ours": ["predict", "v2"], "bare": ["predict"], "mlserver": ["v2"]} # what each server is measured on
PATHS = {"predict": "/predict", "v2": f"/v2/models/{MODEL}/infer"}
TARGETS = {"p50": 1.15, "p99": 1.3} # ours / bare on /predict, at most
MLSERVER_TARGETS = {"p50": 1.0, "throughput": 1.0} # ours / MLServer on V2: p50 at most, throughput at least
MLSERVER_ENV = "mlops-kit-mlserver-env"
MLSERVER_PINS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"]
SHARED_PACKAGES = ["scikit-learn", "numpy", "pandas", "joblib", "httptools"] # installed in MLServer's environment at our versions
TOLERANCE = 1e-9 # largest difference allowed between a server's probabilities and the pipeline's
# MLServer's loggers (and its uvicorn's) at WARNING, as ours run: nothing is written per request
MLSERVER_LOGGING = {"version": 1, "disable_existing_loggers": False,
                    "loggers": {name: {"level": "WARNING"} for name in ["mlserver", "uvicorn", "uvicorn.error", "uvicorn.access"]}}


# ---- ours and bare, each run in its own process by `--serve`

def bare_app(registry_folder):
    "The peer: one FastAPI route that builds a DataFrame from the records and calls `predict_proba`; nothing else"
    from typing import Any
    import pandas as pd
    from fastapi import FastAPI
    from pydantic import BaseModel
    from mlops_kit.development import ModelRegistry
    pipeline = ModelRegistry(registry_folder).load(MODEL).pipeline

    class PredictRequest(BaseModel):
        records: list[dict[str, Any]]

    app = FastAPI()

    @app.post("/predict")
    async def predict(body: PredictRequest):
        probabilities = pipeline.predict_proba(pd.DataFrame(body.records))
        return {"probabilities": probabilities[:, 1].tolist()}

    return app


def serve(which: str, port: int, registry_folder: str, log: str, scoring_processes: int = 0):
    "Run `which` server on `port` until killed; both servers get the same uvicorn settings"
    import uvicorn
    if which == "ours":
        from mlops_kit.deployment import ServiceSettings, create_app
        app = create_app(registry_folder, name=MODEL, log=log, settings=ServiceSettings(scoring_processes=scoring_processes))
    else:
        app = bare_app(registry_folder)
    uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, http="httptools", log_level="warning", access_log=False)).run()


# ---- MLServer, in its own virtual environment

def mlserver_requirements() -> list:
    "MLServer's pins, and this environment's versions of the packages the model file and the HTTP parser need"
    from importlib.metadata import version
    return MLSERVER_PINS + [f"{name}=={version(name)}" for name in SHARED_PACKAGES]


# run by MLServer's python with the requirements as arguments: exits 1 unless each is installed at its version
VERSIONS_CHECK = ("import sys\nfrom importlib.metadata import version, PackageNotFoundError\n"
                  "def installed(name):\n    try: return version(name)\n    except PackageNotFoundError: return None\n"
                  "sys.exit(any(installed(name) != wanted for name, wanted in (pin.split('==') for pin in sys.argv[1:])))")


def mlserver_python() -> Path:
    "The python of MLServer's environment, made on first use in the system's temporary folder and reused while its versions hold"
    env = Path(tempfile.gettempdir()) / MLSERVER_ENV
    python = env / "bin" / "python"
    requirements = mlserver_requirements()
    check = [str(python), "-c", VERSIONS_CHECK, *requirements]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0: return python
    print(f"Making MLServer's environment in {env} ({' '.join(requirements)}); this takes a few minutes the first time", flush=True)
    if not python.exists(): subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements], check=True)
    if subprocess.run(check).returncode != 0: raise RuntimeError(f"MLServer's environment in {env} does not hold {requirements}: delete it and run again")
    return python


def write_mlserver_repository(folder: Path, pipeline, version: int, ports: dict, workers: int | None) -> Path:
    "MLServer's settings and a model repository holding `pipeline` as mlserver-sklearn loads it (joblib); `workers` None: MLServer's default"
    import joblib
    model_folder = folder / MODEL
    model_folder.mkdir(parents=True)
    joblib.dump(pipeline, model_folder / "model.joblib")
    model_settings = dict(name=MODEL, implementation="mlserver_sklearn.SKLearnModel", parameters=dict(uri="./model.joblib", version=str(version)))
    (model_folder / "model-settings.json").write_text(json.dumps(model_settings))
    settings = dict(host=HOST, http_port=ports["http"], grpc_port=ports["grpc"], metrics_port=ports["metrics"], debug=False, gzip_enabled=False,
                    logging_settings=MLSERVER_LOGGING, load_models_at_startup=True, model_repository_root=str(folder))
    if workers is not None: settings["parallel_workers"] = workers
    (folder / "settings.json").write_text(json.dumps(settings, indent=1))
    return folder


def start_mlserver(python: Path, folder: Path, first_body: bytes, timeout: float = 180):
    "MLServer serving the repository in `folder`, once it answers a V2 inference; its output goes to a file shown if it fails"
    output = open(folder / "mlserver.out", "wb")
    process = subprocess.Popen([str(python.parent / "mlserver"), "start", str(folder)], cwd=folder, stdout=output, stderr=subprocess.STDOUT,
                               start_new_session=True)
    port = json.loads((folder / "settings.json").read_text())["http_port"]
    try: return process, wait_until_ready("mlserver", process, f"http://{HOST}:{port}", PATHS["v2"], first_body, timeout)
    except RuntimeError as error:
        stop(process)
        raise RuntimeError(f"{error}; its output:\n{(folder / 'mlserver.out').read_text()[-3000:]}") from None
    finally: output.close()


def mlserver_versions(python: Path) -> str:
    "The versions of MLServer's main packages in its environment"
    script = "import sys\nfrom importlib.metadata import version\nprint(', '.join(f'{name} {version(name)}' for name in sys.argv[1:]))"
    names = ["mlserver", "mlserver-sklearn", "uvloop", "uvicorn", "fastapi", "pydantic"]
    return subprocess.run([str(python), "-c", script, *names], capture_output=True, text=True, check=True).stdout.strip()


# ---- the load generator, run in its own process by `--load`

async def generate_load(url: str, bodies: list, concurrency: int, seconds: float, path: str = "/predict") -> dict:
    "Send `bodies` in turn to `path` from `concurrency` keep-alive connections for `seconds`; each request's latency in ms"
    import httpx
    latencies, errors = [], 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        deadline = time.perf_counter() + seconds

        async def connection(start: int):
            nonlocal errors
            position = start
            while time.perf_counter() < deadline:
                body = bodies[position % len(bodies)]
                position += concurrency
                sent = time.perf_counter()
                response = await client.post(path, content=body, headers={"content-type": "application/json"})
                latencies.append((time.perf_counter() - sent) * 1000)
                if response.status_code != 200: errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(connection(start) for start in range(concurrency)))
        elapsed = time.perf_counter() - started
    return dict(latencies_ms=latencies, seconds=elapsed, errors=errors)


def run_load(url: str, bodies_file: str, concurrency: int, seconds: float, path: str = "/predict"):
    bodies = [line.encode() for line in Path(bodies_file).read_text().splitlines()]
    print(json.dumps(asyncio.run(generate_load(url, bodies, concurrency, seconds, path))))


# ---- the benchmark, run by default

def train_and_register(folder: Path):
    "The design lesson's simple model on the first half-year, registered and promoted; the rows of the next months"
    from mlops_kit.design import simple_model
    from mlops_kit.data import load_case_study
    from mlops_kit.lifecycle import Criteria
    from mlops_kit.development import ModelRegistry
    clean = load_case_study(seed=42).clean_sample()
    train = clean.between(end="2024-07-01")
    model = simple_model(train.categorical, train.numerical).fit(train.X, train.y)
    registry = ModelRegistry(folder)
    version = registry.register(model, train, Criteria("recall >= 0.6", ["precision >= 0.2"]), {"recall": 0.7, "precision": 0.3},
                                name=MODEL, threshold=0.2, seed=0)
    registry.promote(MODEL, version.version)
    return registry, clean.between(start="2024-07-01").X


def json_values(column) -> list:
    "A column's values ready for JSON: missing values as None, numpy scalars as Python values"
    return column.astype(object).where(column.notna(), None).tolist()


def json_records(frame) -> list:
    "JSON-ready records of `frame`: missing values as None, numpy scalars as Python values"
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def v2_datatype(column) -> str:
    "The Open Inference Protocol datatype of a column: BOOL, INT64 for whole numbers, FP64 for floats, BYTES for text"
    import pandas as pd
    if pd.api.types.is_bool_dtype(column): return "BOOL"
    if pd.api.types.is_integer_dtype(column): return "INT64"
    if pd.api.types.is_float_dtype(column): return "FP64"
    return "BYTES"


def v2_body(frame) -> dict:
    "A V2 inference request for `frame`'s rows: one tensor of shape [rows] per column, decoded by MLServer into a DataFrame; asks for `predict_proba`"
    inputs = []
    for name in frame.columns:
        tensor = dict(name=name, datatype=v2_datatype(frame[name]), shape=[len(frame)], data=json_values(frame[name]))
        if tensor["datatype"] == "BYTES": tensor["parameters"] = {"content_type": "str"} # MLServer: decode as text, not bytes
        inputs.append(tensor)
    return {"parameters": {"content_type": "pd"}, "inputs": inputs, "outputs": [{"name": "predict_proba"}]}


def write_bodies(folder: Path, frame, rows: int, endpoint: str = "predict") -> Path:
    "Request bodies of `rows` rows each for `endpoint` ('predict': records, 'v2': tensors), one JSON document a line, cycling through `frame`'s rows"
    starts = range(0, len(frame) - rows + 1, rows)
    if endpoint == "predict":
        records = json_records(frame)
        bodies = [json.dumps({"records": records[start:start + rows]}) for start in starts]
    else: bodies = [json.dumps(v2_body(frame.iloc[start:start + rows])) for start in starts]
    path = folder / (f"bodies-{rows}.jsonl" if endpoint == "predict" else f"bodies-{endpoint}-{rows}.jsonl")
    path.write_text("\n".join(bodies))
    return path


def floor_ms(pipeline, frame, rows: int, repeats: int) -> float:
    "Median milliseconds of `pipeline.predict_proba` on a prepared DataFrame of `rows` rows"
    prepared = frame.head(rows).copy()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        pipeline.predict_proba(prepared)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def free_port() -> int:
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        return listener.getsockname()[1]


def still_loading(response) -> bool:
    "Whether an answer says the model is still loading: ours answers 503, MLServer 400 'Model churn is not ready yet.' or 404"
    return response.status_code in (503, 404) or response.status_code == 400 and "not ready" in response.text


def wait_until_ready(which: str, process, url: str, path: str, body: bytes, timeout: float) -> str:
    "`url` once the server answers `body` on `path` with 200; raises RuntimeError if it exits, fails or is not ready within `timeout` s"
    import httpx
    deadline, last = time.monotonic() + timeout, "no answer"
    while True:
        if process.poll() is not None: raise RuntimeError(f"The {which} server exited with status {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            response = httpx.post(url + path, content=body, headers={"content-type": "application/json"}, timeout=10)
            if response.status_code == 200: return url
            last = f"{response.status_code}: {response.text[:300]}"
            if not still_loading(response): raise RuntimeError(f"The {which} server answered {last}")
        if time.monotonic() > deadline: raise RuntimeError(f"The {which} server was not ready after {timeout:g} s (last answer {last})")
        time.sleep(0.2)


def start_server(which: str, registry_folder: Path, log: Path, first_body: bytes, scoring_processes: int = 0, timeout: float = 120):
    "A server process for `which` ('ours' or 'bare'), once it answers a /predict"
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", which, "--port", str(port), "--registry", str(registry_folder),
                                "--log", str(log), "--scoring-processes", str(scoring_processes)], start_new_session=True)
    try: return process, wait_until_ready(which, process, f"http://{HOST}:{port}", PATHS["predict"], first_body, timeout)
    except RuntimeError:
        stop(process)
        raise


def stop(process):
    with contextlib.suppress(ProcessLookupError): os.killpg(process.pid, signal.SIGTERM)
    try: process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError): os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cpu_seconds(process) -> float:
    "CPU seconds (user and system, every thread) that `process` and its descendants have used so far, from /proc; NaN where there is no /proc"
    parents, used = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try: fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError: continue # the process ended meanwhile
        pid = int(stat.parent.name)
        parents[pid], used[pid] = int(fields[1]), int(fields[11]) + int(fields[12])
    if process.pid not in used: return float("nan")
    tree, pending = [], [process.pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending += [child for child, parent in parents.items() if parent == pid]
    return sum(used[pid] for pid in tree) / os.sysconf("SC_CLK_TCK")


def measure(url: str, server, bodies: Path, concurrency: int, seconds: float, path: str = "/predict") -> dict:
    "One load run on `path` from a separate client process, with the CPU time of the server's process tree during it"
    cpu_before = cpu_seconds(server)
    output = subprocess.run([sys.executable, __file__, "--load", url, "--bodies", str(bodies), "--concurrency", str(concurrency),
                             "--seconds", str(seconds), "--path", path], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(output), server_cpu=cpu_seconds(server) - cpu_before)


def answered_probabilities(answer: dict, endpoint: str, which: str):
    "The class probabilities in a server's `answer`, one row per case (bare answers only the positive class's)"
    import numpy as np
    if endpoint == "v2":
        tensor = next(output for output in answer["outputs"] if output["name"] == "predict_proba")
        return np.array(tensor["data"], dtype=float).reshape(tensor["shape"])
    if which == "bare": return np.array(answer["probabilities"], dtype=float)
    return np.array(answer["class_probabilities"], dtype=float)


def check_outputs(urls: dict, bodies: dict, pipeline, frame, rows: int):
    "Raise RuntimeError unless every server's probabilities on every `rows`-row body equal the pipeline's within TOLERANCE"
    import httpx, numpy as np
    for which, url in urls.items():
        for endpoint in ENDPOINTS[which]:
            for number, body in enumerate(bodies[endpoint, rows].read_text().splitlines()):
                response = httpx.post(url + PATHS[endpoint], content=body, headers={"content-type": "application/json"}, timeout=60)
                if response.status_code != 200: raise RuntimeError(f"{which} {PATHS[endpoint]} answered {response.status_code}: {response.text[:300]}")
                expected = pipeline.predict_proba(frame.iloc[number * rows:(number + 1) * rows])
                answered = answered_probabilities(response.json(), endpoint, which)
                if which == "bare": expected = expected[:, 1]
                if answered.shape != expected.shape or not np.allclose(answered, expected, rtol=0, atol=TOLERANCE):
                    difference = np.abs(answered - expected).max() if answered.shape == expected.shape else f"shape {answered.shape} for {expected.shape}"
                    raise RuntimeError(f"{which} {PATHS[endpoint]} does not answer the pipeline's probabilities on body {number} "
                                       f"(largest difference {difference}, allowed {TOLERANCE}): the servers do not serve the same model")


def percentile(values: list, share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(runs: list) -> dict:
    "p50 and p99 over every request of `runs`, requests per second, server CPU ms per request, each run's p50, the errors"
    latencies = [latency for run in runs for latency in run["latencies_ms"]]
    return dict(p50=percentile(latencies, 0.5), p99=percentile(latencies, 0.99), requests=len(latencies),
                per_second=len(latencies) / sum(run["seconds"] for run in runs),
                cpu_ms=sum(run["server_cpu"] for run in runs) / len(latencies) * 1000,
                round_p50=[statistics.median(run["latencies_ms"]) for run in runs], errors=sum(run["errors"] for run in runs))


def machine() -> str:
    import fastapi, pydantic, sklearn, uvicorn, httpx, pandas
    versions = ", ".join(f"{module.__name__} {module.__version__}" for module in [fastapi, pydantic, uvicorn, httpx, sklearn, pandas])
    return f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions}; load average {os.getloadavg()[0]:.2f}"


def check_http_and_loop(which: str, process):
    "Raise RuntimeError unless the server's process has httptools and uvloop loaded (read from /proc; skipped where there is none)"
    try: maps = Path(f"/proc/{process.pid}/maps").read_text()
    except OSError: return
    missing = [module for module in ("httptools", "uvloop") if f"/{module}/" not in maps]
    if missing: raise RuntimeError(f"The {which} server runs without {' and '.join(missing)}: the servers' HTTP stacks differ; install them in its environment")


def start_servers(servers: list, scratch: Path, bodies: dict, handle, processes: list, workers: int | None, scoring_processes: int) -> tuple:
    "Each of `servers` started and ready, its process added to `processes`; their processes and urls by name"
    urls, started = {}, {}
    for which in servers:
        if which == "mlserver":
            python = mlserver_python()
            print(f"MLServer: {mlserver_versions(python)}; parallel_workers {'1 (its default)' if workers is None else workers}", flush=True)
            ports = dict(http=free_port(), grpc=free_port(), metrics=free_port())
            folder = write_mlserver_repository(scratch / "mlserver", handle.pipeline, handle.version, ports, workers)
            started[which], urls[which] = start_mlserver(python, folder, first_body(bodies["v2", 1]))
        else:
            started[which], urls[which] = start_server(which, scratch / "models", scratch / "predictions.db", first_body(bodies["predict", 1]),
                                                       scoring_processes if which == "ours" else 0)
        processes.append(started[which])
        check_http_and_loop(which, started[which])
    return started, urls


def first_body(path: Path) -> bytes:
    return path.read_text().split("\n", 1)[0].encode()


def main(args):
    import warnings
    warnings.filterwarnings("ignore")
    print(machine())
    servers = [which for which in SERVERS if which in args.servers]
    measured = [(which, endpoint) for which in servers for endpoint in ENDPOINTS[which]]
    processes = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        try:
            registry, later = train_and_register(scratch / "models")
            handle = registry.load(MODEL)
            bodies = {(endpoint, rows): write_bodies(scratch, later, rows, endpoint) for endpoint in PATHS for rows in SIZES}
            floors = {rows: floor_ms(handle.pipeline, later, rows, repeats=200 if rows == 1 else 50) for rows in SIZES}
            started, urls = start_servers(servers, scratch, bodies, handle, processes, args.mlserver_workers, args.scoring_processes)
            check_outputs(urls, bodies, handle.pipeline, later, max(SIZES))
            print(f"{len(later):,} case-study rows from the months after training, model {MODEL} v{handle.version}; every server's probabilities "
                  f"equal the pipeline's within {TOLERANCE:g}; {HOST}, uvicorn with httptools, log level warning, no access log, no response "
                  f"compression; ours with {args.scoring_processes} scoring process(es) for batches of 100 rows or more; {args.rounds} rounds of {args.seconds:g} s per server, endpoint and size after a warm-up round")
            runs = {(which, endpoint, rows): [] for which, endpoint in measured for rows in SIZES}
            for round_number in range(args.rounds + 1):
                for rows, concurrency in SIZES.items():
                    for which, endpoint in measured if round_number % 2 == 0 else measured[::-1]:
                        run = measure(urls[which], started[which], bodies[endpoint, rows], concurrency, args.seconds, PATHS[endpoint])
                        if round_number > 0: runs[which, endpoint, rows].append(run)
            log_rows = sqlite_requests(scratch / "predictions.db") if "ours" in servers else None
        finally:
            for process in processes: stop(process)
    report(runs, floors, log_rows)


def sqlite_requests(path: Path) -> int:
    import sqlite3
    with contextlib.closing(sqlite3.connect(path)) as connection: return connection.execute("SELECT COUNT(*) FROM requests").fetchone()[0]


def print_table(results: dict):
    print("| rows/request | connections | server | endpoint | p50 ms | p99 ms | requests/s | rows/s | server CPU ms/request | requests | errors |")
    print("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for rows, concurrency in SIZES.items():
        for (which, endpoint, size), result in results.items():
            if size != rows: continue
            print(f"| {rows:,} | {concurrency} | {which} | {PATHS[endpoint]} | {result['p50']:.2f} | {result['p99']:.2f} | {result['per_second']:.1f} | "
                  f"{result['per_second'] * rows:,.0f} | {result['cpu_ms']:.2f} | {result['requests']:,} | {result['errors']} |")


def ratios(mine: dict, theirs: dict) -> dict:
    "p50, p99, throughput and server CPU of `mine` / `theirs`, and the range of their per-round p50 ratios"
    rounds = [m / t for m, t in zip(mine["round_p50"], theirs["round_p50"])]
    return dict(p50=mine["p50"] / theirs["p50"], p99=mine["p99"] / theirs["p99"], throughput=mine["per_second"] / theirs["per_second"],
                cpu=mine["cpu_ms"] / theirs["cpu_ms"], rounds=f"{min(rounds):.2f}-{max(rounds):.2f}")


def compare_bare(results: dict, rows: int) -> bool:
    "Print ours / bare on /predict at `rows` rows a request; whether it meets TARGETS"
    ours, bare = results["ours", "predict", rows], results["bare", "predict", rows]
    ratio = ratios(ours, bare)
    passed = all(ratio[name] <= TARGETS[name] for name in TARGETS) and ours["errors"] == bare["errors"] == 0
    print(f"{rows:,} row(s): ours / bare p50 {ratio['p50']:.2f}x (target <= {TARGETS['p50']}), p99 {ratio['p99']:.2f}x "
          f"(target <= {TARGETS['p99']}), throughput {ratio['throughput']:.2f}x, server CPU per request {ratio['cpu']:.2f}x; "
          f"per-round p50 ratio {ratio['rounds']}: {'PASS' if passed else 'MISS'}")
    return passed


def compare_mlserver(results: dict, rows: int, endpoint: str) -> bool:
    "Print ours on `endpoint` / MLServer on V2 at `rows` rows a request; whether it meets MLSERVER_TARGETS"
    ours, theirs = results["ours", endpoint, rows], results["mlserver", "v2", rows]
    ratio = ratios(ours, theirs)
    passed = (ratio["p50"] <= MLSERVER_TARGETS["p50"] and ratio["throughput"] >= MLSERVER_TARGETS["throughput"]
              and ours["errors"] == theirs["errors"] == 0)
    print(f"{rows:,} row(s): ours {PATHS[endpoint]} / MLServer V2 p50 {ratio['p50']:.2f}x (target <= {MLSERVER_TARGETS['p50']}), "
          f"throughput {ratio['throughput']:.2f}x (target >= {MLSERVER_TARGETS['throughput']}), p99 {ratio['p99']:.2f}x, "
          f"server CPU per request {ratio['cpu']:.2f}x; per-round p50 ratio {ratio['rounds']}: {'PASS' if passed else 'MISS'}")
    return passed


def report(runs: dict, floors: dict, log_rows: int | None):
    results = {key: summary(value) for key, value in runs.items()}
    print_table(results)
    verdicts = []
    for rows in SIZES:
        if ("bare", "predict", rows) in results and ("ours", "predict", rows) in results: verdicts.append(compare_bare(results, rows))
        if ("mlserver", "v2", rows) in results and ("ours", "predict", rows) in results:
            verdicts += [compare_mlserver(results, rows, endpoint) for endpoint in ENDPOINTS["ours"]]
        floor = ", ".join(f"{floors[rows] / result['p50']:.2f} of {which} {PATHS[endpoint]} p50"
                          for (which, endpoint, size), result in results.items() if size == rows)
        print(f"  floor: predict_proba on a prepared {rows:,}-row DataFrame {floors[rows]:.2f} ms = {floor}")
    if log_rows is not None: print(f"prediction log: {log_rows:,} requests committed (checks and warm-up included)")
    if verdicts: print("PASS" if all(verdicts) else "MISS")


def server_list(text: str) -> list:
    "'ours,mlserver' -> ['ours', 'mlserver']; raises argparse's error for an unknown name"
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown or not names: raise argparse.ArgumentTypeError(f"unknown server(s) {unknown}: choose among {','.join(SERVERS)}")
    return names


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per server, endpoint and size, after a warm-up round (5)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds of load per round, server, endpoint and size (5)")
    parser.add_argument("--servers", type=server_list, default=SERVERS, help=f"the servers to run, comma-separated ({','.join(SERVERS)})")
    parser.add_argument("--mlserver-workers", type=int, default=None, help="MLServer's parallel_workers (its default, 1; 0: score in the server's process)")
    parser.add_argument("--scoring-processes", type=int, default=1,
                        help="ours: scoring processes for batches of 100 rows or more (1, as MLServer's default of one inference worker; 0: none)")
    parser.add_argument("--serve", choices=["ours", "bare"], help=argparse.SUPPRESS) # internal: run one server
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--registry", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS) # internal: run the load generator
    parser.add_argument("--bodies", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/predict", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve: serve(arguments.serve, arguments.port, arguments.registry, arguments.log, arguments.scoring_processes)
    elif arguments.load: run_load(arguments.load, arguments.bodies, arguments.concurrency, arguments.seconds, arguments.path)
    else: main(arguments)
