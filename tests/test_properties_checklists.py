"""Property-based tests of what a user feeds the checklists module as text, numbers or dictionaries.

Each parser either accepts its input, with the result an independent check expects, or raises the kit's documented
error (`MlopsKitError`, or its subclass `WrongTypeError` for a value of the wrong type): never a Python, pandas or
numpy error. The strategies are mostly valid inputs with one thing wrong, so they reach past the first check.
"""
import hashlib, math, numbers, re, tempfile, warnings
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st

from mlops_kit.design import (DESIGN_ITEMS, ML_TEST_SCORE_BANDS, Answer, ChecklistItem, Status, gate,
                                  ml_test_score_band, phase_checklist)
from mlops_kit.design.added_value import _time_split
from mlops_kit.data import load_case_study
from mlops_kit.errors import MlopsKitError, WrongTypeError
from mlops_kit.lifecycle import Criteria, MetricRegistry, Project, cost_metric

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=5)


def sha256(path: Path) -> str: return hashlib.sha256(path.read_bytes()).hexdigest()


# --- Status(text) --------------------------------------------------------------------------------------------------

STATUS_WORDS = ["not_done", "manual", "automated", "not_applicable", "n/a", "na", "done", "finished", "complete"]
ALIASES = {"n/a": "not_applicable", "na": "not_applicable"}


def spellings(word: str):
    "The ways a person writes `word`: any case, padded, with spaces or hyphens"
    return st.sampled_from([word, word.upper(), word.title(), f"  {word} ", word.replace("_", " "), word.replace("_", "-"), word + "s"])


status_inputs = st.one_of(st.sampled_from(STATUS_WORDS).flatmap(spellings), st.sampled_from(STATUS_WORDS).flatmap(spellings),
                          st.sampled_from(STATUS_WORDS).flatmap(spellings), st.text(max_size=16), st.none(), st.integers(),
                          st.floats(), st.binary(max_size=4), st.lists(st.sampled_from(STATUS_WORDS), max_size=2))


@SETTINGS
@given(status_inputs)
def test_status_parses_text_or_raises_the_kits_error(value):
    try: status = Status(value)
    except MlopsKitError as error:
        assert "Unknown status" in str(error) and "use one of 'not_done', 'manual', 'automated', 'not_applicable'" in str(error)
        assert not isinstance(value, str) or re.sub(r"[ _-]", "", value.strip().lower()) not in {"notdone", "manual", "automated", "notapplicable", "n/a", "na"}
        return
    key = re.sub(r"[ -]", "_", value.strip().lower())
    assert status is Status[ALIASES.get(key, key)]


# --- ChecklistItem(...) --------------------------------------------------------------------------------------------

ids = st.one_of(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True), st.text(max_size=10), st.integers(), st.none())
fields = st.one_of(st.text(min_size=1, max_size=20), st.text(max_size=20), st.just("   "), st.none(), st.integers())
flags = st.one_of(st.booleans(), st.booleans(), st.none(), st.integers(0, 1), st.sampled_from(["yes", "False"]))


@SETTINGS
@given(ids, fields, fields, fields, flags, st.one_of(st.text(max_size=10), st.none(), st.integers()))
def test_checklist_item_accepts_valid_fields_or_raises_the_kits_error(item_id, section, text, source, required, guidance):
    valid = (isinstance(item_id, str) and re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", item_id) is not None
             and all(isinstance(value, str) and value.strip() for value in (section, text, source))
             and isinstance(required, bool) and isinstance(guidance, str))
    try: item = ChecklistItem(item_id, section, text, source, required, guidance)
    except MlopsKitError as error:
        assert not valid, error
        return
    assert valid and (item.id, item.section, item.text, item.source, item.required) == (item_id, section, text, source, required)


# --- ml_test_score_band(number) ------------------------------------------------------------------------------------

scores = st.one_of(st.sampled_from([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 5.5, 6.5, 7]), st.floats(-1, 8), st.floats(),
                   st.integers(-3, 10), st.fractions(-1, 8), st.decimals(), st.booleans(), st.none(), st.text(max_size=4),
                   st.floats(0, 7).map(np.float64), st.integers(0, 7).map(np.int64))


@SETTINGS
@given(scores)
def test_ml_test_score_band_reads_a_score_or_raises_the_kits_error(score):
    is_number = isinstance(score, numbers.Real) and not isinstance(score, bool)
    try: band = ml_test_score_band(score)
    except WrongTypeError:
        assert not is_number
        return
    except MlopsKitError as error:
        assert is_number and not 0 <= score <= 7 and "between 0 and 7" in str(error)
        return
    assert is_number and 0 <= score <= 7
    assert band == next(text for upper, text in ML_TEST_SCORE_BANDS if score <= upper)


# --- checklist answers replayed from a journal ---------------------------------------------------------------------

KNOWN = [item.id for item in DESIGN_ITEMS]
valid_answers = st.fixed_dictionaries(
    {"item": st.sampled_from(KNOWN), "status": st.sampled_from(["not_done", "manual", "automated", "not_applicable", "N/A", "Manual"])},
    optional={"notes": st.text(max_size=8), "evidence": st.text(max_size=8), "reason": st.sampled_from(["", "  ", "internal pilot"])})


@st.composite
def answer_records(draw):
    "A checklist record's data: a valid answer, or one with a key dropped, a value replaced, a key added, or not a dict"
    data = draw(valid_answers)
    change = draw(st.sampled_from(["none", "drop", "replace", "replace", "add", "not a dict", "unknown item"]))
    if change == "drop": data.pop(draw(st.sampled_from(sorted(data))))
    elif change == "replace": data[draw(st.sampled_from(["item", "status", "notes", "evidence", "reason"]))] = draw(json_values)
    elif change == "add": data[draw(st.text(max_size=6))] = draw(json_values)
    elif change == "unknown item": data["item"] = "retired-item"
    elif change == "not a dict": return draw(json_values)
    return data


def replayed(answers: dict, data):
    "The answers after one record, by the rules the course states; None if the record is malformed"
    if not isinstance(data, dict) or not isinstance(data.get("item"), str) or "status" not in data: return None
    if data["item"] not in answers: return answers                       # an item the checklist no longer has: ignored
    try: status = Status(data["status"])
    except MlopsKitError: return None
    notes, evidence, reason = data.get("notes", ""), data.get("evidence", ""), data.get("reason") or None
    if any(value is not None and not isinstance(value, str) for value in (notes, evidence, reason)): return None
    current = answers[data["item"]]
    if status is Status.not_applicable:
        reason = (reason if reason is not None else current.reason).strip()
        if not reason: return None                                       # not applicable needs a reason
    elif reason and reason.strip(): return None                          # a reason only for not applicable
    else: reason = ""
    answer = Answer(status, current.notes if notes is None else notes, current.evidence if evidence is None else evidence, reason)
    return {**answers, data["item"]: answer}


@SETTINGS
@given(st.lists(answer_records(), min_size=1, max_size=3))
def test_saved_answers_replay_correctly_or_raise_the_kits_error_naming_the_record(records):
    with tempfile.TemporaryDirectory() as folder:
        journal = Path(folder) / "churn.journal.json"
        project = Project(journal, name="churn")
        for data in records: project.add_record("checklist", "design", data)
        before = sha256(journal)
        expected, first_bad = {item_id: Answer() for item_id in KNOWN}, None
        for number, data in enumerate(records, 1):
            expected = replayed(expected, data)
            if expected is None:
                first_bad = number
                break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)                 # an unknown item is a warning, tested elsewhere
            try: checklist = phase_checklist("design", Project(journal))
            except MlopsKitError as error:
                assert first_bad is not None and f"Journal record {first_bad} (checklist 'design'" in str(error), (records, error)
                assert "The journal was left unchanged" in str(error) and sha256(journal) == before
                return
        assert first_bad is None, f"record {first_bad} should have been refused: {records}"
        assert {item_id: checklist.answer(item_id) for item_id in KNOWN} == expected
        assert sha256(journal) == before


# --- a gate's measured values --------------------------------------------------------------------------------------

numbers_measured = st.one_of(st.floats(0, 50_000), st.integers(0, 40_000), st.floats(0, 1).map(np.float64))
measured_values = st.one_of(numbers_measured, numbers_measured, numbers_measured, numbers_measured, st.floats(), st.booleans(),
                            st.none(), st.text(max_size=5), st.lists(st.floats(0, 1), max_size=2))


@st.composite
def measured_dicts(draw):
    "Measured values for the criteria: both, one missing, extra ones, any of them not a number"
    measured = {"churn_cost_per_1000": draw(measured_values), "recall": draw(measured_values)}
    change = draw(st.sampled_from(["none", "none", "drop", "add", "not a dict"]))
    if change == "drop": measured.pop(draw(st.sampled_from(sorted(measured))))
    if change == "add": measured[draw(st.text(max_size=6))] = draw(json_values)
    return draw(json_values) if change == "not a dict" else measured


def criteria():
    registry = MetricRegistry.default()
    registry.register(cost_metric("churn_cost_per_1000", false_positive_cost=50, false_negative_cost=500))
    return Criteria("churn_cost_per_1000 <= 32000", ["recall >= 0.8"], registry=registry)


@SETTINGS
@given(measured_dicts(), st.sampled_from(["stop", "iterate"]))
def test_a_gate_records_finite_measured_numbers_or_raises_the_kits_error_writing_nothing(measured, verdict):
    def finite_number(value): return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    valid = isinstance(measured, dict) and all(finite_number(measured.get(name)) for name in ("churn_cost_per_1000", "recall"))
    with tempfile.TemporaryDirectory() as folder:
        project = Project(Path(folder) / "churn.journal.json", name="churn")
        before = sha256(project.path)
        try: decision = gate(project, "design", verdict, return_to="design" if verdict == "iterate" else None,
                             criteria=criteria(), measured=measured)
        except MlopsKitError:
            assert not valid and sha256(project.path) == before and Project(project.path).decisions == []
            return
        assert valid and decision.metrics["recall"] == float(measured["recall"]) and Project(project.path).decisions == [decision]


# --- assess_added_value's dates ------------------------------------------------------------------------------------

CASE_STUDY = load_case_study()


def ways_to_write(day: date):
    "A date as people and programs write it: mostly ISO text, a date, a datetime or a Timestamp; sometimes text in another form or with a zone"
    forms = [day.isoformat(), day.isoformat()[:7], f"{day.isoformat()}T00:00", day, datetime(day.year, day.month, day.day),
             pd.Timestamp(day), np.datetime64(day), day.isoformat(),                                   # the usual ones first
             day.strftime("%d/%m/%Y"), day.strftime("%B %Y"), f"{day.isoformat()}T00:00+02:00",
             datetime(day.year, day.month, day.day, tzinfo=timezone.utc)]
    return st.integers(0, len(forms) - 1).map(lambda position: forms[position])


odd_dates = st.one_of(st.dates().flatmap(ways_to_write), st.text(max_size=12), st.none(), st.booleans(), st.integers(), st.floats(),
                      st.sampled_from(["", "NaT", "now", "2024-02-30", "9999-12-31", "0001-01-01", "2024-07-01 25:00", "2024-7-1",
                                       "July", "\u0662\u0660\u0662\u0664-07-01"]),
                      st.lists(st.just("2024-07-01"), max_size=2))


@st.composite
def period_ends(draw):
    "(train_end, test_end): mostly inside the data (often a month's first day) and in order, each written some way; sometimes one of them anything"
    month = pd.Timestamp("2023-12-01") + pd.DateOffset(months=draw(st.integers(0, 25)))
    start = (month + pd.Timedelta(days=draw(st.sampled_from([0, 0, 0, 9, 27])))).date()
    end = (pd.Timestamp(start) + pd.DateOffset(months=draw(st.integers(-2, 14))) + pd.Timedelta(days=draw(st.sampled_from([0, 0, 3])))).date()
    train_end, test_end = draw(ways_to_write(start)), draw(ways_to_write(end))
    change = draw(st.sampled_from(["train_end", "test_end"])) if draw(st.integers(0, 3)) == 3 else "none"
    if change == "train_end": train_end = draw(odd_dates)
    if change == "test_end": test_end = draw(odd_dates)
    return train_end, test_end


@SETTINGS
@given(period_ends())
def test_the_assessments_periods_are_sound_or_the_dates_are_refused_naming_them(ends):
    train_end, test_end = ends
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                                  # planted problems in the test period, date formats
        try: train, test = _time_split(CASE_STUDY, train_end, test_end)
        except MlopsKitError as error:
            assert "train_end" in str(error) or "test_end" in str(error), error
            return
    start, end = pd.Timestamp(train_end), pd.Timestamp(test_end)
    train_times, test_times = train.frame[CASE_STUDY.time_column], test.frame[CASE_STUDY.time_column]
    assert len(train_times) and len(test_times)
    assert train_times.max() < start <= test_times.min() and test_times.max() < end
    assert set(train.y) == set(test.y) == {0, 1}


# --- assess_added_value: how to split data without time, and what a rule may answer -------------------------------

from mlops_kit.design.added_value import _check_value_arguments, _rule_predictions, _split, simple_model
from mlops_kit.data import TASKS, Dataset

ROWS = pd.DataFrame({"size": np.arange(40.0), "kind": ["a", "b"] * 20, "label": ["yes", "no", "no", "maybe"] * 10,
                     "flag": ["yes", "no"] * 20, "amount": np.linspace(0.5, 80.25, 40)})
DATASETS = {"binary": Dataset(ROWS, "flag", ["size", "kind"], positive_label="yes"),
            "multiclass": Dataset(ROWS, "label", ["size", "kind"]), "regression": Dataset(ROWS, "amount", ["size", "kind"])}
shares = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.sampled_from([0.25, 0.5, 0.025, 0.975]),
                   st.text(max_size=4), st.booleans())


@SETTINGS
@given(task=st.sampled_from(TASKS), share=shares)
def test_a_split_in_row_order_is_sound_or_the_share_is_refused_naming_it(task, share):
    dataset = DATASETS[task]
    try:
        _check_value_arguments(dataset, None, None, None, 0, 10, 0.01, share)
        train, test, words = _split(dataset, None, None, share)
    except MlopsKitError as error:
        assert "test_share" in str(error) or "all have" in str(error), error
        return
    assert len(train.frame) + len(test.frame) == 40 and len(test.frame) == round((0.25 if share is None else share) * 40)
    assert train.frame.index.max() < test.frame.index.min() and "row order" in words


answers = st.one_of(st.lists(st.sampled_from(["yes", "no", "maybe", "gold", 0, 1, 2, 1.5, True, False, None, float("nan"), float("inf")]),
                             min_size=40, max_size=40),
                    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=40, max_size=40),
                    st.lists(st.booleans(), min_size=40, max_size=40), st.lists(st.integers(-2, 3), min_size=40, max_size=40),
                    st.lists(st.sampled_from(["yes", "no"]), min_size=0, max_size=41), st.none(), st.text(max_size=3))


@SETTINGS
@given(task=st.sampled_from(TASKS), answer=answers)
def test_a_rules_answers_become_labels_or_numbers_or_are_refused(task, answer):
    "Whatever a rule returns, it becomes one label of the target (or one number) per row, or the kit's error"
    dataset = DATASETS[task]
    def rule(frame): return answer if not isinstance(answer, list) else np.asarray(answer, dtype=object if any(isinstance(value, str) for value in answer) else None)
    try: predicted = _rule_predictions(rule, ROWS, dataset)
    except MlopsKitError as error:
        assert "The rule" in str(error), error
        return
    assert len(predicted) == 40
    if task == "regression": assert np.isfinite(predicted).all()
    else: assert set(pd.unique(pd.Series(predicted, dtype=object))) <= set(dataset.classes)


@SETTINGS
@given(task=st.one_of(st.sampled_from(TASKS), st.text(max_size=12), st.none(), st.integers()))
def test_simple_model_takes_a_task_or_names_the_tasks(task):
    try: model = simple_model(["kind"], ["size"], task=task)
    except MlopsKitError as error:
        assert task not in TASKS and "use one of 'binary', 'multiclass', 'regression'" in str(error)
        return
    assert task in TASKS and type(model[-1]).__name__ == ("Ridge" if task == "regression" else "LogisticRegression")
