"""Pruning the prediction log while our service answers the serving benchmark's load: p99 while a prune runs against p99
without, in one run, and the bytes on disk per logged request.

The model, the rows, the request bodies, the load generator and the server settings are bench/serving.py's (imported,
not copied). One server runs our `create_app` on a SQLite log that already holds a large backlog of old requests of
both sizes (1 in 10 a 1,000-row request), and more is added before each later pruning round. The rounds alternate, for each request size, between:

- quiet: the load alone;
- pruning: the same load while the server prunes its backlog with `PredictionLog.prune` on a thread of its own (what the
  service's pruning thread runs), one slice of the backlog after another for as long as the load lasts, each slice
  deleted in the default batches (200 requests per transaction) and given back by incremental vacuum.

Printed: p50 and p99 of each, and pruning / quiet p99 (target: at most 1.3x), with how much of each pruning round a
prune was running (coverage) and what it removed; then the bytes on disk per logged request for 1-row and 1,000-row
requests, each size served on its own to a fresh log ((file size once checkpointed - an empty log's) / requests logged).

    python bench/prune.py [--rounds 3] [--seconds 3] [--backlog 40000] [--refill 8000]
"""
import argparse, asyncio, contextlib, json, os, sqlite3, subprocess, sys, tempfile, threading, time, uuid, zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import serving  # bench/serving.py: the model, the bodies, the load generator and the server settings

TARGET = 1.3 # pruning p99 / quiet p99, at most
BACKLOG_DAYS = (400, 200) # the backlog's requests were received between these many days ago, oldest first
SLICE = 2_000 # backlog requests per prune call


def serve_pruning(port: int, registry_folder: str, log: str):
    "Our service on `log`, plus a benchmark-only route that prunes it on a thread, as the service's pruning thread does"
    import uvicorn
    from mlops_kit.deployment import PredictionLog, Retention, create_app
    prediction_log = PredictionLog(log)
    app = create_app(registry_folder, name="churn", log=prediction_log)

    @app.post("/bench/prune")
    async def prune(days: float):
        started = time.perf_counter()
        report = await asyncio.to_thread(prediction_log.prune, Retention(days))
        return dict(report, seconds=time.perf_counter() - started)

    uvicorn.Server(uvicorn.Config(app, host=serving.HOST, port=port, log_level="warning", access_log=False)).run()


def start(log: Path, registry_folder: Path, first_body: bytes, timeout: float = 120):
    "The pruning server in its own process, once it answers a /predict"
    import httpx
    port = serving.free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(port), "--registry", str(registry_folder), "--log", str(log)],
                               start_new_session=True)
    url, deadline = f"http://{serving.HOST}:{port}", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None: raise RuntimeError(f"The server exited with status {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.post(url + "/predict", content=first_body, headers={"content-type": "application/json"}, timeout=10).status_code == 200:
                return process, url
        time.sleep(0.2)
    serving.stop(process)
    raise RuntimeError(f"The server was not ready after {timeout:g} s")


def packed_bodies(bodies: dict) -> dict:
    "Rows per request -> the first 50 bodies of that size, compressed as the log keeps them"
    return {rows: [zlib.compress(body, 1) for body in path.read_bytes().splitlines()[:50]] for rows, path in bodies.items()}


def add_backlog(log: Path, packed: dict, count: int) -> float:
    "Log `count` old requests of the benchmark's bodies (1 in 10 of 1,000 rows), received over BACKLOG_DAYS, oldest first; the time it took as now"
    from mlops_kit.deployment import RequestRecord
    import numpy as np
    oldest, newest = BACKLOG_DAYS
    now = time.time()
    def row(index: int) -> dict:
        rows = 1000 if index % 10 == 0 else 1
        record = RequestRecord(uuid.uuid4().hex, None, now - (oldest - (oldest - newest) * index / count) * 86_400, "predict", "churn", 1,
                               b"", [0] * rows, np.full((rows, 2), 0.5), 1.0, compressed_inputs=packed[rows][index % len(packed[rows])],
                               classes=[0, 1], positive_label=1)
        return record.as_row()
    with contextlib.closing(sqlite3.connect(log, timeout=60)) as connection, connection:
        first = row(0)
        statement = f"INSERT INTO requests ({', '.join(first)}) VALUES ({', '.join(':' + name for name in first)})"
        for start in range(0, count, 5_000): connection.executemany(statement, (row(index) for index in range(start, min(count, start + 5_000))))
    return now


class Pruner(threading.Thread):
    "Prune the server's backlog a slice at a time until `stop` is set; the seconds spent pruning and what was removed"
    def __init__(self, url: str, count: int, now: float):
        super().__init__(daemon=True)
        self.url, self.count, self.now, self.next_slice, self.stopping = url, count, now, 0, threading.Event()
        self.calls, self.removed, self.freed = [], 0, 0 # calls: (start, end) of each prune call, perf_counter seconds

    def run(self):
        import httpx
        oldest, newest = BACKLOG_DAYS
        while not self.stopping.is_set() and self.next_slice * SLICE < self.count:
            self.next_slice += 1
            age = oldest - (oldest - newest) * (self.next_slice * SLICE - 0.5) / self.count  # between two requests of the backlog
            days = age - (time.time() - self.now) / 86_400
            started = time.perf_counter()
            report = httpx.post(self.url + "/bench/prune", params=dict(days=days), timeout=600).json()
            self.calls.append((started, time.perf_counter()))
            self.removed, self.freed = self.removed + report["requests"], self.freed + report["bytes_freed"]

    def overlap(self, start: float, end: float) -> float:
        "Seconds of [start, end] during which a prune call was running"
        return sum(max(0.0, min(end, call_end) - max(start, call_start)) for call_start, call_end in self.calls)


def bytes_per_request(registry_folder: Path, bodies: dict, scratch: Path, seconds: float) -> dict:
    "Bytes on disk per logged request of each size: our service (serving.py's 'ours') on a fresh log, one size at a time, less an empty log's size"
    from mlops_kit.deployment import PredictionLog
    PredictionLog(scratch / "empty.db").close()
    empty, sizes = (scratch / "empty.db").stat().st_size, {}
    for rows, concurrency in serving.SIZES.items():
        log = scratch / f"size-{rows}.db"
        first = bodies[rows].read_bytes().splitlines()[0]
        server, url = serving.start_server("ours", registry_folder, log, first)
        try: serving.measure(url, server, bodies[rows], concurrency, seconds)
        finally: serving.stop(server)
        with contextlib.closing(sqlite3.connect(log)) as connection:
            requests = connection.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        on_disk = log.stat().st_size + sum(path.stat().st_size for path in log.parent.glob(log.name + "-*"))  # with a write-ahead log left, if any
        sizes[rows] = (on_disk - empty) / requests, requests
    return sizes


def main(args):
    import warnings
    warnings.filterwarnings("ignore")
    print(serving.machine())
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        registry, later = serving.train_and_register(scratch / "models")
        bodies = {rows: serving.write_bodies(scratch, later, rows) for rows in serving.SIZES}
        log, packed = scratch / "predictions.db", packed_bodies(bodies)
        from mlops_kit.deployment import PredictionLog
        PredictionLog(log).close()  # the tables, and incremental vacuum, as the service makes them
        started = time.perf_counter()
        backlog_made = add_backlog(log, packed, args.backlog)
        print(f"backlog: {args.backlog:,} old requests (1 in 10 of 1,000 rows), {log.stat().st_size / 1e6:,.0f} MB, "
              f"written in {time.perf_counter() - started:.1f} s, and {args.refill:,} more before each later pruning round; {args.rounds} rounds of {args.seconds:g} s per size and state after a warm-up round")
        runs = {(rows, state): [] for rows in serving.SIZES for state in ["quiet", "pruning"]}
        pruned = {rows: dict(busy=0.0, seconds=0.0, removed=0, freed=0) for rows in serving.SIZES}
        server, url = start(log, scratch / "models", bodies[1].read_bytes().splitlines()[0])
        try:
            for round_number in range(args.rounds + 1):
                for rows, concurrency in serving.SIZES.items():
                    order = ["quiet", "pruning"] if round_number % 2 == 0 else ["pruning", "quiet"]
                    for state in order:
                        if state == "pruning":
                            pruner = Pruner(url, args.refill, add_backlog(log, packed, args.refill)) if round_number + rows > 1 else Pruner(url, args.backlog, backlog_made)
                            pruner.start()
                        load_started = time.perf_counter()
                        run = serving.measure(url, server, bodies[rows], concurrency, args.seconds)
                        load_ended = time.perf_counter()
                        if state == "pruning":
                            pruner.stopping.set()
                            pruner.join()
                        if round_number == 0: continue
                        runs[rows, state].append(run)
                        if state == "pruning":
                            for key, value in dict(busy=pruner.overlap(load_started, load_ended), seconds=load_ended - load_started, removed=pruner.removed, freed=pruner.freed).items():
                                pruned[rows][key] += value
        finally:
            serving.stop(server)
        remaining = sqlite3.connect(log).execute("SELECT COUNT(*) FROM requests WHERE received_at < ?", (time.time() - (BACKLOG_DAYS[1] - 1) * 86_400,)).fetchone()[0]
        sizes = bytes_per_request(scratch / "models", bodies, scratch, args.seconds)
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    report(runs, pruned, remaining, sizes)


def report(runs: dict, pruned: dict, remaining: int, sizes: dict):
    results = {key: serving.summary(value) for key, value in runs.items()}
    print("| rows/request | connections | state | p50 ms | p99 ms | requests/s | requests | errors |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for (rows, state), result in results.items():
        print(f"| {rows:,} | {serving.SIZES[rows]} | {state} | {result['p50']:.2f} | {result['p99']:.2f} | {result['per_second']:.1f} | "
              f"{result['requests']:,} | {result['errors']} |")
    verdicts = []
    for rows in serving.SIZES:
        quiet, pruning, work = results[rows, "quiet"], results[rows, "pruning"], pruned[rows]
        ratio = pruning["p99"] / quiet["p99"]
        verdicts.append(ratio <= TARGET)
        print(f"{rows:,} row(s): pruning / quiet p99 {ratio:.2f}x (target <= {TARGET}), p50 {pruning['p50'] / quiet['p50']:.2f}x, throughput "
              f"{pruning['per_second'] / quiet['per_second']:.2f}x; a prune ran {work['busy'] / work['seconds']:.0%} of the pruning rounds' load, "
              f"removing {work['removed'] / work['seconds']:,.0f} requests/s ({work['removed']:,} in all, "
              f"{work['freed'] / 1e6:,.0f} MB given back): {'PASS' if verdicts[-1] else 'MISS'}")
    print(f"backlog left unpruned: {remaining:,} requests")
    for rows, (per_request, requests) in sizes.items():
        print(f"bytes on disk per logged request, {rows:,} row(s): {per_request:,.0f} ({requests:,} requests logged)")
    print("PASS" if all(verdicts) else "MISS")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per size and state, after a warm-up round (3)")
    parser.add_argument("--seconds", type=float, default=3, help="seconds of load per round, size and state (3)")
    parser.add_argument("--backlog", type=int, default=40_000, help="old requests in the log when the server starts (40000)")
    parser.add_argument("--refill", type=int, default=8_000, help="old requests added before each later pruning round (8000)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS) # internal: run the pruning server
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--registry", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve: serve_pruning(arguments.port, arguments.registry, arguments.log)
    else: main(arguments)
