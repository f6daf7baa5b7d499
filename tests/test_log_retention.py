"""Retention of the prediction log, on SQLite and on PostgreSQL: a prune removes exactly the requests outside the period
(with their labels), keeps the predictions still waiting for a label inside the label delay, gives the space back, leaves
the monitoring of the retained period unchanged, refuses bad arguments (in Python and on the command line) without
deleting anything, and loses no request a running service answers while it prunes.
The unit-level rules are shown and tested in nbs/deployment/01_prediction_log.ipynb."""
import contextlib, sqlite3, subprocess, threading, time, uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import MLOPS_KIT_COMMAND, file_hash
from mlops_kit.data import load_case_study
from mlops_kit.design import simple_model
from mlops_kit.development import ModelRegistry
from mlops_kit.lifecycle import Criteria
from mlops_kit.deployment import (BackgroundServer, PredictionLog, RequestRecord, Retention, ServiceSettings, ServingError, create_app,
                                  drift_report, performance_report)

DAY = 86_400
NOW = pd.Timestamp("2025-06-01", tz="UTC")
CRITERIA = Criteria("recall >= 0.6", ["precision >= 0.2"])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service("postgresql"))])
def log_url(request, tmp_path):
    "Where a fresh prediction log goes: a SQLite file, or an empty PostgreSQL database"
    return str(tmp_path / "predictions.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")


RNG = np.random.default_rng(0)

def served(age_days: float, n_rows: int = 2, now: float = NOW.timestamp()) -> RequestRecord:
    "A served request of `n_rows` binary cases received `age_days` days before `now`, with random inputs and probabilities"
    rng, probability = RNG, RNG.random(n_rows)
    return RequestRecord(uuid.uuid4().hex, None, now - age_days * DAY, "predict", "churn", 1,
                         {"amount": rng.normal(100, 20, n_rows).round(2).tolist(), "plan": rng.choice(["basic", "pro"], n_rows).tolist()},
                         (probability >= 0.5).astype(int).tolist(), np.column_stack([1 - probability, probability]), 1.0,
                         classes=[0, 1], positive_label=1)


def fill(log: PredictionLog, ages, labelled=lambda record: record.ids, now: float = NOW.timestamp()) -> dict:
    "Record a request at each age (days before `now`), with labels for the cases `labelled(record)` names; request id -> (record, labelled ids)"
    rng, records = np.random.default_rng(1), {}
    for age in ages:
        record = served(age, now=now)
        log.record(record)
        ids = labelled(record)
        if ids: log.add_feedback({case: int(rng.random() < 0.3) for case in ids})
        records[record.request_id] = (record, set(ids))
    return records


def logged_requests(log: PredictionLog) -> set:
    return set(log.window()["request_id"])


def test_a_prune_removes_exactly_the_requests_outside_the_period(log_url):
    ages = list(np.random.default_rng(2).uniform(0, 60, 150)) + [30, 30 + 1e-6, 29.999]  # and either side of the boundary
    with PredictionLog(log_url) as log:
        records = fill(log, ages, labelled=lambda record: record.ids[:1] if int(record.request_id, 16) % 3 else [])
        received = {request_id: record.received_at for request_id, (record, _) in records.items()}
        kept = {request_id for request_id, at in received.items() if at >= NOW.timestamp() - 30 * DAY}
        gone = set(records) - kept
        expected = dict(requests=len(gone), cases=2 * len(gone), labels=sum(len(records[request_id][1]) for request_id in gone),
                        waiting_for_labels=0)
        assert log.prune(Retention(30), now=NOW, dry_run=True) == expected
        assert logged_requests(log) == set(records)  # the dry run removed nothing
        report = log.prune(Retention(30), now=NOW, batch_size=7)
        assert {key: report[key] for key in expected} == expected
        assert logged_requests(log) == kept
        assert log.counts() == dict(requests=len(kept), cases=2 * len(kept), labels=sum(len(records[request_id][1]) for request_id in kept))
        assert len(gone) > 50 and len(kept) > 50


def test_unlabelled_predictions_inside_the_label_delay_are_kept(log_url):
    "Retention(days=7, label_delay_days=30): a request 7 to 30 days old stays until every case has its label"
    ages = [2, 10, 10, 10, 20, 29.9, 30.1, 45, 45]
    labelling = iter([[], [], "half", "all", [], "half", [], [], "all"])
    def labelled(record):
        kind = next(labelling)
        return record.ids if kind == "all" else record.ids[:1] if kind == "half" else []
    with PredictionLog(log_url) as log:
        records = fill(log, ages, labelled)
        def stays(record, ids):
            age = (NOW.timestamp() - record.received_at) / DAY
            return age <= 7 or (age <= 30 and len(ids) < len(record.ids))
        kept = {request_id for request_id, (record, ids) in records.items() if stays(record, ids)}
        report = log.prune(Retention(7, label_delay_days=30), now=NOW)
        assert logged_requests(log) == kept
        assert (report["requests"], report["waiting_for_labels"]) == (len(records) - len(kept), 4)  # 10, 10 (half), 20, 29.9 (half)
        waiting = next(record for request_id, (record, ids) in records.items() if request_id in kept and not ids and record.received_at < NOW.timestamp() - 7 * DAY)
        assert log.add_feedback({waiting.ids[0]: 1}) == 1  # the late label still finds its prediction
        pruned = next(record for request_id, (record, _) in records.items() if request_id not in kept)
        with pytest.raises(ServingError, match="No prediction has the id"): log.add_feedback({pruned.ids[0]: 1})


def pg_table_bytes(url: str) -> int:
    import psycopg
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT pg_total_relation_size('requests') + pg_total_relation_size('feedback')").fetchone()[0]


def test_a_prune_gives_space_back(log_url):
    ages = np.linspace(60, 0.5, 240)
    with PredictionLog(log_url) as log:
        for age in ages: log.record(served(age, n_rows=300))
    if log_url.startswith("postgresql"):
        filled = pg_table_bytes(log_url)
        with PredictionLog(log_url) as log:
            log.prune(Retention(30), now=NOW)  # about half goes, then a plain VACUUM marks its space reusable
            for age in np.linspace(29, 0.5, 120): log.record(served(age, n_rows=300))  # as many again
        assert pg_table_bytes(log_url) < filled * 1.1, (filled, pg_table_bytes(log_url))  # the space was reused, not added
        return
    path = Path(log_url)
    filled = path.stat().st_size
    with PredictionLog(log_url) as log: report = log.prune(Retention(30), now=NOW)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert path.stat().st_size < filled * 0.6 and report["bytes_freed"] > filled * 0.4, (filled, path.stat().st_size, report)


def test_the_monitoring_of_the_retained_period_is_unchanged_by_a_prune(log_url):
    ages = np.sort(np.random.default_rng(3).uniform(0, 90, 300))[::-1]  # oldest first, as a service logs them
    rng = np.random.default_rng(4)
    with PredictionLog(log_url) as log:
        fill(log, ages, labelled=lambda record: [case for case in record.ids if rng.random() < 0.7])
        since = NOW - pd.Timedelta(days=30)
        reference = log.window(until=since)[["amount", "plan"]]
        def monitoring():
            window = log.window(since=since)
            performance = performance_report(window, CRITERIA, draws=20, seed=0)
            drift = drift_report(reference, window[["amount", "plan"]])
            return window, performance, drift.table(), log.window(last=100)
        before = monitoring()
        log.prune(Retention(30), now=NOW)
        after = monitoring()
    assert len(before[0]) > 100 and before[1].labelled > 50
    pd.testing.assert_frame_equal(before[0], after[0])
    assert (before[1].cases, before[1].labelled, before[1].positive_rate) == (after[1].cases, after[1].labelled, after[1].positive_rate)
    pd.testing.assert_frame_equal(before[1].evaluation, after[1].evaluation)
    assert before[1].estimated == after[1].estimated
    pd.testing.assert_frame_equal(before[2], after[2])
    pd.testing.assert_frame_equal(before[3], after[3])


@pytest.mark.parametrize("attempt, message", [
    (lambda log: log.prune(), "Give a Retention, e.g. Retention(days=30"),
    (lambda log: log.prune(Retention(0)), "Retention days must be a positive number of days, got 0"),
    (lambda log: log.prune(Retention(30, label_delay_days=-2)), "label_delay_days must be a zero or more number of days, got -2"),
    (lambda log: log.prune(Retention(30), now="last tuesday"), "now must be a time like"),
    (lambda log: log.prune(Retention(30), batch_size=0), "batch_size must be a positive integer"),
    (lambda log: log.prune(Retention(30), pause=float("nan")), "pause must be a number of seconds >= 0"),
    (lambda log: log.start_pruning(every=-1, retention=Retention(1)), "every must be a positive number of seconds, got -1"),
])
def test_bad_arguments_are_refused_and_nothing_is_deleted(log_url, attempt, message):
    with PredictionLog(log_url) as log:
        fill(log, [40, 20, 1])
        with pytest.raises(ServingError, match=message.replace("(", r"\(")): attempt(log)
        assert log.counts()["requests"] == 3 and not log.pruning


def mlops_kit(*arguments, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS_KIT_COMMAND, *map(str, arguments)], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_log_prune_on_the_command_line(tmp_path):
    path = tmp_path / "predictions.db"
    with PredictionLog(path) as log: fill(log, [40, 35, 10], labelled=lambda record: record.ids[:1], now=time.time())  # the command prunes at now
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    before = {file: file_hash(file) for file in [path, notes]}
    for arguments, message in [
            ([path, "--retention-days", "abc"], "argument --retention-days: must be a number of days > 0, got 'abc'"),
            ([path, "--retention-days", "-5"], "argument --retention-days: must be a number of days > 0, got '-5'"),
            ([path, "--retention-days", "30", "--label-delay-days", "inf"], "must be a number of days >= 0, got 'inf'"),
            ([path, "--retention-days", "30", "--batch-size", "0"], "argument --batch-size: must be a whole number >= 1, got '0'"),
            ([path], "the following arguments are required: --retention-days"),
            ([tmp_path / "nowhere.db", "--retention-days", "30"], "nowhere.db: no prediction log here"),
            ([notes, "--retention-days", "30"], "is not a SQLite database"),
            (["postgresql://me:secret@127.0.0.1:99999/logs", "--retention-days", "30"], "invalid port number")]:
        result = mlops_kit("log", "prune", *arguments, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert "secret" not in result.stderr
    assert {file: file_hash(file) for file in [path, notes]} == before and not (tmp_path / "nowhere.db").exists()
    result = mlops_kit("log", "prune", path, "--retention-days", "30", "--dry-run", cwd=tmp_path)
    assert result.stdout.strip() == "would remove 2 request(s) (4 case(s), 2 label(s)); 0 older request(s) kept, waiting for labels"
    assert file_hash(path) == before[path]
    result = mlops_kit("log", "prune", f"sqlite:///{path}", "--retention-days", "30", "--vacuum", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("removed 2 request(s) (4 case(s), 2 label(s))"), result.stdout + result.stderr
    with PredictionLog(path) as log: assert log.counts() == dict(requests=1, cases=2, labels=1)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    "A registry whose champion 'churn' v1 is the course's simple model; and rows of later months to send it"
    case_study = load_case_study(seed=42).clean_sample(3_000, seed=0)
    training = case_study.between(end="2024-07-01")
    model = simple_model(training.categorical, training.numerical).fit(training.X, training.y)
    registry = ModelRegistry(tmp_path_factory.mktemp("registry") / "models")
    version = registry.register(model, training, CRITERIA, {"recall": 0.7, "precision": 0.3}, name="churn", threshold=0.2)
    registry.promote("churn", version.version)
    return registry, case_study.between(start="2024-07-01").X.reset_index(drop=True)


def test_a_prune_while_requests_are_served_loses_no_request(log_url, registry):
    models, rows = registry
    log = PredictionLog(log_url)
    with log: backlog = list(fill(log, np.linspace(60, 2, 1_000), labelled=lambda record: []))
    log = PredictionLog(log_url)
    answered, failures, stop = [], [], threading.Event()
    with BackgroundServer(create_app(models, name="churn", log=log)) as client:
        def send(start: int):
            position = start
            while not stop.is_set():
                try: answered.extend(client.predict(rows.iloc[position % len(rows):position % len(rows) + 1 + position % 3])["id"])
                except Exception as error: failures.append(error)
                position += 7
        senders = [threading.Thread(target=send, args=(start,)) for start in range(4)]
        for sender in senders: sender.start()
        time.sleep(0.3)
        during = len(answered)
        log.start_pruning(every=0.01, retention=Retention(1), batch_size=50)  # what the service does at startup, now under load
        deadline = time.monotonic() + 120
        while log.prune(Retention(1), dry_run=True)["requests"] and time.monotonic() < deadline: time.sleep(0.1)  # until the backlog is gone
        time.sleep(0.3)
        stop.set()
        for sender in senders: sender.join()
    assert failures == [] and len(answered) > during > 0
    with PredictionLog(log_url) as reopened:  # the server closed its log
        logged = reopened.window()
    assert sorted(logged["id"]) == sorted(answered)  # every answered case, and nothing of the backlog
    assert not set(backlog) & set(logged["request_id"])


def test_a_service_with_a_retention_prunes_its_log(tmp_path, registry):
    models, rows = registry
    path = tmp_path / "predictions.db"
    with PredictionLog(path) as log:
        fill(log, [400, 300, 200], labelled=lambda record: [])
        old = logged_requests(log)
    settings = ServiceSettings(retention_days=100, label_delay_days=7, prune_every=0.05)
    with BackgroundServer(create_app(models, name="churn", log=path, settings=settings)) as client:
        served_ids = client.predict(rows.head(3))["id"].tolist()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with PredictionLog(path) as log:
                if not old & logged_requests(log): break
            time.sleep(0.1)
    with PredictionLog(path) as log:
        assert log.window()["id"].tolist() == served_ids


def test_a_label_committed_while_a_prune_removed_its_request_is_swept_by_the_next_prune(log_url):
    "The race: the service checked the prediction id, a prune removed the request, then the label was committed"
    import asyncio
    with PredictionLog(log_url) as log:
        records = fill(log, [40, 2], labelled=lambda record: [])
        old, recent = (record for record, _ in records.values())
        assert log.prune(Retention(30), now=NOW)["requests"] == 1
        asyncio.run(log.commit_feedback({old.ids[0]: 1, recent.ids[0]: 0}))  # the old request's label arrives late: an orphan
        assert log.counts() == dict(requests=1, cases=2, labels=2)
        report = log.prune(Retention(30), now=NOW)
        assert (report["requests"], report["labels"]) == (0, 1)
        assert log.counts() == dict(requests=1, cases=2, labels=1)  # the recent request keeps its label
        assert log.window()["label"].notna().sum() == 1
