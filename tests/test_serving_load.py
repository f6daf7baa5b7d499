"""Load, crash and fuzz tests of the model microservice (`mlops_kit.deployment`), against real servers on loopback.

What this file proves:

1. **Nothing is lost under concurrent load.** Many clients at once, on `/predict` and on the Open Inference Protocol's
   `/infer`: every prediction the service acknowledged (HTTP 200) is in the prediction log exactly once, with the label
   that was answered. For the SQLite log in its default mode (`synchronous=NORMAL`, a commit costs microseconds) each
   request commits on its own; where a commit waits for a disk flush (`synchronous=FULL`) or a network round trip
   (PostgreSQL), group commit really groups requests (fewer commits than requests).
2. **An acknowledged prediction survives a killed server.** `mlops-kit serve` answers only after the record is
   committed, so SIGKILL of the server process mid-load loses no acknowledged prediction (SQLite WAL recovery).
3. **Fuzzing finds no server error.** Schemathesis generates requests from the app's own OpenAPI schema, valid and
   invalid ones, for every operation; none gets a 5xx, and every response conforms to the schema (status code,
   content type, headers, body), and every invalid request is rejected.

"Answered only after the commit" is made observable, not left to luck: tests 1 and 2 hold the log's write lock for a
moment (SQLite `BEGIN IMMEDIATE`, PostgreSQL `LOCK TABLE`), so the log's writer stalls; a server that answered before
committing would then hand out answers the log does not hold. No assertion depends on timing: the tests check what was
logged, counted and answered, not how fast.
"""
import asyncio, collections, contextlib, os, signal, sqlite3, subprocess, sys, time
from pathlib import Path

import httpx
import pytest

from conftest import free_port
from mlops_kit.design import simple_model
from mlops_kit.data import load_case_study
from mlops_kit.lifecycle import Criteria
from mlops_kit.development import ModelRegistry
from mlops_kit.deployment import BackgroundServer, PredictionLog, create_app

pytestmark = pytest.mark.slow

MODEL = "churn"
INFER_EVERY = 4  # every 4th request of a client goes to the Open Inference Protocol's /infer, the others to /predict


# ---------------------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def case_study():
    return load_case_study(seed=42).clean_sample()


@pytest.fixture(scope="module")
def registry(case_study, tmp_path_factory) -> ModelRegistry:
    "A registry whose champion 'churn' v1 is a simple model trained on the first half of 2024"
    train = case_study.between(end="2024-07-01")
    model = simple_model(train.categorical, train.numerical).fit(train.X, train.frame[train.target])
    registry = ModelRegistry(tmp_path_factory.mktemp("registry") / "models")
    version = registry.register(model, train, Criteria("recall >= 0.6", ["precision >= 0.2"]),
                                {"recall": 0.7, "precision": 0.3}, name=MODEL, threshold=0.2)
    registry.promote(MODEL, version.version)
    return registry


@pytest.fixture(scope="module")
def records(case_study) -> list:
    "JSON-ready feature records of customers the model has not seen (missing values as None)"
    frame = case_study.between(start="2024-07-01").X
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


# ------------------------------------------------------------------------------------------------------- the load clients
class Acknowledgements:
    "What the clients saw: the acknowledged predictions (id -> answered label), refusals and broken connections"
    def __init__(self):
        self.predictions, self.endpoints = {}, collections.Counter()
        self.refused, self.connection_errors = [], []

    def add(self, route: str, answer: dict):
        "Keep the prediction id and label of one acknowledged single-record answer, from /predict or /infer"
        if route == "/predict":
            (prediction_id,), (label,) = answer["ids"], answer["predictions"]
            endpoint = "predict"
        else:
            outputs = {output["name"]: output["data"] for output in answer["outputs"]}
            (prediction_id,), (label,) = outputs["prediction_id"], outputs["predict"]
            endpoint = "infer"
        assert prediction_id not in self.predictions, f"the service gave the id {prediction_id} twice"
        self.predictions[prediction_id] = label
        self.endpoints[endpoint] += 1


def request_for(records: list, inputs: list, client: int, number: int) -> tuple[str, dict]:
    "The route and JSON body of request `number` of `client`: one record, on /predict or (every 4th) on /infer"
    record = records[(client * 7919 + number) % len(records)]
    if number % INFER_EVERY != INFER_EVERY - 1:
        return "/predict", {"records": [record]}
    tensors = [dict(name=spec["name"], datatype=spec["datatype"], shape=[1], data=[record[spec["name"]]]) for spec in inputs]
    return f"/v2/models/{MODEL}/infer", {"id": f"client-{client}-request-{number}", "inputs": tensors}


async def run_clients(url: str, records: list, clients: int, requests_per_client: int, seen: Acknowledgements,
                      while_running=None):
    """`clients` concurrent HTTP clients, each with its own connection, sending `requests_per_client` requests one after
    the other; a client stops at its first broken connection. `while_running(seen)` runs alongside them"""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        inputs = (await http.get(f"/v2/models/{MODEL}")).raise_for_status().json()["inputs"]

    async def client(number: int):
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1)) as http:
            for request in range(requests_per_client):
                route, body = request_for(records, inputs, number, request)
                try: response = await http.post(route, json=body)
                except httpx.TransportError as error:
                    seen.connection_errors.append(f"client {number}: {type(error).__name__}")
                    return
                if response.status_code == 200: seen.add(route, response.json())
                else: seen.refused.append(f"{route} {response.status_code}: {response.text[:300]}")

    tasks = [asyncio.create_task(client(number)) for number in range(clients)]
    if while_running is not None: await while_running(seen)
    await asyncio.gather(*tasks)


def metric_value(metrics_text: str, name: str) -> float:
    "The value of the unlabelled Prometheus metric `name`"
    from prometheus_client.parser import text_string_to_metric_families
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name: return sample.value
    raise AssertionError(f"/metrics has no {name}")


def assert_log_holds_exactly(log: PredictionLog, seen: Acknowledgements):
    "The log holds every acknowledged prediction once, with the label answered, and nothing else"
    window = log.window()
    assert not window["id"].duplicated().any(), f"duplicated ids in the log: {window['id'][window['id'].duplicated()].tolist()[:5]}"
    missing = set(seen.predictions) - set(window["id"])
    assert not missing, f"{len(missing)} acknowledged predictions are not in the log, e.g. {sorted(missing)[:3]}"
    unexpected = set(window["id"]) - set(seen.predictions)
    assert not unexpected, f"{len(unexpected)} logged predictions were never acknowledged, e.g. {sorted(unexpected)[:3]}"
    logged = dict(zip(window["id"], window["prediction"]))
    wrong = [key for key, label in seen.predictions.items() if logged[key] != label]
    assert not wrong, f"{len(wrong)} logged labels differ from the answered ones, e.g. {wrong[:3]}"
    assert window["endpoint"].value_counts().to_dict() == dict(seen.endpoints)
    total = len(seen.predictions)
    assert log.counts() == dict(requests=total, cases=total, labels=0)


@contextlib.contextmanager
def log_write_lock(url: str):
    "Hold the prediction log's write lock (SQLite file or PostgreSQL database): the log's writer waits meanwhile"
    if url.startswith("postgresql://"):
        import psycopg
        with psycopg.connect(url) as blocker:
            blocker.execute("LOCK TABLE requests IN EXCLUSIVE MODE")  # blocks INSERTs, not SELECTs
            yield
            blocker.rollback()
    else:
        with contextlib.closing(sqlite3.connect(url, isolation_level=None)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")  # blocks the other writers; WAL readers go on
            yield
            blocker.execute("ROLLBACK")


def answered(seen: Acknowledgements) -> int:
    "How many requests got an answer or a broken connection"
    return len(seen.predictions) + len(seen.refused) + len(seen.connection_errors)


# ------------------------------------------------------------------------------------------- 1. nothing lost under load
# 32 concurrent clients x 50 requests, not x 200: the service scores on its event loop, one request at a time, and a
# single-record call of a scikit-learn pipeline costs ~6-12 ms of CPU, so a 2-core machine serves ~60-70 requests/s;
# 1,600 requests take ~25 s per log backend, 6,400 would take ~100 s. 32 clients keep the log's queue full, which is
# what group commit and the no-loss guarantee are about.
LOAD_CLIENTS, LOAD_REQUESTS_PER_CLIENT, LOG_STALL_SECONDS = 32, 50, 1.0


@pytest.fixture(params=["sqlite", "sqlite-full", pytest.param("postgresql", marks=pytest.mark.service("postgresql"))])
def prediction_log(request, tmp_path) -> tuple[str, str]:
    "A fresh prediction log, as (URL, SQLite synchronous mode): a SQLite file (NORMAL or FULL), or an empty PostgreSQL database"
    if request.param == "postgresql": return request.getfixturevalue("postgres_url"), "NORMAL"
    return str(tmp_path / "log.db"), "FULL" if request.param == "sqlite-full" else "NORMAL"


def test_every_acknowledged_prediction_is_logged_exactly_once_under_concurrent_load(registry, records, prediction_log):
    """32 concurrent clients x 50 single-record requests (a quarter on /infer). A third of the way in, the test holds
    the log's write lock for a moment and checks that every prediction answered so far is already readable from the log
    (answers wait for the commit). After the server stops, the log holds each acknowledged prediction exactly once with
    the answered label; the metrics show one commit per request for SQLite's cheap NORMAL commits, and commits shared by
    several requests (group commit) where a commit waits for a disk flush (FULL) or the PostgreSQL server"""
    prediction_log_url, synchronous = prediction_log
    total, seen, answered_uncommitted = LOAD_CLIENTS * LOAD_REQUESTS_PER_CLIENT, Acknowledgements(), []
    reader = PredictionLog(prediction_log_url)  # made now: making one writes the tables, which the lock would block

    async def stall_the_log_and_compare(seen: Acknowledgements):
        while answered(seen) < total // 3: await asyncio.sleep(0.001)
        with log_write_lock(prediction_log_url):
            await asyncio.sleep(LOG_STALL_SECONDS)
            so_far = set(seen.predictions)
            answered_uncommitted.extend(so_far - set(reader.window()["id"]))

    log = PredictionLog(prediction_log_url, sqlite_synchronous=synchronous)
    with BackgroundServer(create_app(registry, name=MODEL, log=log)) as service:
        asyncio.run(run_clients(service.url, records, LOAD_CLIENTS, LOAD_REQUESTS_PER_CLIENT, seen,
                                while_running=stall_the_log_and_compare))
        metrics = service.metrics()
        service.close()
    assert not seen.refused and not seen.connection_errors, (seen.refused[:3], seen.connection_errors[:3])
    assert len(seen.predictions) == total
    assert not answered_uncommitted, f"{len(answered_uncommitted)} predictions were answered before they were committed"
    commits, committed = (metric_value(metrics, name) for name in ["mlops_kit_log_commits", "mlops_kit_log_committed_requests"])
    print(f"{committed:g} requests in {commits:g} commits: {committed / commits:.2f} requests per commit")
    assert committed == total, f"/metrics counts {committed:g} committed requests, the clients got {total} answers"
    if prediction_log_url.startswith("postgresql") or synchronous == "FULL":
        assert committed / commits > 1, f"group commit did not group: {commits:g} commits for {committed:g} requests"
    else:
        assert commits == committed, f"cheap SQLite commits should not wait for a group: {commits:g} commits for {committed:g} requests"
    assert_log_holds_exactly(PredictionLog(prediction_log_url), seen)


# --------------------------------------------------------------------------------------- 2. durability after a SIGKILL
KILL_CLIENTS, KILL_AFTER_ACKNOWLEDGED, KILL_REQUEST_CAP = 16, 300, 100_000


def start_cli_server(models: Path, log: Path, output: Path) -> tuple[subprocess.Popen, str]:
    "Start `mlops-kit serve` on a free port and return the process and its URL, once the model is ready"
    command = Path(sys.executable).with_name("mlops-kit")
    process = subprocess.Popen([str(command), "serve", "--models", str(models), "--name", MODEL, "--port", str(free_port()), "--log", str(log)],
                               stdout=output.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "http://" not in output.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"`mlops-kit serve` did not start:\n{output.read_text()}")
        time.sleep(0.05)
    url = output.read_text().split(" on ", 1)[1].split()[0]
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200: return process, url
        except httpx.TransportError: pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"`mlops-kit serve` never became ready:\n{output.read_text()}")
        time.sleep(0.05)


def test_acknowledged_predictions_survive_sigkill_of_the_server_process(registry, records, tmp_path):
    """Kill `mlops-kit serve` with SIGKILL while 16 clients keep sending: every prediction answered with 200 before the
    kill is in the SQLite log afterwards.

    The guarantee tested is exactly a killed *process*: the service answers only after the group commit, and SQLite in
    WAL mode with synchronous=NORMAL (the default) keeps every committed transaction when the process dies, because the
    WAL is in the operating system's page cache. It does NOT test a power loss or an OS crash: with synchronous=NORMAL
    the last transactions may then roll back; that needs `PredictionLog(..., sqlite_synchronous="FULL")`.

    To make "answered only after the commit" observable rather than a matter of luck, the test holds the log's write
    lock for a moment before the kill: the log's writer stalls, so a server that answered before committing would
    hand out answers that the kill then loses."""
    log = tmp_path / "log.db"
    process, url = start_cli_server(registry.folder, log, tmp_path / "serve.out")
    acknowledged_at_kill = []

    async def stall_the_log_then_kill(seen: Acknowledgements):
        while len(seen.predictions) < KILL_AFTER_ACKNOWLEDGED and process.poll() is None:
            await asyncio.sleep(0.001)
        with log_write_lock(str(log)):
            await asyncio.sleep(LOG_STALL_SECONDS)
            acknowledged_at_kill.append(len(seen.predictions))
            os.kill(process.pid, signal.SIGKILL)

    seen = Acknowledgements()
    try:
        asyncio.run(run_clients(url, records, KILL_CLIENTS, KILL_REQUEST_CAP, seen, while_running=stall_the_log_then_kill))
    finally:
        if process.poll() is None: process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, f"the server ended on its own:\n{(tmp_path / 'serve.out').read_text()}"
    assert not seen.refused, seen.refused[:3]
    assert acknowledged_at_kill[0] >= KILL_AFTER_ACKNOWLEDGED, "the server died before the load built up"
    assert len(seen.connection_errors) == KILL_CLIENTS, "every client must still have been sending when the server died"
    window = PredictionLog(log).window()  # opening the log recovers its WAL
    assert not window["id"].duplicated().any()
    missing = set(seen.predictions) - set(window["id"])
    assert not missing, f"{len(missing)} of {len(seen.predictions)} acknowledged predictions were lost, e.g. {sorted(missing)[:3]}"
    logged = dict(zip(window["id"], window["prediction"]))
    assert all(logged[key] == label for key, label in seen.predictions.items())


# ------------------------------------------------------------------------------------------ 3. fuzzing the OpenAPI schema
FUZZED_OPERATIONS = [
    "GET /v2", "GET /v2/health/live", "GET /v2/health/ready", "GET /metrics",
    "GET /v2/models/{model_name}", "GET /v2/models/{model_name}/versions/{model_version}",
    "GET /v2/models/{model_name}/ready", "GET /v2/models/{model_name}/versions/{model_version}/ready",
    "POST /v2/models/{model_name}/infer", "POST /v2/models/{model_name}/versions/{model_version}/infer",
    "POST /predict", "POST /feedback",
]
EXAMPLES = 100  # generated cases per generation mode and variant; each operation with inputs gets at least this many
SERVED_PATH = {"model_name": MODEL, "model_version": "1"}


@pytest.fixture(scope="module")
def fuzzed_service(registry, tmp_path_factory):
    "A server with the model loaded, shared by the fuzz tests"
    server = BackgroundServer(create_app(registry, name=MODEL, log=tmp_path_factory.mktemp("fuzz") / "log.db"))
    with server as client:
        yield server
        client.close()


@pytest.fixture(scope="module")
def openapi_schema(fuzzed_service):
    import schemathesis
    return schemathesis.openapi.from_url(f"{fuzzed_service.url}/openapi.json")


def test_every_operation_of_the_schema_is_fuzzed(openapi_schema):
    "A route added to the app must be added to FUZZED_OPERATIONS"
    assert sorted(result.ok().label for result in openapi_schema.get_all_operations()) == sorted(FUZZED_OPERATIONS)


def fuzz_variants(operation) -> list:
    """(generation mode, fixed path parameters) pairs for `operation`: valid requests with generated path parameters
    (unknown models), valid ones for the served model (they reach the model), and invalid ones where the schema leaves
    something to break once the path names the served model (a string path parameter cannot be made invalid)"""
    from schemathesis import GenerationMode
    served = {parameter.name: SERVED_PATH[parameter.name] for parameter in operation.path_parameters}
    variants = [(GenerationMode.POSITIVE, {})]
    if served: variants.append((GenerationMode.POSITIVE, served))
    if len(operation.query) or len(operation.body): variants.append((GenerationMode.NEGATIVE, served))
    return variants


def has_inputs(operation) -> bool:
    return any(len(part) for part in [operation.path_parameters, operation.query, operation.headers, operation.cookies, operation.body])


@pytest.mark.parametrize("label", FUZZED_OPERATIONS)
def test_fuzzing_finds_no_server_error_and_no_schema_mismatch(openapi_schema, label):
    """Schemathesis cases for one operation, valid and invalid, answered without a 5xx and as the schema says: at least
    100 generated cases for an operation with inputs; an operation without inputs has only one possible request"""
    import requests
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode, checks
    method, path = label.split(" ", 1)
    operation = openapi_schema[path][method]
    conformance = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
                   checks.response_headers_conformance, checks.response_schema_conformance]
    cases, distinct, statuses = 0, set(), collections.Counter()
    with requests.Session() as session:
        for mode, path_parameters in fuzz_variants(operation):
            chosen = conformance + ([checks.negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])

            # derandomize: the same cases on every run. too_slow is suppressed because case generation on a loaded
            # 2-core CI machine (the suite runs with -n auto) is not what this test is about.
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow])
            @given(case=operation.as_strategy(mode, path_parameters=path_parameters or None))
            def send(case):
                nonlocal cases
                response = case.call_and_validate(session=session, checks=chosen)
                cases += 1
                distinct.add(repr((mode.value, case.formatted_path, case.query, case.body)))
                statuses[response.status_code] += 1

            send()
    print(f"{label}: {cases} cases ({len(distinct)} distinct requests), statuses {dict(statuses)}")
    if has_inputs(operation): assert cases >= EXAMPLES, f"only {cases} generated cases for {label}"
    else: assert cases == len(distinct) == 1
