"""Tests of `mlops_kit.monitoring` after drift: performance per window, alerts with a cooldown, and the monitoring loop.

What this file proves:
- `performance_report` measures the criteria exactly as scikit-learn and numpy do (labelled cases only; latency once
  per request); below `MIN_LABELS` labels it waits, keeping its estimate apart from measurements; the estimate is close
  to the truth for a calibrated model and blind to concept drift; bad windows raise a `DriftError` that says what to fix.
- `AlertPolicy` raises one alert per incident (same kind, overlapping subject, seen less than the cooldown before),
  a new one after a quiet gap longer than the cooldown, separate ones for other columns or kinds; it recommends
  'rethink' for a dataset drift and 'retrain' otherwise, journals exactly the alerts it raises, and its decisions move
  a deployed project back to the right phase.
- `MonitoringLoop` on the case study alerts exactly at the planted episodes, dates performance alerts by the label lag,
  cuts windows by time or by count, refuses bad windows, and reads a real service's `PredictionLog`.
- The figures draw one line per column / one axes per measured criterion, with the alerts as red dashed lines.
"""
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from sklearn.metrics import precision_score, recall_score

from conftest import REFERENCE_END
from mlops_kit.checklists import simple_model
from mlops_kit.lifecycle import Criteria, Phase, Project
from mlops_kit.monitoring import MIN_LABELS, AlertPolicy, DriftError, MonitoringLoop, drift_report, performance_report
from mlops_kit.registry import ModelRegistry
from mlops_kit.serving import BackgroundServer, PredictionLog, create_app

THRESHOLD = 0.2  # the case study's decision threshold: flag churn from this probability
LABEL_CRITERIA = Criteria("recall >= 0.6", ["precision >= 0.2"])
CRITERIA = Criteria("recall >= 0.6", ["precision >= 0.2", "latency_p95_ms <= 50"])
STREAM_END = "2026-01-01"
ESTIMATE_TOLERANCE = 0.03  # |estimated - measured| for a calibrated model without concept drift, on 6,000 cases
WEEK = pd.Timedelta("7D")
START = pd.Timestamp("2025-01-05")


# ---------------------------------------------------------------- shared data

def calibrated_cases(rows:int=6000, seed:int=0)->pd.DataFrame:
    "Predicted cases whose labels are drawn from their own probabilities (a calibrated model), in requests of varied size"
    rng = np.random.default_rng(seed)
    probability = rng.beta(1, 3, rows)
    sizes = np.resize([1, 1, 2, 5, 20, 50], rows)  # request sizes, cycled
    request_of_case = np.repeat(np.arange(rows), sizes)[:rows]
    request_latency = 2.0 + 0.5 * np.resize(sizes, request_of_case.max() + 1) + rng.exponential(3, request_of_case.max() + 1)
    return pd.DataFrame(dict(request_id=[f"r{number}" for number in request_of_case], probability=probability,
                             prediction=(probability >= THRESHOLD).astype(int), label=(rng.random(rows) < probability).astype(float),
                             latency_ms=request_latency[request_of_case]))


@pytest.fixture(scope="module")
def training(case):
    "The clean first half-year: what the model learns from"
    return case.clean_sample().between(end=REFERENCE_END)


@pytest.fixture(scope="module")
def model(training):
    return simple_model(training.categorical, training.numerical).fit(training.X, training.y)


@pytest.fixture(scope="module")
def stream(case, training, model):
    "2024-07..2025-12 scored at threshold 0.2, every label known, each case `received_at` its month"
    frame = case.frame[(case.frame.month >= REFERENCE_END) & (case.frame.month < STREAM_END)]
    probability = model.predict_proba(frame[training.features])[:, 1]
    return frame.assign(probability=probability, prediction=(probability >= THRESHOLD).astype(int), label=frame.churned,
                        latency_ms=5.0).rename(columns={"month": "received_at"})


def monthly_loop(reference, stream, label_lag:str="31D", window="MS")->MonitoringLoop:
    return MonitoringLoop(reference, CRITERIA, list(reference.columns), window=window, label_lag=label_lag,
                          policy=AlertPolicy("60D")).run(stream)


@pytest.fixture(scope="module")
def loop(reference, stream):
    return monthly_loop(reference, stream)


# ---------------------------------------------------------------- 1. performance of a window

def test_measured_metrics_equal_sklearn_and_numpy():
    "recall and precision on the labelled cases only; latency p95 over requests, each request counted once"
    cases = calibrated_cases()
    cases.loc[cases.index % 3 == 0, "label"] = np.nan  # a third of the labels have not arrived
    report = performance_report(cases, CRITERIA, "test window", draws=0)
    labelled = cases.dropna(subset=["label"])
    latencies = cases.drop_duplicates("request_id").latency_ms
    assert report.labelled == len(labelled) and report.cases == len(cases)
    assert report.measured["recall"] == pytest.approx(recall_score(labelled.label.astype(int), labelled.prediction))
    assert report.measured["precision"] == pytest.approx(precision_score(labelled.label.astype(int), labelled.prediction))
    assert report.measured["latency_p95_ms"] == pytest.approx(np.percentile(latencies, 95))
    assert report.measured["latency_p95_ms"] != pytest.approx(np.percentile(cases.latency_ms, 95))  # per case would differ
    assert report.positive_rate == pytest.approx(cases.prediction.mean())


def test_status_and_failing_follow_the_criteria():
    cases = calibrated_cases()
    met = performance_report(cases, LABEL_CRITERIA, draws=0)
    failed = performance_report(cases.assign(prediction=(cases.probability >= 0.6).astype(int)), LABEL_CRITERIA, draws=0)
    assert (met.status, met.failing) == ("criteria met", [])
    assert (failed.status, failed.failing) == ("criteria failed", ["recall"])
    assert "FAILS" in failed.explain() and "recall" in repr(failed)


def test_fewer_than_min_labels_waits_with_a_separate_estimate():
    "MIN_LABELS - 1 labels: nothing measured, an estimate given apart; MIN_LABELS labels: measured"
    cases = calibrated_cases(rows=400)
    few = cases.assign(label=np.where(np.arange(len(cases)) < MIN_LABELS - 1, cases.label, np.nan))
    enough = cases.assign(label=np.where(np.arange(len(cases)) < MIN_LABELS, cases.label, np.nan))
    waiting = performance_report(few, LABEL_CRITERIA, "few labels", draws=20)
    assert (waiting.status, waiting.labelled, waiting.measured, waiting.failing) == ("waiting for labels", MIN_LABELS - 1, {}, [])
    assert waiting.evaluation.empty
    assert set(waiting.estimated) == {"recall", "precision"}
    assert all(set(value) == {"estimate", "spread"} and 0 <= value["estimate"] <= 1 for value in waiting.estimated.values())
    details = waiting.explain().splitlines()[1:]
    assert len(details) == 2 and all("estimated" in line and "not measured" in line for line in details)
    assert performance_report(enough, LABEL_CRITERIA, draws=0).status != "waiting for labels"


def test_unmeasured_label_criteria_are_not_reported_as_met():
    "With a latency criterion too, a window without labels still waits for them: recall was not measured, so not met"
    cases = calibrated_cases(rows=400).assign(label=np.nan)
    report = performance_report(cases, CRITERIA, draws=0)
    assert "recall" not in report.measured
    assert report.status == "waiting for labels", f"status {report.status!r} although recall and precision are unmeasured"


def test_no_estimate_when_draws_is_zero():
    report = performance_report(calibrated_cases(rows=300), LABEL_CRITERIA, draws=0)
    assert report.estimated == {} and "estimated" not in report.explain()


def test_estimate_is_close_to_the_truth_for_a_calibrated_model():
    "Labels drawn from the probabilities themselves: the estimate lands within ESTIMATE_TOLERANCE of the measurement"
    report = performance_report(calibrated_cases(seed=1), LABEL_CRITERIA, draws=100, seed=7)
    for metric in ("recall", "precision"):
        assert abs(report.estimated[metric]["estimate"] - report.measured[metric]) <= ESTIMATE_TOLERANCE, metric
        assert 0 < report.estimated[metric]["spread"] < ESTIMATE_TOLERANCE


def test_estimate_is_seeded():
    cases = calibrated_cases(rows=300)
    estimate = lambda seed: performance_report(cases, LABEL_CRITERIA, draws=10, seed=seed).estimated
    assert estimate(3) == estimate(3) != estimate(4)


def test_estimate_misses_concept_drift():
    "Labels flipped for a subgroup (same inputs, same probabilities): measured recall drops, the estimate does not move"
    cases = calibrated_cases(seed=2)
    subgroup = np.random.default_rng(5).random(len(cases)) < 0.4
    drifted = cases.assign(label=np.where(subgroup, 1 - cases.label, cases.label))
    before, after = (performance_report(frame, LABEL_CRITERIA, draws=50) for frame in (cases, drifted))
    assert after.measured["recall"] < before.measured["recall"] - 0.2
    assert after.estimated == before.estimated
    assert after.estimated["recall"]["estimate"] > after.measured["recall"] + 0.2
    assert after.failing == ["recall"]


@pytest.mark.parametrize("window, message", [
    ([{"prediction": 1, "probability": 0.9}], "must be a DataFrame"),
    (None, "must be a DataFrame"),
    (pd.DataFrame(dict(probability=[0.1])), "'prediction'"),
    (pd.DataFrame(dict(prediction=[1])), "'probability'"),
    (pd.DataFrame(dict(label=[1])), "PredictionLog.window()"),
])
def test_bad_windows_raise_a_clear_drift_error(window, message):
    with pytest.raises(DriftError, match=re.escape(message)):
        performance_report(window, LABEL_CRITERIA)


# ---------------------------------------------------------------- 2. alerts and their cooldown

COLUMNS = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def drift_reference():
    return pd.DataFrame(np.random.default_rng(0).normal(size=(2000, len(COLUMNS))), columns=COLUMNS)


@pytest.fixture(scope="module")
def drift_of(drift_reference):
    "drift_of(*columns): the drift report of a window in which those columns (only) shifted by 2 standard deviations"
    unshifted = pd.DataFrame(np.random.default_rng(1).normal(size=(1000, len(COLUMNS))), columns=COLUMNS)
    def report(*columns):
        current = unshifted.copy()
        current[list(columns)] += 2.0
        return drift_report(drift_reference, current)
    return report


def failing_recall(name:str="window"):
    "A window's performance with recall 0.2 (fails >= 0.6) and precision 1.0 (passes)"
    label = np.repeat([1.0, 0.0], 50)
    prediction = (np.arange(100) < 10).astype(int)
    return performance_report(pd.DataFrame(dict(label=label, prediction=prediction, probability=0.05 + 0.9 * prediction)),
                              LABEL_CRITERIA, name, draws=0)


def week(number:int)->tuple:
    "(name, end) of the `number`th weekly window"
    return f"week {number}", START + number * WEEK


def raised_weeks(policy:AlertPolicy)->list:
    return [(alert.kind, alert.window) for alert in policy.raised]


def test_reports_call_for_the_alerts_they_should(drift_of):
    assert drift_of().drifted_columns == [] and drift_of("a").drifted_columns == ["a"]
    assert drift_of("a", "b").dataset_drift and not drift_of("a").dataset_drift
    assert failing_recall().failing == ["recall"]


def test_a_problem_over_consecutive_windows_raises_one_alert(drift_of):
    "Six windows a week apart, a 20-day cooldown: one alert, though the last window is 35 days after it"
    policy = AlertPolicy("20D")
    new = [policy.consider(*week(number), drift=drift_of("a")) for number in range(6)]
    assert [len(alerts) for alerts in new] == [1, 0, 0, 0, 0, 0]
    assert raised_weeks(policy) == [("column drift", "week 0")]


def test_quiet_gap_longer_than_the_cooldown_starts_a_new_incident(drift_of):
    policy = AlertPolicy("20D")
    for number in [0, 1, 2]: policy.consider(*week(number), drift=drift_of("a"))
    for number in [3, 4, 5]: assert policy.consider(*week(number), drift=drift_of()) == []  # quiet for 28 days
    policy.consider(*week(6), drift=drift_of("a"))
    assert raised_weeks(policy) == [("column drift", "week 0"), ("column drift", "week 6")]


def test_quiet_gap_shorter_than_the_cooldown_continues_the_incident(drift_of):
    policy = AlertPolicy("20D")
    policy.consider(*week(0), drift=drift_of("a"))
    policy.consider(*week(1), drift=drift_of())
    policy.consider(*week(2), drift=drift_of("a"))  # 14 days after it was last seen
    assert raised_weeks(policy) == [("column drift", "week 0")]


def test_zero_cooldown_alerts_every_window(drift_of):
    policy = AlertPolicy("0D")
    for number in range(3): policy.consider(*week(number), drift=drift_of("a"))
    assert len(policy.raised) == 3


def test_other_columns_and_other_kinds_raise_separate_alerts(drift_of):
    "A new column is a new incident, and so is a failing criterion while a column drifts; repeats of each are suppressed"
    policy = AlertPolicy("20D")
    policy.consider(*week(0), drift=drift_of("a"))
    policy.consider(*week(1), drift=drift_of("b"))
    policy.consider(*week(2), drift=drift_of("b"), performance=failing_recall("week 2"))
    policy.consider(*week(3), drift=drift_of("b"), performance=failing_recall("week 3"))
    assert [(alert.kind, alert.window, alert.subject) for alert in policy.raised] == [
        ("column drift", "week 0", ("a",)), ("column drift", "week 1", ("b",)), ("performance", "week 2", ("recall",))]


def test_dataset_drift_recommends_rethink_and_failing_criteria_retrain(drift_of):
    policy = AlertPolicy("20D")
    dataset, = policy.consider(*week(0), drift=drift_of("a", "b"))
    column, = policy.consider(*week(1), drift=drift_of("c"))
    performance, = policy.consider(*week(2), performance=failing_recall("week 2"))
    assert (dataset.kind, dataset.recommendation, set(dataset.subject)) == ("dataset drift", "rethink", {"a", "b"})
    assert (column.kind, column.recommendation, column.subject) == ("column drift", "retrain", ("c",))
    assert (performance.kind, performance.recommendation, performance.subject) == ("performance", "retrain", ("recall",))
    for alert, return_to in [(dataset, Phase.design), (column, Phase.development), (performance, Phase.development)]:
        decision = alert.decision(author="on-call")
        assert (decision.phase, decision.verdict, decision.return_to) == (Phase.deployment, "iterate", return_to)
        assert (decision.evidence, decision.metrics, decision.author) == (alert.evidence, {"window": alert.window}, "on-call")
    assert "recall = 0.2" in performance.evidence and "needs >= 0.6" in performance.evidence
    assert "2 of 4 columns drifted" in dataset.evidence


def test_alert_to_dict_is_plain_json(drift_of):
    alert, = AlertPolicy().consider("week 0", START, drift=drift_of("a"))
    assert alert.to_dict() == dict(kind="column drift", window="week 0", at=START.isoformat(), recommendation="retrain",
                                   subject=["a"], evidence=alert.evidence)


def test_raised_alerts_are_journaled_and_suppressed_ones_are_not(tmp_path, drift_of):
    project = Project(tmp_path / "churn.journal.json")
    policy = AlertPolicy("20D", project=project)
    for number in range(3): policy.consider(*week(number), drift=drift_of("a"), performance=failing_recall(f"week {number}"))
    policy.consider(*week(3), drift=drift_of("a", "b"))
    records = project.records("alert")
    assert len(policy.raised) == 3 and len(records) == 3
    assert [record.data for record in records] == [alert.to_dict() for alert in policy.raised]
    assert [record.name for record in records] == ["performance", "column_drift", "dataset_drift"]
    assert all(record.data["evidence"] for record in records)
    assert Project.open(project.path).records("alert") == records  # on disk, not only in memory


def test_alert_decisions_move_a_deployed_project_back(tmp_path, drift_of):
    "Through the design and development gates first; then retrain -> development, rethink -> design"
    project = Project(tmp_path / "churn.journal.json")
    policy = AlertPolicy("20D", project=project)
    retrain, = policy.consider(*week(0), performance=failing_recall("week 0"))
    rethink, = policy.consider(*week(1), drift=drift_of("a", "b", "c"))
    with pytest.raises(ValueError, match="design phase"):
        project.add_decision(retrain.decision())  # a deployment decision while the project is still in design
    project.decide("go", "criteria agreed")
    project.decide("go", "model v1 meets the criteria")
    assert project.phase == Phase.deployment
    project.add_decision(retrain.decision())
    assert project.phase == Phase.development
    project.decide("go", "retrained model v2 meets the criteria")
    project.add_decision(rethink.decision())
    assert project.phase == Phase.design
    assert [decision.evidence for decision in project.decisions[-3::2]] == [retrain.evidence, rethink.evidence]


@pytest.mark.parametrize("cooldown", ["soon", "-1D", pd.Timedelta("-1h"), [], None, float("nan"), "NaT"])
def test_bad_cooldown_raises_drift_error(cooldown):
    "None, NaN and 'NaT' would silently mean 'no incident ever continues'"
    with pytest.raises(DriftError, match="cooldown"):
        AlertPolicy(cooldown)


# ---------------------------------------------------------------- 3. the loop on the case study

def end_of(month:str)->pd.Timestamp: return pd.Period(month, "M").end_time


def test_loop_alerts_exactly_at_the_planted_episodes(case, loop):
    """Unit incident 2025-02 (drift on monthly_charges, and precision once labels arrive), spring campaign 2025-04..06 (one
    drift alert on contract_type and tenure_months), concept drift from 2025-09 (recall, once labels arrive)"""
    assert [(alert.kind, alert.window, alert.subject, alert.recommendation) for alert in loop.alerts_] == [
        ("column drift", "2025-02", ("monthly_charges",), "retrain"), ("performance", "2025-02", ("precision",), "retrain"),
        ("column drift", "2025-04", ("contract_type", "tenure_months"), "retrain"), ("performance", "2025-09", ("recall",), "retrain")]
    starts = {problem.kind: problem.start for problem in case.ground_truth}
    assert min(alert.at for alert in loop.alerts_) >= starts["quality_incident"] == pd.Timestamp("2025-02-01")
    assert [alert.window for alert in loop.alerts_ if alert.kind == "column drift"] == [
        starts["quality_incident"].strftime("%Y-%m"), starts["covariate_drift"].strftime("%Y-%m")]


def test_concept_drift_is_caught_by_performance_once_labels_arrive(case, reference, stream, loop):
    "No drift alert from 2025-07 (inputs unchanged); the recall alert is dated the label lag after September's end"
    concept = case.ground_truth.of_kind("concept_drift")[0]
    assert concept.start == pd.Timestamp("2025-09-01")
    assert [alert for alert in loop.alerts_ if alert.kind != "performance" and alert.at >= pd.Timestamp("2025-07-01")] == []
    late, = [alert for alert in loop.alerts_ if alert.kind == "performance" and alert.at > concept.start]
    assert (late.window, late.subject, late.at) == ("2025-09", ("recall",), end_of("2025-09") + pd.Timedelta("31D"))
    at_once, = [alert for alert in monthly_loop(reference, stream, label_lag="0D").alerts_
                if alert.kind == "performance" and alert.at > concept.start]
    assert (at_once.window, at_once.at) == ("2025-09", end_of("2025-09"))


def test_loop_keeps_one_row_per_window_and_column(loop, reference):
    months = [period.strftime("%Y-%m") for period in pd.period_range("2024-07", "2025-12", freq="M")]
    assert loop.performance_.window.tolist() == months
    assert (loop.performance_.cases == 1500).all() and (loop.performance_.labelled == 1500).all()
    assert len(loop.drift_) == len(months) * reference.shape[1]
    assert set(loop.drift_.column) == set(reference.columns)
    assert loop.alerts().columns.tolist() == ["kind", "window", "at", "recommendation", "subject", "evidence"]
    assert len(loop.alerts()) == len(loop.alerts_)


def test_windows_by_count_match_the_months(reference, stream):
    "Every month holds 1,500 cases, so windows of 1,500 cases are the months again, with the same alerts"
    assert (stream.groupby("received_at").size() == 1500).all()
    by_count = monthly_loop(reference, stream, window=1500)
    assert len(by_count.performance_) == stream.received_at.nunique() == 18
    assert by_count.performance_.window.iloc[1] == "cases 1501-3000"
    assert [(alert.kind, alert.subject) for alert in by_count.alerts_] == [
        ("column drift", ("monthly_charges",)), ("performance", ("precision",)),
        ("column drift", ("contract_type", "tenure_months")), ("performance", ("recall",))]


def test_window_counts_leave_a_shorter_last_window(reference, stream):
    by_count = MonitoringLoop(reference, LABEL_CRITERIA, window=4000).run(stream.head(9000))
    assert by_count.performance_.cases.tolist() == [4000, 4000, 1000]
    assert by_count.performance_.window.iloc[-1] == "cases 8001-9000"


@pytest.mark.parametrize("window", [0, -1500, 1.5, True, None, ["MS"], "fortnightly"])
def test_bad_windows_raise_drift_error(reference, stream, window):
    with pytest.raises(DriftError, match="window|frequency"):
        MonitoringLoop(reference, CRITERIA, window=window).run(stream.head(100))


def test_weekly_windows_are_seven_days_long():
    "window='7D' (the documented example) cuts seven-day windows, not daily ones"
    cases = pd.DataFrame(dict(received_at=pd.date_range("2025-01-06", periods=28, freq="D"), x=np.arange(28.0),
                              prediction=0, probability=0.1))
    weekly = MonitoringLoop(cases[["x"]], LABEL_CRITERIA, ["x"], window="7D").run(cases)
    assert weekly.performance_.cases.tolist() == [7, 7, 7, 7]


def test_loop_refuses_other_things_than_cases(reference, stream):
    with pytest.raises(DriftError, match="DataFrame of cases or a PredictionLog"):
        MonitoringLoop(reference, CRITERIA).run([1, 2, 3])
    with pytest.raises(DriftError, match="time_column"):
        MonitoringLoop(reference, CRITERIA, time_column="predicted_at").run(stream.head(100))


@pytest.mark.parametrize("window", ["MS", 1500])
def test_loop_over_no_cases_gives_no_windows_and_no_alerts(reference, stream, window):
    empty = MonitoringLoop(reference, CRITERIA, window=window).run(stream.iloc[:0])
    assert (empty.reports_, empty.alerts_, len(empty.performance_), len(empty.drift_)) == ([], [], 0, 0)
    assert empty.alerts().empty


# ---------------------------------------------------------------- 4. the loop reads a real service's log

def test_loop_reads_a_real_prediction_log(tmp_path, case, training, model):
    "A clean month, then the same customers with charges in cents: the second window raises drift on monthly_charges"
    registry = ModelRegistry(tmp_path / "models")
    version = registry.register(model, training, LABEL_CRITERIA, {"recall": 0.7, "precision": 0.3}, name="churn", threshold=THRESHOLD)
    registry.promote("churn", version.version)
    clean = case.clean_sample().between(start="2024-07-01", end="2024-08-01").frame.reset_index(drop=True)
    in_cents = clean.assign(monthly_charges=clean.monthly_charges * 100)
    log_path = tmp_path / "predictions.db"
    with BackgroundServer(create_app(registry, name="churn", log=log_path)) as client:
        for batch in (clean, in_cents):
            answer = client.predict(batch)
            assert client.feedback(dict(zip(answer.id, batch.churned))) == len(batch)
    with PredictionLog(log_path) as log:
        watched = MonitoringLoop(training.X, CRITERIA, window=len(clean), time_column="received_at").run(log)
    assert watched.performance_.cases.tolist() == [len(clean), len(clean)]
    assert watched.performance_.labelled.tolist() == [len(clean), len(clean)]
    drift_alerts = [alert for alert in watched.alerts_ if "drift" in alert.kind]
    assert [(alert.kind, alert.window, alert.subject) for alert in drift_alerts] == [
        ("column drift", f"cases {len(clean) + 1}-{2 * len(clean)}", ("monthly_charges",))]
    assert set(watched.drift_.column) == set(training.features)


# ---------------------------------------------------------------- 5. figures

def red_dashed_lines(axes)->list:
    return [line for line in axes.get_lines() if line.get_linestyle() == "--" and to_rgba(line.get_color()) == to_rgba("tab:red")]


def test_plot_drift_draws_each_column_and_the_drift_alerts(loop, reference):
    figure = loop.plot_drift()
    try:
        assert isinstance(figure, plt.Figure) and len(figure.axes) == 1
        axes, = figure.axes
        assert sorted(line.get_label() for line in axes.get_lines() if not line.get_label().startswith("_")) == sorted(reference.columns)
        drift_alerts = [alert for alert in loop.alerts_ if "drift" in alert.kind]
        assert len(red_dashed_lines(axes)) == len(drift_alerts) == 2
    finally: plt.close(figure)


def test_plot_performance_draws_one_axes_per_measured_criterion(loop):
    figure = loop.plot_performance()
    try:
        assert isinstance(figure, plt.Figure)
        assert [axes.get_ylabel() for axes in figure.axes] == ["recall", "precision", "latency_p95_ms"]
        performance_alerts = [alert for alert in loop.alerts_ if alert.kind == "performance"]
        assert [len(red_dashed_lines(axes)) for axes in figure.axes] == [len(performance_alerts)] * 3 == [2] * 3
    finally: plt.close(figure)


# ---------------------------------------------------------------- issue 13: careless inputs get a DriftError naming them

import hashlib


def file_hash(path)->str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("change, message", [
    (lambda cases: cases.assign(prediction=cases.probability), "The prediction column must hold the predicted labels, the labels 0 and 1"),
    (lambda cases: cases.assign(prediction=cases.probability), "They look like probabilities: put them in the `probability` column"),
    (lambda cases: cases.assign(label=cases.probability), "The label column must hold the true labels"),
    (lambda cases: cases.assign(label=np.where(cases.label == 1, "churned", "stayed")), "Map your labels to 0 and 1 first"),
    (lambda cases: cases.assign(label=cases.label * 2), "e.g. 2.0"),
    (lambda cases: cases.assign(prediction=np.nan), "The prediction column has 6,000 missing values"),
    (lambda cases: cases.assign(probability=cases.probability * 100), "The probability column must hold numbers from 0 to 1 for every case"),
    (lambda cases: cases.assign(probability="high"), "e.g. 'high'"),
    (lambda cases: cases.assign(latency_ms="fast"), "The latency_ms column must hold numbers (milliseconds)"),
])
def test_a_window_that_is_not_labels_and_probabilities_is_refused_by_name(change, message):
    "Before issue 13, probabilities in `prediction` were cut to 0 by astype(int) and the report said recall 0"
    with pytest.raises(DriftError) as raised: performance_report(change(calibrated_cases()), CRITERIA, draws=0)
    assert message in str(raised.value)


def test_labels_as_booleans_or_floats_with_gaps_are_fine():
    cases = calibrated_cases()
    as_booleans = performance_report(cases.assign(prediction=cases.prediction.astype(bool)), LABEL_CRITERIA, draws=0)
    assert as_booleans.measured == performance_report(cases, LABEL_CRITERIA, draws=0).measured


@pytest.mark.parametrize("arguments, message", [
    (dict(criteria="recall >= 0.6"), "criteria must be a mlops_kit.lifecycle.Criteria, got str"),
    (dict(draws=-1), "`draws` must be a whole number from 0 to 100,000, got -1"), (dict(draws="100"), "`draws` must be a whole number"),
    (dict(draws=1e20), "`draws` must be a whole number from 0 to 100,000"),
    (dict(seed=-1), "`seed` must be a whole number from 0 to 4,294,967,295"), (dict(name=7), "name must be text")])
def test_performance_report_arguments_are_checked(arguments, message):
    with pytest.raises(DriftError) as raised: performance_report(calibrated_cases(), **{"criteria": CRITERIA, **arguments})
    assert message in str(raised.value)


@pytest.mark.parametrize("cooldown, message", [(60, "a bare number has no unit, got 60"), ("soon", "cooldown must be a duration"),
                                               ("-1D", "cooldown must not be negative"), (None, "cooldown must be a duration")])
def test_alert_policy_cooldowns_are_checked(cooldown, message):
    with pytest.raises(DriftError) as raised: AlertPolicy(cooldown)
    assert message in str(raised.value)


def test_alert_policy_refuses_what_is_not_a_journal_or_a_report():
    with pytest.raises(DriftError, match="project must be a mlops_kit.lifecycle.Project"): AlertPolicy(project="churn.journal.json")
    with pytest.raises(DriftError, match="`at` must be a date"): AlertPolicy().consider("week 0", "next week")
    with pytest.raises(DriftError, match="drift must be a DriftReport or None, got dict"): AlertPolicy().consider("week 0", START, drift={})


@pytest.mark.parametrize("settings, message", [
    (dict(window="0D"), "must cover a positive length of time"), (dict(window="-7D"), "must cover a positive length of time"),
    (dict(window="month"), "is not a pandas frequency"), (dict(window=0), "window must be at least 1 case"),
    (dict(window=1.5), "window must be a number of cases"), (dict(label_lag="x"), "label_lag must be a duration"),
    (dict(label_lag="-1D"), "label_lag must not be negative"), (dict(features=[]), "features must be a non-empty list"),
    (dict(features="tenure_months"), "features must be a non-empty list"), (dict(features=["tenure"]), "Did you mean 'tenure_months'"),
    (dict(drift_options={"foo": 1}), "drift_options must be a dict with some of the keys"), (dict(policy="60D"), "policy must be an AlertPolicy"),
    (dict(criteria="recall >= 0.6"), "criteria must be a mlops_kit.lifecycle.Criteria"),
    (dict(reference=pd.DataFrame()), "reference must be a DataFrame of training features with rows, got a DataFrame with 0 rows")])
def test_loop_settings_are_checked_before_any_window(reference, stream, settings, message):
    arguments = {**dict(reference=reference, criteria=CRITERIA, features=list(reference.columns), window="MS"), **settings}
    with pytest.raises(DriftError) as raised: MonitoringLoop(**arguments).run(stream.head(3000))
    assert message in str(raised.value)


@pytest.mark.parametrize("times, message", [(lambda cases: range(len(cases)), "holds numbers (int64), not dates"),
                                            (lambda cases: "last week", "holds values that are not dates, e.g. 'last week'"),
                                            (lambda cases: pd.NaT, "3,000 cases have no time in 'received_at'")])
def test_loop_refuses_times_that_are_not_dates(reference, stream, times, message):
    cases = stream.head(3000)
    with pytest.raises(DriftError) as raised: MonitoringLoop(reference, CRITERIA).run(cases.assign(received_at=times(cases)))
    assert message in str(raised.value)


def test_loop_results_before_run_are_a_clear_error(reference):
    loop = MonitoringLoop(reference, CRITERIA)
    for action in [loop.alerts, loop.plot_drift, loop.plot_performance]:
        with pytest.raises(DriftError, match=r"call loop.run\(cases\) first"): action()


def test_a_bad_late_window_leaves_the_journal_as_it_was(tmp_path, reference, stream):
    "The monitoring loop reports every window before it records an alert: a failure in the last month records nothing"
    project = Project(tmp_path / "churn.journal.json")
    project.add_record("note", "start", {"text": "monitoring begins"})
    before = file_hash(project.path)
    stray = (stream.received_at == stream.received_at.max()) & (np.arange(len(stream)) % 10 == 0)  # a tenth of the last month
    broken = stream.assign(tenure_months=stream.tenure_months.astype(object).where(~stray, "n/a"))
    with pytest.raises(DriftError, match="Column 'tenure_months' of the current window mixes values of different types"):
        MonitoringLoop(reference, CRITERIA, window="MS", policy=AlertPolicy("60D", project=project)).run(broken)
    assert file_hash(project.path) == before and Project.open(project.path).records("alert") == []
    assert len(MonitoringLoop(reference, CRITERIA, window="MS", policy=AlertPolicy("60D", project=project)).run(stream).alerts_) > 0
    assert file_hash(project.path) != before  # the same loop on good cases does record its alerts


def test_a_window_that_would_cut_the_cases_into_too_many_pieces_is_refused(reference, stream):
    "'1s' over 18 months would be 47 million windows: a mistake, refused before any work rather than a hang"
    with pytest.raises(DriftError, match=r"window '1s' would cut the cases' .* into about [\d,]+ windows, more than 10,000"):
        MonitoringLoop(reference, CRITERIA, window="1s").run(stream)
