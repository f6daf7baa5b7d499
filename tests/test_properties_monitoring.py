"""Property-based tests of `mlops_kit.deployment`'s parsers: per-column dictionaries, windows, durations and cases.

The strategies start from valid settings and change one thing (an unknown column, a kind or method that does not fit,
a threshold out of its score's range, a window of zero length, a column of probabilities where labels belong). The
property: the call returns, or raises `DriftError` (bad data) or another `MlopsKitError` (a bad argument); never a numpy,
scipy, pandas or Python error. Where it returns, the result is checked too.
"""
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st

from mlops_kit.errors import MlopsKitError
from mlops_kit.lifecycle import Criteria
from mlops_kit.deployment import DRIFT_METHODS, AlertPolicy, DriftError, MonitoringLoop, drift_report, performance_report

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=8), st.lists(st.integers(), max_size=2))

RNG = np.random.default_rng(0)
REFERENCE = pd.DataFrame({"amount": RNG.normal(50, 10, 300), "plan": RNG.choice(["basic", "premium", "family"], 300),
                          "calls": RNG.integers(0, 4, 300), "flag": RNG.random(300) < 0.3})
CURRENT = REFERENCE.sample(120, random_state=1).assign(amount=lambda frame: frame.amount + 5)
COLUMNS = list(REFERENCE.columns)
CRITERIA = Criteria("recall >= 0.6", ["precision >= 0.2"])


def report_or_drift_error(action):
    "The result of `action()`, or None if it raised `DriftError` or another kit error (a bad argument); any other exception fails the test"
    try: return action()
    except MlopsKitError: return None


# --- kinds, methods and thresholds dictionaries ----------------------------------------------------------------------

KEYS = st.one_of(st.sampled_from(COLUMNS), st.sampled_from(["amounts", "Plan", ""]), st.integers(), st.none())
KINDS = st.dictionaries(KEYS, st.one_of(st.sampled_from(["numerical", "categorical", "numeric", "text"]), ANY_VALUE), max_size=4)
METHODS = st.dictionaries(KEYS, st.one_of(st.sampled_from([*DRIFT_METHODS, "kss", "KS"]), ANY_VALUE), max_size=4)
THRESHOLDS = st.dictionaries(KEYS, st.one_of(st.sampled_from([0.05, 0.1, 0.5, 0.83, 0.9, 1, 2, 0, -0.1]), st.floats(-1, 3), ANY_VALUE), max_size=4)
SETTINGS = st.one_of(st.none(), ANY_VALUE)


@PROPERTY
@given(kinds=st.one_of(KINDS, SETTINGS), methods=st.one_of(METHODS, SETTINGS), thresholds=st.one_of(THRESHOLDS, SETTINGS),
       drift_share=st.one_of(st.just(0.5), st.floats(-1, 2), ANY_VALUE))
def test_drift_report_parses_per_column_settings_or_raises_drift_error(kinds, methods, thresholds, drift_share):
    report = report_or_drift_error(lambda: drift_report(REFERENCE, CURRENT, kinds=kinds, methods=methods, thresholds=thresholds,
                                                        drift_share=drift_share))
    if report is None: return
    assert [result.column for result in report.columns] == COLUMNS
    for result in report.tested:
        low, high = DRIFT_METHODS[result.method]["score_range"]
        assert low < result.threshold < high and low <= result.score <= high


@st.composite
def columns_of_any_type(draw):
    "A column of numbers, text, booleans or dates, with a stray value of another type in some of them"
    size = draw(st.integers(1, 60))
    values = draw(st.sampled_from([np.arange(size, dtype=float), np.arange(size) % 3, np.array(["a", "b"] * size)[:size],
                                   np.arange(size) % 2 == 0, pd.date_range("2024-01-01", periods=size).to_numpy()]))
    column = pd.Series(values)
    if draw(st.booleans()): column = column.astype(object)
    if draw(st.booleans()):  # a stray value: the column becomes one of Python objects, as pandas reads mixed data
        column = column.astype(object)
        column.iloc[draw(st.integers(0, size - 1))] = draw(ANY_VALUE)
    return column


@PROPERTY
@given(reference=columns_of_any_type(), current=columns_of_any_type(), kind=st.sampled_from([None, "numerical", "categorical"]))
def test_drift_report_on_columns_of_any_type_reports_or_raises_drift_error(reference, current, kind):
    report = report_or_drift_error(lambda: drift_report(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}),
                                                        kinds=None if kind is None else {"x": kind}))
    if report is not None: assert report["x"].status in ("drift", "no drift", "skipped", "empty")


# --- windows, durations and cases of the monitoring loop -------------------------------------------------------------

def cases(rows:int=80)->pd.DataFrame:
    "Predicted cases over 80 days, labels known"
    rng = np.random.default_rng(1)
    probability = rng.random(rows)
    return REFERENCE.sample(rows, random_state=2).reset_index(drop=True).assign(
        received_at=pd.date_range("2024-01-01", periods=rows, freq="D"), probability=probability,
        prediction=(probability >= 0.5).astype(int), label=(rng.random(rows) < probability).astype(float))


CASES = cases()
# Valid windows cut the 80 days of cases into a few windows (each window costs a drift and a performance report)
TEXT_WINDOWS = st.one_of(st.builds(lambda number, unit: f"{number}{unit}", st.integers(-3, 4), st.sampled_from(["MS", "W", "ME", "M", "QS", "days"])),
                         st.builds(lambda number, unit: f"{number}{unit}", st.integers(-2, 0), st.sampled_from(["D", "h", "min"])),
                         st.sampled_from(["MS", "30D", "2MS", "0D", "-7D", "month", "", "D7", "7 D"]), st.text(max_size=5))
WINDOWS = st.one_of(TEXT_WINDOWS, st.integers(-5, 0), st.integers(20, 200), ANY_VALUE)
DURATIONS = st.one_of(st.sampled_from(["0D", "31D", "12h", "-1D", "1 day", "P1D", "a month"]), st.text(max_size=6), ANY_VALUE)


@PROPERTY
@given(window=WINDOWS, label_lag=DURATIONS, cooldown=DURATIONS)
def test_loop_parses_windows_and_durations_or_raises_drift_error(window, label_lag, cooldown):
    def run():
        policy = AlertPolicy(cooldown)
        return MonitoringLoop(REFERENCE, CRITERIA, ["amount", "plan"], window=window, label_lag=label_lag, policy=policy).run(CASES)
    loop = report_or_drift_error(run)
    if loop is not None: assert loop.performance_.cases.sum() == len(CASES)  # every case in exactly one window


@st.composite
def windows_of_cases(draw):
    "Valid cases with one column changed: probabilities or text in `prediction` or `label`, gaps, numbers out of [0, 1]"
    frame = CASES.copy()
    column = draw(st.sampled_from(["prediction", "label", "probability", "latency_ms"]))
    change = draw(st.sampled_from(["none", "probabilities", "one value", "all values", "gap"]))
    if column not in frame: frame[column] = 5.0
    frame[column] = frame[column].astype(object)  # so that any value can be put in, as pandas reads mixed data
    if change == "probabilities": frame[column] = frame.probability
    elif change == "one value": frame.at[draw(st.integers(0, 79)), column] = draw(ANY_VALUE)
    elif change == "all values": frame[column] = [draw(ANY_VALUE)] * len(frame)
    elif change == "gap": frame.loc[frame.index % 7 == 0, column] = np.nan
    return frame


BAD_DRAWS = st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=4), st.none(), st.booleans())  # each good draw costs time


@PROPERTY
@given(window=windows_of_cases(), draws=st.one_of(st.sampled_from([0, 5]), BAD_DRAWS), seed=st.one_of(st.just(0), ANY_VALUE))
def test_performance_report_measures_or_raises_drift_error(window, draws, seed):
    report = report_or_drift_error(lambda: performance_report(window, CRITERIA, "window", draws=draws, seed=seed))
    if report is None: return
    assert len(set(window.prediction) | set(window.label.dropna())) <= 2  # a binary model's two labels (1, 1.0 and True are one)
    assert all(0 <= value <= 1 for value in report.measured.values())


# --- every task: multiclass and regression windows, the task, classes and positive label arguments ----------------------

CLASSES = ["a", "b", "c"]


def task_cases(rows:int=90)->dict:
    "A multiclass window (classes a, b, c; probabilities in that order) and a regression window, labels known"
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet([1, 1, 1], rows)
    multiclass = pd.DataFrame({"prediction": np.array(CLASSES)[probabilities.argmax(axis=1)], "probabilities": list(probabilities),
                               "label": rng.choice(CLASSES, rows)})
    regression = pd.DataFrame({"prediction": rng.normal(100, 20, rows), "label": rng.normal(100, 25, rows)})
    return dict(multiclass=multiclass, regression=regression)


TASK_CASES = task_cases()
TASK_CRITERIA = dict(multiclass=Criteria("f1_macro >= 0.5", ["log_loss <= 2"]), regression=Criteria("rmse <= 30", ["r2 >= 0.1"]))


@st.composite
def task_windows(draw):
    "A multiclass or regression window with one column changed (one value, all values, gaps, a column of another task)"
    task = draw(st.sampled_from(["multiclass", "regression"]))
    frame = TASK_CASES[task].copy()
    column = draw(st.sampled_from(["prediction", "label", "probabilities"]))
    change = draw(st.sampled_from(["none", "one value", "all values", "gap", "other task"]))
    if column not in frame: frame[column] = [[0.2, 0.3, 0.5]] * len(frame)
    frame[column] = frame[column].astype(object)
    if change == "one value": frame.at[draw(st.integers(0, len(frame) - 1)), column] = draw(st.one_of(ANY_VALUE, st.lists(st.floats(), max_size=4)))
    elif change == "all values": frame[column] = [draw(ANY_VALUE)] * len(frame)
    elif change == "gap": frame.loc[frame.index % 5 == 0, column] = np.nan
    elif change == "other task": frame[column] = TASK_CASES["regression" if task == "multiclass" else "multiclass"][column if column != "probabilities" else "label"]
    return task, frame


ARGUMENT_VALUES = st.one_of(st.none(), ANY_VALUE)


@PROPERTY
@given(case=task_windows(), task=st.one_of(st.none(), st.sampled_from(["binary", "multiclass", "regression"]), ANY_VALUE),
       classes=st.one_of(st.none(), st.just(CLASSES), st.permutations(CLASSES), st.lists(st.sampled_from(["a", "b", "c", "d", 1, True]), max_size=4), ANY_VALUE),
       positive_label=st.one_of(st.none(), st.sampled_from(["a", 1]), ANY_VALUE), min_labels=st.one_of(st.just(50), st.integers(-2, 200), ANY_VALUE))
def test_performance_report_for_any_task_measures_or_raises_drift_error(case, task, classes, positive_label, min_labels):
    kind, window = case
    report = report_or_drift_error(lambda: performance_report(window, TASK_CRITERIA[kind], draws=3, task=task, classes=classes,
                                                              positive_label=positive_label, min_labels=min_labels))
    if report is None: return
    assert report.task == kind  # the criteria fit one task only: it is theirs
    if kind == "multiclass": assert all(0 <= value for value in report.measured.values()) and report.positive_rate is None
    else: assert report.estimated == {} and "regression model gives no probabilities" in report.estimate_note


@PROPERTY
@given(target=st.one_of(st.none(), st.sampled_from(["plan", "amount", "plans"]), ANY_VALUE),
       reference_predictions=st.one_of(st.none(), st.just([0, 1] * 50), st.just("1"), st.lists(ANY_VALUE, max_size=5), ANY_VALUE),
       alert_on=st.one_of(st.just(("input", "performance")), st.lists(st.sampled_from(["input", "prediction", "target", "performance", "drift"]), max_size=3), ANY_VALUE),
       min_labels=st.one_of(st.just(10), ANY_VALUE))
def test_loop_parses_the_outputs_settings_or_raises_drift_error(target, reference_predictions, alert_on, min_labels):
    def run():
        return MonitoringLoop(REFERENCE, CRITERIA, window="MS", target=target, reference_predictions=reference_predictions, alert_on=alert_on,
                              min_labels=min_labels).run(CASES)
    loop = report_or_drift_error(run)
    if loop is None: return
    assert loop.performance_.cases.sum() == len(CASES)
    assert target not in set(loop.drift_.column[loop.drift_["of"] == "input"])  # the target is never watched as an input
    assert {alert.kind for alert in loop.alerts_} <= {"column drift", "dataset drift", "performance", "prediction drift", "target drift"}


def test_drift_error_is_the_kits_error():
    assert issubclass(DriftError, MlopsKitError)
