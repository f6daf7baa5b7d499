"""Our model service (validation, prediction log, metrics) against a bare FastAPI app serving the same pipeline, in one run.

The model is the design lesson's simple model, trained on the case study's first half-year and registered with a decision
threshold. Two servers run side by side, each in its own process under identical uvicorn settings:

- ours: `mlops_kit.deployment.create_app`, logging every request to a SQLite prediction log before it answers;
- bare: one idiomatic FastAPI route, `async def` like ours, that takes the same JSON records, builds a DataFrame and
  calls `predict_proba`; no schema checks, no log, no metrics.

A separate client process (httpx, keep-alive, a fixed number of concurrent connections) sends the identical request
bodies, real case-study rows from the months after training: single rows (8 connections) and 1,000-row batches
(2 connections). The servers are measured alternately, for --rounds rounds after a discarded warm-up round. Printed:
p50 and p99 latency and throughput of each, and ours / bare (target: at most 1.15x at p50 and 1.3x at p99, both sizes);
and the floor, the pipeline's own `predict_proba` on a prepared DataFrame.

    python bench/serving.py [--rounds 5] [--seconds 5]
"""
import argparse, asyncio, contextlib, json, os, platform, signal, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HOST = "127.0.0.1"
SIZES = {1: 8, 1000: 2} # rows per request -> concurrent connections
SERVERS = ["ours", "bare"]
TARGETS = {"p50": 1.15, "p99": 1.3} # ours / bare, at most


# ---- the two servers, each run in its own process by `--serve`

def bare_app(registry_folder):
    "The peer: one FastAPI route that builds a DataFrame from the records and calls `predict_proba`; nothing else"
    from typing import Any
    import pandas as pd
    from fastapi import FastAPI
    from pydantic import BaseModel
    from mlops_kit.development import ModelRegistry
    pipeline = ModelRegistry(registry_folder).load("churn").pipeline

    class PredictRequest(BaseModel):
        records: list[dict[str, Any]]

    app = FastAPI()

    @app.post("/predict")
    async def predict(body: PredictRequest):
        probabilities = pipeline.predict_proba(pd.DataFrame(body.records))
        return {"probabilities": probabilities[:, 1].tolist()}

    return app


def serve(which: str, port: int, registry_folder: str, log: str):
    "Run `which` server on `port` until killed; both servers get the same uvicorn settings"
    import uvicorn
    if which == "ours":
        from mlops_kit.deployment import create_app
        app = create_app(registry_folder, name="churn", log=log)
    else:
        app = bare_app(registry_folder)
    uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False)).run()


# ---- the load generator, run in its own process by `--load`

async def generate_load(url: str, bodies: list, concurrency: int, seconds: float) -> dict:
    "Send `bodies` in turn from `concurrency` keep-alive connections for `seconds`; each request's latency in ms"
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
                response = await client.post("/predict", content=body, headers={"content-type": "application/json"})
                latencies.append((time.perf_counter() - sent) * 1000)
                if response.status_code != 200: errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(connection(start) for start in range(concurrency)))
        elapsed = time.perf_counter() - started
    return dict(latencies_ms=latencies, seconds=elapsed, errors=errors)


def run_load(url: str, bodies_file: str, concurrency: int, seconds: float):
    bodies = [line.encode() for line in Path(bodies_file).read_text().splitlines()]
    print(json.dumps(asyncio.run(generate_load(url, bodies, concurrency, seconds))))


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
                                name="churn", threshold=0.2, seed=0)
    registry.promote("churn", version.version)
    return registry, clean.between(start="2024-07-01").X


def json_records(frame) -> list:
    "JSON-ready records of `frame`: missing values as None, numpy scalars as Python values"
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def write_bodies(folder: Path, frame, rows: int) -> Path:
    "Request bodies of `rows` records each, one JSON document a line, cycling through `frame`'s rows"
    records = json_records(frame)
    bodies = [json.dumps({"records": records[start:start + rows]}) for start in range(0, len(records) - rows + 1, rows)]
    path = folder / f"bodies-{rows}.jsonl"
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


def start_server(which: str, registry_folder: Path, log: Path, first_body: bytes, timeout: float = 120):
    "A server process for `which`, once it answers a /predict"
    import httpx
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", which, "--port", str(port), "--registry", str(registry_folder),
                                "--log", str(log)], start_new_session=True)
    url, deadline = f"http://{HOST}:{port}", time.monotonic() + timeout
    while True:
        if process.poll() is not None: raise RuntimeError(f"The {which} server exited with status {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            response = httpx.post(url + "/predict", content=first_body, headers={"content-type": "application/json"}, timeout=10)
            if response.status_code == 200: return process, url
            if response.status_code != 503: raise RuntimeError(f"The {which} server answered {response.status_code}: {response.text[:300]}")
        if time.monotonic() > deadline: raise RuntimeError(f"The {which} server was not ready after {timeout:g} s")
        time.sleep(0.2)


def stop(process):
    with contextlib.suppress(ProcessLookupError): os.killpg(process.pid, signal.SIGTERM)
    try: process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError): os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cpu_seconds(process) -> float:
    "CPU seconds (user and system, every thread) that `process` has used so far, from /proc; NaN where there is no /proc"
    try: fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError: return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, server, bodies: Path, concurrency: int, seconds: float) -> dict:
    "One load run from a separate client process, with the server's CPU time during it"
    cpu_before = cpu_seconds(server)
    output = subprocess.run([sys.executable, __file__, "--load", url, "--bodies", str(bodies), "--concurrency", str(concurrency),
                             "--seconds", str(seconds)], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(output), server_cpu=cpu_seconds(server) - cpu_before)


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
    return f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions}"


def main(args):
    import warnings
    warnings.filterwarnings("ignore")
    print(machine())
    processes = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        try:
            registry, later = train_and_register(scratch / "models")
            pipeline = registry.load("churn").pipeline
            bodies = {rows: write_bodies(scratch, later, rows) for rows in SIZES}
            floors = {rows: floor_ms(pipeline, later, rows, repeats=200 if rows == 1 else 50) for rows in SIZES}
            first = bodies[1].read_text().splitlines()[0].encode()
            urls, servers = {}, {}
            for which in SERVERS:
                servers[which], urls[which] = start_server(which, scratch / "models", scratch / "predictions.db", first)
                processes.append(servers[which])
            print(f"{len(later):,} case-study rows from the months after training; uvicorn {HOST}, log_level warning, no access log, "
                  f"default loop and http; {args.rounds} rounds of {args.seconds:g} s per server and size after a warm-up round")
            runs = {(which, rows): [] for which in SERVERS for rows in SIZES}
            for round_number in range(args.rounds + 1):
                for rows, concurrency in SIZES.items():
                    order = SERVERS if round_number % 2 == 0 else SERVERS[::-1]
                    for which in order:
                        run = measure(urls[which], servers[which], bodies[rows], concurrency, args.seconds)
                        if round_number > 0: runs[which, rows].append(run)
            log_rows = sqlite_requests(scratch / "predictions.db")
        finally:
            for process in processes: stop(process)
    report(runs, floors, log_rows)


def sqlite_requests(path: Path) -> int:
    import sqlite3
    with contextlib.closing(sqlite3.connect(path)) as connection: return connection.execute("SELECT COUNT(*) FROM requests").fetchone()[0]


def report(runs: dict, floors: dict, log_rows: int):
    verdicts = []
    print("| rows/request | connections | server | p50 ms | p99 ms | requests/s | rows/s | server CPU ms/request | requests | errors |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    results = {key: summary(value) for key, value in runs.items()}
    for rows, concurrency in SIZES.items():
        for which in SERVERS:
            result = results[which, rows]
            print(f"| {rows:,} | {concurrency} | {which} | {result['p50']:.2f} | {result['p99']:.2f} | {result['per_second']:.1f} | "
                  f"{result['per_second'] * rows:,.0f} | {result['cpu_ms']:.2f} | {result['requests']:,} | {result['errors']} |")
    for rows in SIZES:
        ours, bare = results["ours", rows], results["bare", rows]
        ratios = {name: ours[name] / bare[name] for name in TARGETS}
        passed = all(ratios[name] <= TARGETS[name] for name in TARGETS)
        verdicts.append(passed)
        round_ratios = [mine / theirs for mine, theirs in zip(ours["round_p50"], bare["round_p50"])]
        print(f"{rows:,} row(s): ours / bare p50 {ratios['p50']:.2f}x (target <= {TARGETS['p50']}), p99 {ratios['p99']:.2f}x "
              f"(target <= {TARGETS['p99']}), throughput {ours['per_second'] / bare['per_second']:.2f}x, "
              f"server CPU per request {ours['cpu_ms'] / bare['cpu_ms']:.2f}x; per-round p50 ratio {min(round_ratios):.2f}-{max(round_ratios):.2f}: {'PASS' if passed else 'MISS'}")
        print(f"  floor: predict_proba on a prepared {rows:,}-row DataFrame {floors[rows]:.2f} ms = "
              f"{floors[rows] / bare['p50']:.2f} of bare p50, {floors[rows] / ours['p50']:.2f} of ours")
    print(f"prediction log: {log_rows:,} requests committed (warm-up included)")
    print("PASS" if all(verdicts) else "MISS")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per server and size, after a warm-up round (5)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds of load per round, server and size (5)")
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS) # internal: run one server
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--registry", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS) # internal: run the load generator
    parser.add_argument("--bodies", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve: serve(arguments.serve, arguments.port, arguments.registry, arguments.log)
    elif arguments.load: run_load(arguments.load, arguments.bodies, arguments.concurrency, arguments.seconds)
    else: main(arguments)
