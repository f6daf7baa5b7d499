"""Tests of `mlops_kit.deployment` after drift: performance per window, alerts with a cooldown, and the monitoring loop.

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
- The figures draw one line per column / one axes per measured criterion, with the alerts as red dashed lines in the
  legend; each window at the start of the period it covers and each alert at the window the alerts table gives; the
  drift lines differ by marker as well as by colour.
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

from conftest import REFERENCE_END, file_hash, folder_hashes
from mlops_kit.design import simple_model
from mlops_kit.lifecycle import Criteria, Phase, Project
from mlops_kit.deployment import MIN_LABELS, AlertPolicy, DriftError, MonitoringLoop, drift_report, performance_report
from mlops_kit.loop_back import RetrainingError
from mlops_kit.errors import MlopsKitError
from mlops_kit.development import ModelRegistry
from mlops_kit.deployment import BackgroundServer, PredictionLog, create_app

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
    note, *details = waiting.explain().splitlines()[1:]
    assert note == f"- {MIN_LABELS - 1} labelled cases, fewer than min_labels ({MIN_LABELS}): not measured."
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

MARKS = {"threshold", "alert, at its window"}  # the legend's entries that are not a column


def column_labels(axes)->list:
    return sorted(line.get_label() for line in axes.get_lines() if not line.get_label().startswith("_") and line.get_label() not in MARKS)


def red_dashed_lines(axes)->list:
    return [line for line in axes.get_lines() if line.get_linestyle() == "--" and to_rgba(line.get_color()) == to_rgba("tab:red")]


def test_plot_drift_draws_each_column_and_the_drift_alerts(loop, reference):
    figure = loop.plot_drift()
    try:
        assert isinstance(figure, plt.Figure) and len(figure.axes) == 1
        axes, = figure.axes
        assert column_labels(axes) == sorted(reference.columns)
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


def line_date(line)->pd.Timestamp:
    "Where a line of a figure starts on its time axis"
    return pd.Timestamp(line.get_xdata()[0])


def test_figures_date_each_window_and_alert_in_the_month_the_report_gives(loop):
    "February's incident stands at February, not at the end of the window (2025-03 on the axis) nor when its labels came"
    report, figures = loop.alerts(), (loop.plot_drift(), loop.plot_performance())
    try:
        drift_axes, performance_axes = figures[0].axes[0], figures[1].axes
        month_start = lambda windows: [pd.Period(window, "M").start_time for window in windows]
        assert [line_date(line) for line in red_dashed_lines(drift_axes)] == month_start(report.window[report.kind.str.endswith("drift")]) \
            == month_start(["2025-02", "2025-04"])
        for axes in performance_axes:
            assert [line_date(line) for line in red_dashed_lines(axes)] == month_start(report.window[report.kind == "performance"]) \
                == month_start(["2025-02", "2025-09"])
            measured, = [line for line in axes.get_lines() if line.get_label() == "measured"]
            assert list(pd.to_datetime(measured.get_xdata())) == month_start(loop.performance_.window)
        for line in drift_axes.get_lines()[:3]:
            assert list(pd.to_datetime(line.get_xdata())) == month_start(loop.drift_.window.unique()), line.get_label()
        for axes in [drift_axes, *performance_axes]:
            legend = [text.get_text() for text in axes.get_legend().get_texts()]
            assert legend.count("alert, at its window") == 1 and "threshold" in legend
    finally:
        for figure in figures: plt.close(figure)


def test_drift_lines_differ_by_marker_and_colour_blind_safe_colour(loop, reference):
    figure = loop.plot_drift()
    try:
        columns = [line for line in figure.axes[0].get_lines() if line.get_label() in set(reference.columns)]
        assert len(columns) == len(reference.columns) and len({line.get_marker() for line in columns}) == len(columns)
        okabe_ito = {to_rgba(colour) for colour in ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442"]}
        assert {to_rgba(line.get_color()) for line in columns} <= okabe_ito
    finally: plt.close(figure)


# ---------------------------------------------------------------- issue 13: careless inputs get a DriftError naming them

import hashlib


@pytest.mark.parametrize("change, message", [
    (lambda cases: cases.assign(prediction=cases.probability), "The prediction column must hold the predicted labels, the two labels of a binary model"),
    (lambda cases: cases.assign(prediction=cases.probability), "They look like probabilities: put them in the `probability` column"),
    (lambda cases: cases.assign(label=cases.probability), "The label column must hold the true labels"),
    (lambda cases: cases.assign(label=np.where(cases.label == 1, "churned", "stayed")), "Predictions and labels must name the classes the same way"),
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
    with pytest.raises(MlopsKitError) as raised: performance_report(calibrated_cases(), **{"criteria": CRITERIA, **arguments})
    assert message in str(raised.value)


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


# ---------------------------------------------------------------- issue 14: every task, labels keep their values

import inspect

from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, log_loss, mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_kit.data import Dataset, load_real_dataset
from mlops_kit.errors import MlopsKitError
from mlops_kit.deployment import ALERT_KINDS, output_drift
from mlops_kit.loop_back import retrain

MONTHS = pd.date_range("2024-01-01", periods=18, freq="MS")
SHIFT = ["2024-10", "2024-11"]  # the inputs shift (x1 up): input, prediction and target drift
CONCEPT = ["2025-03", "2025-04"]  # same inputs, labels one tier up more often: target drift and a performance failure only
TIER_FEATURES = ["x1", "x2", "colour"]
TIER_CRITERIA = Criteria("f1_macro >= 0.7", ["log_loss <= 0.8"])


def orders(rows_per_month:int=400, seed:int=0)->pd.DataFrame:
    "A multiclass data set with a date column and missing values: each month's customers, their tier bronze, silver or gold"
    rng = np.random.default_rng(seed)
    month = MONTHS.repeat(rows_per_month)
    shifted, concept = np.isin(month.strftime("%Y-%m"), SHIFT), np.isin(month.strftime("%Y-%m"), CONCEPT)
    x1, x2 = rng.normal(0, 1, len(month)) + 1.2 * shifted, rng.normal(0, 1, len(month))
    colour = rng.choice(["red", "green", "blue"], len(month), p=[0.5, 0.3, 0.2])
    score = 1.5 * x1 + x2 + np.select([colour == "red", colour == "green"], [0.0, 0.5], 1.0) + rng.normal(0, 0.7, len(month)) + 1.5 * concept
    frame = pd.DataFrame(dict(month=month, x1=x1, x2=x2, colour=colour, tier=np.select([score < -0.5, score < 1.5], ["bronze", "silver"], "gold")))
    frame.loc[rng.random(len(frame)) < 0.05, "x1"] = np.nan
    frame.loc[rng.random(len(frame)) < 0.05, "colour"] = None
    return frame


def tier_model(training:pd.DataFrame):
    prepare = make_column_transformer((make_pipeline(SimpleImputer(), StandardScaler()), ["x1", "x2"]),
                                      (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), ["colour"]))
    return make_pipeline(prepare, LogisticRegression(max_iter=1000)).fit(training[TIER_FEATURES], training.tier)


@pytest.fixture(scope="module")
def tiers():
    "Trained on the first six months; the twelve later months served, a tenth of their labels still missing"
    frame = orders()
    training = frame[frame.month < "2024-07-01"]
    model = tier_model(training)
    later = frame[frame.month >= "2024-07-01"]
    cases = later.assign(prediction=model.predict(later[TIER_FEATURES]), probabilities=list(model.predict_proba(later[TIER_FEATURES])),
                         label=later.tier.where(np.random.default_rng(1).random(len(later)) > 0.1)).drop(columns="tier")
    loop = MonitoringLoop(training, TIER_CRITERIA, window="MS", time_column="month", target="tier", classes=model.classes_,
                          reference_predictions=model.predict(training[TIER_FEATURES]), alert_on=ALERT_KINDS).run(cases)
    return dict(frame=frame, training=training, model=model, cases=cases, loop=loop)


def statuses(loop, of:str)->dict:
    "window -> status of the drift of `of` ('prediction', 'target' or an input column)"
    rows = loop.drift_[(loop.drift_["of"] == of) | ((loop.drift_["of"] == "input") & (loop.drift_.column == of))]
    return dict(zip(rows.window, rows.status))


def test_multiclass_figures_per_month_equal_sklearn_on_the_same_labels(tiers):
    "f1_macro and log_loss of each month: scikit-learn's on that month's labelled cases, text labels as they are"
    loop, cases, classes = tiers["loop"], tiers["cases"], list(tiers["model"].classes_)
    assert loop.performance_.window.tolist() == [month.strftime("%Y-%m") for month in MONTHS[6:]]
    for row in loop.performance_.itertuples():
        month = cases[(cases.month.dt.strftime("%Y-%m") == row.window) & cases.label.notna()]
        assert row.labelled == len(month) < row.cases
        assert row.f1_macro == pytest.approx(f1_score(month.label, month.prediction, average="macro"))
        assert row.log_loss == pytest.approx(log_loss(month.label, np.vstack(month.probabilities), labels=classes))
    assert "positive_rate" not in loop.performance_  # a share of 'positive' cases means nothing for three classes


def test_multiclass_drift_of_predictions_and_labels_is_found_where_planted_and_nowhere_else(tiers):
    loop = tiers["loop"]
    drifted = lambda of: sorted(window for window, status in statuses(loop, of).items() if status == "drift")
    assert drifted("prediction") == SHIFT
    assert drifted("target") == SHIFT + CONCEPT
    assert drifted("x1") == SHIFT
    assert set(loop.drift_.column) == {*TIER_FEATURES, "prediction", "label"}  # the target is never watched as an input
    failed = loop.performance_.window[loop.performance_.status == "criteria failed"].tolist()
    assert failed == CONCEPT


def test_output_alerts_are_raised_once_per_incident_and_only_when_asked(tiers):
    loop = tiers["loop"]
    assert [(alert.kind, alert.window, alert.subject) for alert in loop.alerts_ if alert.kind in ("prediction drift", "target drift")] == [
        ("prediction drift", SHIFT[0], ("prediction",)), ("target drift", SHIFT[0], ("label",)), ("target drift", CONCEPT[0], ("label",))]
    quiet = MonitoringLoop(tiers["training"], TIER_CRITERIA, window="MS", time_column="month", target="tier",
                           reference_predictions=tiers["model"].predict(tiers["training"][TIER_FEATURES])).run(tiers["cases"])
    assert {alert.kind for alert in quiet.alerts_} <= {"column drift", "dataset drift", "performance"}
    assert quiet.drift_.equals(loop.drift_)  # the same verdicts, only the alerts differ


def test_target_drift_alerts_wait_for_the_labels(tiers):
    lagged = MonitoringLoop(tiers["training"], TIER_CRITERIA, window="MS", time_column="month", label_lag="31D", target="tier",
                            reference_predictions=tiers["model"].predict(tiers["training"][TIER_FEATURES]), alert_on=["prediction", "target"]).run(tiers["cases"])
    at = {alert.kind: alert.at for alert in lagged.alerts_ if alert.window == SHIFT[0]}
    assert at["target drift"] - at["prediction drift"] == pd.Timedelta("31D")


def test_plot_drift_draws_the_outputs_below_the_inputs(tiers):
    figure = tiers["loop"].plot_drift()
    try:
        inputs, outputs = figure.axes
        assert column_labels(outputs) == ["label", "prediction"]
        assert len(red_dashed_lines(outputs)) == 3 and column_labels(inputs) == sorted(TIER_FEATURES)
    finally: plt.close(figure)


def test_a_window_without_labels_has_no_target_verdict_and_says_so(tiers):
    cases = tiers["cases"].assign(label=tiers["cases"].label.where(tiers["cases"].month < "2025-06-01"))
    loop = MonitoringLoop(tiers["training"], TIER_CRITERIA, window="MS", time_column="month", target="tier", classes=tiers["model"].classes_).run(cases)
    last = loop.drift_[(loop.drift_.window == "2025-06") & (loop.drift_["of"] == "target")].iloc[0]
    assert last.status == "empty" and pd.isna(last.score)
    row = loop.performance_.set_index("window").loc["2025-06"]
    assert (row.labelled, row.status, row.note) == (0, "waiting for labels", "0 labelled cases, fewer than min_labels (50): not measured")
    assert pd.isna(row.f1_macro)


def test_min_labels_is_a_parameter_and_a_small_window_says_so_in_the_table(tiers):
    loop = MonitoringLoop(tiers["training"], TIER_CRITERIA, window="MS", time_column="month", classes=tiers["model"].classes_,
                          min_labels=365).run(tiers["cases"])
    small = loop.performance_[loop.performance_.labelled < 365]
    assert len(small) and (small.status == "waiting for labels").all() and small.f1_macro.isna().all()
    assert all(note == f"{labelled:,} labelled cases, fewer than min_labels (365): not measured" for note, labelled in zip(small.note, small.labelled))
    assert (loop.performance_[loop.performance_.labelled >= 365].note == "").all()


DIABETES_WINDOW = 400
BIASED, SCALED = (5, 6), (2, 3)  # windows drawn from heavier patients; windows whose true values are 40% higher


@pytest.fixture(scope="module")
def diabetes_stream():
    "A regressor on the 442 diabetes rows; eight windows of 400 cases drawn from them in row order, two with higher true values, two of heavier patients"
    diabetes = load_real_dataset("diabetes")
    data = diabetes.frame
    model = make_pipeline(StandardScaler(), Ridge()).fit(data[diabetes.features], data.progression)
    heavy = np.where(data.bmi > data.bmi.median(), 0.9, 0.1)
    parts = [data.sample(DIABETES_WINDOW, replace=True, weights=heavy if number in BIASED else None, random_state=number) for number in range(8)]
    parts = [part.assign(progression=part.progression * 1.4) if number in SCALED else part for number, part in enumerate(parts)]
    later = pd.concat(parts, ignore_index=True)
    cases = later.assign(received_at=pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(len(later)), "h"),
                         prediction=model.predict(later[diabetes.features]), label=later.progression).drop(columns="progression")
    loop = MonitoringLoop(data, Criteria("rmse <= 65", ["mae <= 55", "r2 >= 0.2"]), window=DIABETES_WINDOW, target="progression",
                          reference_predictions=model.predict(data[diabetes.features]), alert_on=ALERT_KINDS,
                          drift_options={"methods": {"prediction": "wasserstein", "label": "wasserstein"}}).run(cases)
    return dict(diabetes=diabetes, model=model, cases=cases, loop=loop)


def test_regression_figures_per_window_equal_sklearn_on_the_values(diabetes_stream):
    "RMSE, MAE and R2 of each window of 400 cases in row order: scikit-learn's on the same values (no cast to int)"
    loop, cases = diabetes_stream["loop"], diabetes_stream["cases"]
    assert loop.performance_.window.tolist() == [f"cases {start + 1}-{start + DIABETES_WINDOW}" for start in range(0, len(cases), DIABETES_WINDOW)]
    for number, row in enumerate(loop.performance_.itertuples()):
        window = cases.iloc[number * DIABETES_WINDOW:(number + 1) * DIABETES_WINDOW]
        assert row.rmse == pytest.approx(mean_squared_error(window.label, window.prediction) ** 0.5)
        assert row.mae == pytest.approx(mean_absolute_error(window.label, window.prediction))
        assert row.r2 == pytest.approx(r2_score(window.label, window.prediction))
    assert loop.performance_.status[loop.performance_.status == "criteria failed"].index.tolist() == list(SCALED)


def test_regression_drift_of_predictions_and_values_is_found_where_planted_and_nowhere_else(diabetes_stream):
    loop = diabetes_stream["loop"]
    windows = loop.performance_.window.tolist()
    drifted = lambda of: sorted(windows.index(window) for window, status in statuses(loop, of).items() if status == "drift")
    assert drifted("prediction") == list(BIASED)
    assert drifted("target") == sorted(SCALED + BIASED)
    kinds = {row["of"]: row.method for _, row in loop.drift_.iterrows() if row["of"] != "input"}
    assert kinds == {"prediction": "wasserstein", "target": "wasserstein"}  # chosen through drift_options, by the outputs' names


def test_regression_windows_have_no_estimate_and_say_why(diabetes_stream):
    report = performance_report(diabetes_stream["cases"].head(400).assign(label=np.nan), Criteria("rmse <= 65"), draws=100)
    assert (report.task, report.estimated, report.status, report.positive_rate) == ("regression", {}, "waiting for labels", None)
    assert "No estimate: a regression model gives no probabilities" in report.explain()


def test_real_diabetes_rows_in_windows_by_row_order():
    "The 442 rows as they come: a regressor trained on the first 250 rows, the next 192 watched in windows of 64"
    diabetes = load_real_dataset("diabetes")
    data = diabetes.frame
    model = make_pipeline(StandardScaler(), Ridge()).fit(data[diabetes.features].iloc[:250], data.progression.iloc[:250])
    later = data.iloc[250:]
    cases = later.assign(received_at=pd.Timestamp("2025-01-01"), prediction=model.predict(later[diabetes.features]), label=later.progression)
    loop = MonitoringLoop(data.iloc[:250], Criteria("rmse <= 70"), window=64, target="progression").run(cases)
    expected = [mean_squared_error(part.label, part.prediction) ** 0.5 for part in (cases.iloc[start:start + 64] for start in (0, 64, 128))]
    assert loop.performance_.rmse.tolist() == pytest.approx(expected)
    assert 0.4 < expected[0] / 100 < 0.7  # RMSE of the values (about 55), not of values cast to whole numbers or classes


def breast_cancer_cases(seed:int=0)->tuple:
    "Breast cancer with its labels as words: a model trained on 300 tumours, the other 269 as served cases"
    data = load_real_dataset("breast_cancer").frame
    words = data.malignant.map({1: "malignant", 0: "benign"})
    features = [name for name in data.columns if name != "malignant"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(data[features].iloc[:300], words.iloc[:300])
    later = data.iloc[300:]
    probability = model.predict_proba(later[features])[:, list(model.classes_).index("malignant")]
    cases = pd.DataFrame({"prediction": model.predict(later[features]), "probability": probability, "label": words.iloc[300:].to_numpy()})
    return cases, model


def test_binary_text_labels_keep_their_values_with_a_named_positive_class():
    cases, model = breast_cancer_cases()
    criteria = Criteria("recall >= 0.9", ["precision >= 0.8", "roc_auc >= 0.9"])
    report = performance_report(cases, criteria, positive_label="malignant", draws=20)
    assert report.measured["recall"] == pytest.approx(recall_score(cases.label, cases.prediction, pos_label="malignant"))
    assert report.measured["precision"] == pytest.approx(precision_score(cases.label, cases.prediction, pos_label="malignant"))
    from sklearn.metrics import roc_auc_score
    assert report.measured["roc_auc"] == pytest.approx(roc_auc_score(cases.label == "malignant", cases.probability))
    assert report.positive_rate == pytest.approx((cases.prediction == "malignant").mean())
    assert set(report.estimated) == {"recall", "precision", "roc_auc"}
    with pytest.raises(DriftError, match=r"The labels are 'benign', 'malignant': say which one is the positive class"):
        performance_report(cases, criteria)
    with pytest.raises(DriftError, match="positive_label 'cancer' is not one of the labels"):
        performance_report(cases, criteria, positive_label="cancer")


def test_binary_boolean_predictions_and_labels_with_gaps_are_the_same_classes():
    "Predictions True/False, labels 1.0/0.0 with NaN (as a log gives them): one binary model, positive class True"
    cases = calibrated_cases()
    as_booleans = cases.assign(prediction=cases.prediction.astype(bool), label=cases.label.where(cases.index % 4 > 0))
    as_numbers = cases.assign(label=cases.label.where(cases.index % 4 > 0))
    assert performance_report(as_booleans, LABEL_CRITERIA, draws=5).measured == performance_report(as_numbers, LABEL_CRITERIA, draws=5).measured


@pytest.mark.parametrize("change, arguments, message", [
    (lambda cases: cases.assign(prediction="plum"), {}, "one of the model's classes ('barbera', 'barolo', 'grignolino'), but 89 of its values are not, e.g. 'plum'"),
    (lambda cases: cases.assign(probabilities=[[0.5, 0.5]] * len(cases)), {}, "a list of 3 probabilities, one per class in the order ['barbera', 'barolo', 'grignolino']"),
    (lambda cases: cases.assign(probabilities=[[2.0, -1.0, 0.0]] * len(cases)), {}, "numbers from 0 to 1, one per class"),
    (lambda cases: cases.assign(prediction=[[1, 2]] * len(cases)), {}, "The prediction column must hold labels (text, numbers or booleans), got [1, 2] (list)"),
    (lambda cases: cases, dict(classes="barolo"), "classes must be a list of the model's classes"),
    (lambda cases: cases, dict(classes=["barolo", "barolo"]), "classes must name at least two different classes, each once"),
    (lambda cases: cases, dict(positive_label="barolo"), "positive_label is for a binary model"),
    (lambda cases: cases, dict(task="ternary"), "task must be one of 'binary', 'multiclass', 'regression'"),
    (lambda cases: cases, dict(task="regression"), "cannot judge a regression model"),
    (lambda cases: cases, dict(min_labels=-1), "`min_labels` must be a whole number from 1"),
])
def test_a_multiclass_window_that_is_not_the_models_is_refused_by_name(change, arguments, message):
    wine = load_real_dataset("wine")
    names = wine.y.map({0: "barolo", 1: "grignolino", 2: "barbera"})
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(wine.X.iloc[::2], names.iloc[::2])
    cases = pd.DataFrame({"prediction": model.predict(wine.X.iloc[1::2]), "probabilities": list(model.predict_proba(wine.X.iloc[1::2])),
                          "label": names.iloc[1::2].to_numpy()})
    with pytest.raises(MlopsKitError) as raised:  # min_labels: MlopsKitError; the rest: DriftError
        performance_report(change(cases), Criteria("f1_macro >= 0.9", ["log_loss <= 0.3"]), **{"classes": model.classes_, **arguments})
    assert message in str(raised.value)


@pytest.mark.filterwarnings("error")  # said in the report, not warned about as well
def test_a_metric_the_window_leaves_undefined_is_not_measured_and_says_why():
    "A window whose labels are all one class: its one-vs-rest ROC AUC is undefined, reported as such, not as a silent NaN"
    rng = np.random.default_rng(4)
    probabilities = rng.dirichlet([1, 1, 1], 120)
    cases = pd.DataFrame({"prediction": np.array(["a", "b", "c"])[probabilities.argmax(axis=1)], "probabilities": list(probabilities), "label": "a"})
    report = performance_report(cases, Criteria("f1_macro >= 0.1", ["roc_auc_ovr >= 0.6"]), classes=["a", "b", "c"], draws=0)
    assert "roc_auc_ovr" not in report.measured and report.status == "not measurable"
    assert report.unmeasured == {"roc_auc_ovr": "undefined on this window's labels (e.g. a class that none of them has)"}
    assert report.note == "roc_auc_ovr not measured: undefined on this window's labels (e.g. a class that none of them has)"


@pytest.mark.parametrize("change, message", [
    (lambda cases: cases.assign(prediction="high"), "The prediction column of a regression model must hold the predicted values, finite numbers"),
    (lambda cases: cases.assign(label=["x" if number % 2 else 1.0 for number in cases.index]), "must hold the true values (NaN until known), finite numbers, but 96 of its values are not, e.g. 'x'"),
    (lambda cases: cases.assign(prediction=np.inf), "finite numbers, but 192 of its values are not, e.g. inf"),
    (lambda cases: cases.assign(label=True), "e.g. True"),
])
def test_a_regression_window_that_is_not_numbers_is_refused_by_name(change, message):
    data = load_real_dataset("diabetes").frame.iloc[250:]
    cases = pd.DataFrame({"prediction": data.progression.to_numpy() * 0.9, "label": data.progression.to_numpy()}).reset_index(drop=True)
    with pytest.raises(DriftError) as raised: performance_report(change(cases), Criteria("rmse <= 70"))
    assert message in str(raised.value)


def test_output_drift_compares_classes_as_categories_even_when_they_are_numbers():
    "Eleven classes coded 0..10 would be read as numbers; the task says they are categories"
    reference, current = pd.Series(np.arange(1100) % 11), pd.Series(np.arange(1100) % 11)
    assert output_drift(reference, current, "multiclass").kind == "categorical"
    assert output_drift(reference.astype(float), current.astype(float), "regression").kind == "numerical"
    with pytest.raises(DriftError, match="task must be one of"): output_drift(reference, current, "classification")


@pytest.mark.parametrize("settings, message", [
    (dict(target="tiers"), "target must name the target column of the reference, got 'tiers'. Did you mean 'tier'"),
    (dict(target="tier", features=["x1", "tier"]), "The target 'tier' cannot be watched as a feature"),
    (dict(reference_predictions="gold"), "reference_predictions must be one value per case"),
    (dict(reference_predictions=["gold", "platinum"], classes=["bronze", "gold", "silver"]), "reference_predictions must hold the model's predicted classes"),
    (dict(alert_on="prediction drift"), "alert_on must be a list of some of ['input', 'prediction', 'target', 'performance']"),
    (dict(drift_options={"kinds": {"label": "numerical"}}), "drift_options' kinds cannot be set for 'prediction' or 'label'"),
    (dict(min_labels=0), "`min_labels` must be a whole number from 1"),
])
def test_loop_output_settings_are_checked_before_any_window(tmp_path, tiers, settings, message):
    project = Project(tmp_path / "tiers.journal.json")
    project.add_record("note", "start", {"text": "monitoring begins"})
    before = file_hash(project.path)
    arguments = {**dict(reference=tiers["training"], criteria=TIER_CRITERIA, window="MS", time_column="month",
                        policy=AlertPolicy("60D", project=project), alert_on=ALERT_KINDS), **settings}
    with pytest.raises(MlopsKitError) as raised: MonitoringLoop(**arguments).run(tiers["cases"])  # min_labels: MlopsKitError; the rest: DriftError
    assert message in str(raised.value)
    assert file_hash(project.path) == before


# ---------------------------------------------------------------- issue 14: retrain for every task

@pytest.fixture
def tumours(tmp_path):
    "A champion on breast cancer (0/1) trained on the first 200 tumours, in a registry and a deployed project's journal"
    data = load_real_dataset("breast_cancer")
    project = Project(tmp_path / "tumours.journal.json", name="tumours")
    for gate in ("design", "development"): project.decide("go", f"{gate} gate")
    registry = ModelRegistry(tmp_path / "models", project=project)
    first = Dataset(data.frame.iloc[:200], target=data.target, features=data.features)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.01)).fit(first.X, first.y)
    criteria = Criteria("recall >= 0.8", ["precision >= 0.8"])
    registry.promote("tumours", registry.register(model, first, criteria, {"recall": 0.9, "precision": 0.9}, name="tumours").version)
    recent = Dataset(data.frame.iloc[200:].reset_index(drop=True), target=data.target, features=data.features, name="recent tumours")
    return dict(registry=registry, project=project, criteria=criteria, recent=recent, model=model)


def test_retrain_without_a_time_column_judges_on_the_last_rows(tumours):
    "No time column: the last 30% of the rows (row order) judge champion and challenger"
    recent = tumours["recent"]
    result = retrain(tumours["registry"], recent, tumours["criteria"], "tumours", project=tumours["project"], n_trials=3)
    last = recent.frame.iloc[round(len(recent.frame) * 0.7):]
    flags = tumours["model"].predict(last[recent.features])
    champion = result.comparison.set_index("metric").champion
    assert champion["recall"] == pytest.approx(recall_score(last[recent.target], flags))
    assert champion["precision"] == pytest.approx(precision_score(last[recent.target], flags))
    assert str(result.decisions[0].verdict) == "iterate" and len(result.decisions) == 2


@pytest.mark.parametrize("arguments, message", [
    (dict(name="tumors"), "tumors"),
    (dict(name=""), "name must be the model's name in the registry"),
    (dict(registry="models"), "registry must be a mlops_kit.development.ModelRegistry, got str"),
    (dict(criteria=Criteria("rmse <= 1")), "cannot judge a binary model"),
    (dict(holdout_share=1), "holdout_share must be between 0 and 1"),
    (dict(recent="recent.csv"), "recent must be a mlops_kit.data.Dataset"),
])
def test_a_refused_retraining_changes_no_file(tumours, arguments, message):
    "Every check, the champion's loading included, comes before the first record: the journal and the registry keep their bytes"
    registry, project = tumours["registry"], tumours["project"]
    before = (folder_hashes(registry.folder), file_hash(project.path))
    settings = {**dict(registry=registry, recent=tumours["recent"], criteria=tumours["criteria"], name="tumours", project=project, n_trials=2), **arguments}
    with pytest.raises(MlopsKitError) as raised: retrain(**settings)
    assert message in str(raised.value)
    assert (folder_hashes(registry.folder), file_hash(project.path)) == before


def test_a_retraining_whose_grid_finds_no_model_meeting_the_constraints_records_nothing(tumours):
    "No trial meets the constraints (a Brier score no model reaches here): refused with the way out, the journal and registry unchanged"
    registry, project = tumours["registry"], tumours["project"]
    before = (folder_hashes(registry.folder), file_hash(project.path))
    unreachable = Criteria("recall >= 0.8", ["brier <= 0.0001"])
    with pytest.raises(RetrainingError, match="none of the 2 trials .* meets the criteria's constraints; nothing was recorded or registered"):
        retrain(registry, tumours["recent"], unreachable, "tumours", project=project, n_trials=2)
    assert (folder_hashes(registry.folder), file_hash(project.path)) == before and str(project.phase) == "deployment"


def test_retraining_a_classifier_on_a_regression_target_is_refused_before_anything_is_recorded(tumours):
    data = load_real_dataset("diabetes")
    before = (folder_hashes(tumours["registry"].folder), file_hash(tumours["project"].path))
    with pytest.raises(RetrainingError, match="The champion 'tumours' v1 is a classifier, but recent's target 'progression' is a regression target"):
        retrain(tumours["registry"], data, Criteria("rmse <= 60"), "tumours", project=tumours["project"])
    assert (folder_hashes(tumours["registry"].folder), file_hash(tumours["project"].path)) == before


def test_retrain_needs_the_models_name():
    "No 'churn' default: the name is a required argument"
    assert inspect.signature(retrain).parameters["name"].default is inspect.Parameter.empty


def test_retrain_a_multiclass_model_after_the_concept_changed(tmp_path, tiers):
    "The tier model of the first half-year is champion; recent: the two months after the concept changed, labels known"
    registry = ModelRegistry(tmp_path / "models")
    training = Dataset(tiers["training"], target="tier", features=TIER_FEATURES, time_column="month")
    registry.promote("tiers", registry.register(tiers["model"], training, TIER_CRITERIA, {"f1_macro": 0.8, "log_loss": 0.5}, name="tiers").version)
    frame = tiers["frame"]
    recent = Dataset(frame[frame.month.dt.strftime("%Y-%m").isin(CONCEPT)], target="tier", features=TIER_FEATURES, time_column="month")
    result = retrain(registry, recent, TIER_CRITERIA, "tiers", n_trials=4)
    holdout = recent.frame[recent.frame.month >= recent.frame.month.quantile(0.7)]
    champion = result.comparison.set_index("metric").champion
    assert champion["f1_macro"] == pytest.approx(f1_score(holdout.tier, tiers["model"].predict(holdout[TIER_FEATURES]), average="macro"))
    assert champion["log_loss"] == pytest.approx(log_loss(holdout.tier, tiers["model"].predict_proba(holdout[TIER_FEATURES]), labels=tiers["model"].classes_))
    assert result.promoted and registry.champion("tiers").version == 2
    assert set(registry.load("tiers", alias="champion").predict(holdout[TIER_FEATURES])) <= {"bronze", "silver", "gold"}


def test_retrain_a_regressor_on_recent_rows_without_time(tmp_path, diabetes_stream):
    "The diabetes regressor is champion; recent: the windows whose true values rose by 40%, in row order"
    diabetes, cases = diabetes_stream["diabetes"], diabetes_stream["cases"]
    registry = ModelRegistry(tmp_path / "models")
    criteria = Criteria("rmse <= 65", ["mae <= 55"])
    registry.promote("progression", registry.register(diabetes_stream["model"], diabetes, criteria, {"rmse": 54.0, "mae": 44.0}, name="progression").version)
    rows = cases.iloc[SCALED[0] * DIABETES_WINDOW:(SCALED[-1] + 1) * DIABETES_WINDOW]
    recent = Dataset(rows[diabetes.features].assign(progression=rows.label.to_numpy()).reset_index(drop=True), target="progression", features=diabetes.features)
    result = retrain(registry, recent, criteria, "progression", n_trials=4)
    last = recent.frame.iloc[round(len(recent.frame) * 0.7):]
    champion = result.comparison.set_index("metric").champion
    assert champion["rmse"] == pytest.approx(mean_squared_error(last.progression, diabetes_stream["model"].predict(last[diabetes.features])) ** 0.5)
    assert result.comparison.set_index("metric").challenger["rmse"] < champion["rmse"]


def test_retrain_a_binary_model_with_text_labels(tmp_path):
    data = load_real_dataset("breast_cancer").frame
    words = data.assign(diagnosis=data.malignant.map({1: "malignant", 0: "benign"})).drop(columns="malignant")
    features = [name for name in words.columns if name != "diagnosis"]
    first = Dataset(words.iloc[:200], target="diagnosis", features=features, positive_label="malignant")
    criteria = Criteria("recall >= 0.8", ["precision >= 0.8"])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.01)).fit(first.X, first.y)
    registry = ModelRegistry(tmp_path / "models")
    registry.promote("tumours", registry.register(model, first, criteria, {"recall": 0.9, "precision": 0.9}, name="tumours").version)
    recent = Dataset(words.iloc[200:].reset_index(drop=True), target="diagnosis", features=features, positive_label="malignant")
    result = retrain(registry, recent, criteria, "tumours", n_trials=3)
    last = recent.frame.iloc[round(len(recent.frame) * 0.7):]
    champion = result.comparison.set_index("metric").champion
    assert champion["recall"] == pytest.approx(recall_score(last.diagnosis, model.predict(last[features]), pos_label="malignant"))
