"""Scoring processes (`ServiceSettings.scoring_processes`, `mlops-kit serve --scoring-processes`): large batches scored in
worker processes while the server reads the next requests. Every worker here is really started (spawned), killed or
stopped; the answers are compared with those of a server that scores everything in its own process."""
import contextlib, multiprocessing, os, signal, subprocess, time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from conftest import serve_command, wait_until_ready
from mlops_kit.data import load_case_study
from mlops_kit.design import simple_model
from mlops_kit.development import ModelRegistry
from mlops_kit.lifecycle import Criteria
from mlops_kit.deployment import BackgroundServer, PredictionLog, ServiceSettings, create_app
from mlops_kit.deployment import app as app_module

PROCESS_ROWS = 100  # batches of this many rows or more go to a scoring process
LARGE, SMALL = 150, 10
SETTINGS = ServiceSettings(scoring_processes=1, process_batch_rows=PROCESS_ROWS)


@pytest.fixture(scope="module")
def case_study():
    clean = load_case_study(seed=42).clean_sample()
    return clean.between(end="2024-07-01"), clean.between(start="2024-07-01").X.reset_index(drop=True)


def register(folder: Path, pipeline, training, **fields) -> ModelRegistry:
    registry = ModelRegistry(folder)
    version = registry.register(pipeline, training, Criteria("recall >= 0.6", ["precision >= 0.2"]), {"recall": 0.7, "precision": 0.3},
                                name="churn", **fields)
    registry.promote("churn", version.version)
    return registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory, case_study):
    training, _ = case_study
    return register(tmp_path_factory.mktemp("models"), simple_model(training.categorical, training.numerical).fit(training.X, training.y),
                    training, threshold=0.2)


def records(frame: pd.DataFrame) -> dict:
    return {"records": frame.astype(object).where(frame.notna(), None).to_dict(orient="records")}


def v2_body(frame: pd.DataFrame) -> dict:
    datatypes = {"bool": "BOOL", "int64": "INT64", "float64": "FP64"}
    return {"inputs": [{"name": name, "datatype": datatypes.get(str(frame[name].dtype), "BYTES"), "shape": [len(frame)],
                        "data": frame[name].astype(object).where(frame[name].notna(), None).tolist()} for name in frame.columns]}


def answers(url: str, frame: pd.DataFrame) -> dict:
    "What a server answers for `frame`'s rows on /predict and on V2, without the ids that differ from call to call"
    predict = httpx.post(f"{url}/predict", json=records(frame), timeout=60)
    infer = httpx.post(f"{url}/v2/models/churn/infer", json=v2_body(frame), timeout=60)
    assert predict.status_code == infer.status_code == 200, (predict.text, infer.text)
    outputs = {output["name"]: output["data"] for output in infer.json()["outputs"] if output["name"] != "prediction_id"}
    return {key: value for key, value in predict.json().items() if key not in ("request_id", "ids")} | {"v2": outputs}


@pytest.fixture
def scored_here(monkeypatch) -> list:
    "The number of rows of each batch the server scored in this process (the scoring processes are other processes)"
    batches, original = [], app_module._model_output

    def counting(pipeline, task, frame):
        batches.append(len(frame))
        return original(pipeline, task, frame)

    monkeypatch.setattr(app_module, "_model_output", counting)
    return batches


def alive_workers() -> list:
    return [child for child in multiprocessing.active_children() if child.is_alive()]


def wait_for(condition, seconds: float = 60, what: str = ""):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {seconds} s: {what}"
        time.sleep(0.1)


def test_a_large_batch_is_scored_in_a_worker_answered_and_logged_as_the_server_would(registry, case_study, tmp_path, scored_here):
    _, new_customers = case_study
    large, small = new_customers.head(LARGE), new_customers.tail(SMALL)
    with BackgroundServer(create_app(registry, log=tmp_path / "here.db")) as here:
        expected = {rows: answers(here.url, frame) for rows, frame in [(LARGE, large), (SMALL, small)]}
    assert len(alive_workers()) == 0
    with BackgroundServer(create_app(registry, log=tmp_path / "workers.db", settings=SETTINGS)) as served:
        assert len(alive_workers()) == 1  # started with the model, before the server was ready
        scored_here.clear()  # the small probes of the model's load, which learn what it can score when missing
        assert answers(served.url, large) == expected[LARGE]  # the same floats, to the last bit
        assert scored_here == []  # both large batches were scored in the worker
        assert answers(served.url, small) == expected[SMALL]
        assert scored_here == [SMALL, SMALL]  # small ones are scored at once, in the server's process
    assert alive_workers() == []  # stopped with the server
    with PredictionLog(tmp_path / "workers.db") as log:
        window = log.window()
        assert log.counts()["requests"] == 4 and len(window) == 2 * (LARGE + SMALL)
        pd.testing.assert_frame_equal(window[large.columns].head(LARGE).reset_index(drop=True), large.reset_index(drop=True), check_dtype=False)


def test_a_killed_worker_loses_no_request_and_is_replaced(registry, case_study, tmp_path, scored_here):
    _, new_customers = case_study
    large = new_customers.head(LARGE)
    app = create_app(registry, log=tmp_path / "log.db", settings=SETTINGS)
    with BackgroundServer(app) as served:
        expected = answers(served.url, large)
        scored_here.clear()
        [worker] = alive_workers()
        os.kill(worker.pid, signal.SIGKILL)
        wait_for(lambda: not worker.is_alive(), what="the killed worker to end")
        assert answers(served.url, large) == expected  # scored in the server's process meanwhile: the client sees nothing
        assert LARGE in scored_here
        scorers = app.state.service.scorers
        wait_for(lambda: scorers.pool is not None and len(alive_workers()) == 1, what="a new worker")
        assert alive_workers()[0].pid != worker.pid
        scored_here.clear()
        assert answers(served.url, large) == expected
        assert scored_here == []  # the new worker scores again
        with PredictionLog(tmp_path / "log.db") as log: assert log.counts()["requests"] == 6  # every answer logged
    assert alive_workers() == []


def refuse_unbelievable_charges(frame):
    "A custom step that raises for a value the model must not score: what a validating pipeline does"
    if (frame["monthly_charges"] > 10_000).any(): raise ValueError("a monthly charge above 10,000 is not believable")
    return frame[["tenure_months", "monthly_charges", "support_calls"]]


def test_an_error_raised_in_a_worker_gets_the_same_422_as_in_the_server_and_nothing_is_logged(case_study, tmp_path):
    training, new_customers = case_study
    pipeline = make_pipeline(FunctionTransformer(refuse_unbelievable_charges), LogisticRegression()).fit(training.X, training.y)
    registry = register(tmp_path / "models", pipeline, training, trusted_extra=[refuse_unbelievable_charges])
    settings = ServiceSettings(scoring_processes=1, process_batch_rows=PROCESS_ROWS, trusted_extra=(refuse_unbelievable_charges,))
    with BackgroundServer(create_app(registry, log=tmp_path / "log.db", settings=settings)) as served:
        messages = []
        for rows in [SMALL, LARGE]:
            frame = new_customers.head(rows).copy()
            frame.loc[rows - 1, "monthly_charges"] = 50_000.0
            response = httpx.post(f"{served.url}/predict", json=records(frame), timeout=60)
            assert response.status_code == 422, response.text
            messages.append(response.json()["error"])
        assert messages[0] == messages[1] and "(ValueError: a monthly charge above 10,000 is not believable)" in messages[0], messages
        assert httpx.post(f"{served.url}/predict", json=records(new_customers.head(LARGE)), timeout=60).status_code == 200  # the worker lives on
        with PredictionLog(tmp_path / "log.db") as log: assert log.counts()["requests"] == 1


def children_of(pid: int) -> set:
    "The process ids whose parent is `pid`, from /proc"
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid: children.add(int(stat.parent.name))
    return children


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc (Linux)")
def test_the_serve_command_scores_in_worker_processes_and_ctrl_c_stops_them(registry, case_study, tmp_path):
    _, new_customers = case_study
    with serve_command("--models", registry.folder, "--log", tmp_path / "log.db", "--scoring-processes", "2", "--process-batch-rows", "50") as (url, process):
        wait_until_ready(url, process, "churn")
        workers = children_of(process.pid)
        assert len(workers) >= 2, workers  # two scoring processes (and multiprocessing's resource tracker)
        response = httpx.post(f"{url}/predict", json=records(new_customers.head(60)), timeout=60)
        assert response.status_code == 200 and len(response.json()["predictions"]) == 60
        process.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 130 and "interrupted" in output and "Traceback" not in output, output  # 128 + SIGINT, as shells report it
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), seconds=30, what=f"the workers {workers} to end")
    with PredictionLog(tmp_path / "log.db") as log: assert log.counts()["requests"] == 1
