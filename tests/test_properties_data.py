"""Property-based tests of `mlops_kit.data`'s parsers: whatever a user feeds them, they parse or raise the kit's error.

Each strategy starts from valid input and changes one thing (a value of the wrong type, a key too many or too few, a
number out of range, a misspelled code), so that the examples reach the checks deep inside, not only the first one.
The property: the call returns, or raises `MlopsKitError` (or its subclass `WrongTypeError`); never a numpy, pandas
or Python error. Where the input parses, what comes out is checked too (a schema round-trips through its dict).
"""
import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st

from mlops_kit.data import (COLUMN_KINDS, PERIOD_FREQUENCIES, SEED_MAX, Dataset, Schema, check_by_period, load_case_study,
                            quality_report)
from mlops_kit.errors import MlopsKitError

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Anything a careless user or a hand-edited JSON file might put where a value belongs
ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def parses_or_kit_error(action):
    "The result of `action()`, or None if it raised `MlopsKitError`; any other exception fails the test"
    try: return action()
    except MlopsKitError: return None


# --- schema dictionaries ---------------------------------------------------------------------------------------------

def valid_column(kind:str):
    "A strategy for the dict of one valid column of `kind`, as `Schema.to_dict` writes it"
    rate = st.floats(0, 1)
    if kind in ("integer", "numeric"):
        bounds = st.tuples(st.floats(-1e9, 1e9), st.floats(0, 1e9)).map(lambda pair: (pair[0], pair[0] + pair[1]))
        return st.builds(lambda null_rate, bounds: dict(kind=kind, null_rate=null_rate, minimum=bounds[0], maximum=bounds[1], categories=None),
                         rate, bounds)
    if kind == "datetime":
        days = st.tuples(st.integers(0, 20_000), st.integers(0, 2_000))
        as_text = lambda day: (pd.Timestamp("1970-01-01") + pd.Timedelta(days=day)).isoformat()
        return st.builds(lambda null_rate, pair: dict(kind=kind, null_rate=null_rate, minimum=as_text(pair[0]), maximum=as_text(sum(pair)),
                                                      categories=None), rate, days)
    if kind == "categorical":
        return st.builds(lambda null_rate, values: dict(kind=kind, null_rate=null_rate, minimum=None, maximum=None, categories=values),
                         rate, st.lists(st.text(max_size=6), max_size=4))
    return st.builds(lambda null_rate: dict(kind=kind, null_rate=null_rate, minimum=None, maximum=None, categories=None), rate)


VALID_SCHEMA = st.builds(
    lambda columns, rows, range_tolerance, null_tolerance: dict(version=1, rows=rows, range_tolerance=range_tolerance,
                                                                null_tolerance=null_tolerance, columns=columns),
    st.dictionaries(st.text(min_size=1, max_size=8), st.sampled_from(COLUMN_KINDS).flatmap(valid_column), min_size=1, max_size=4),
    st.integers(0, 10**6), st.floats(0, 5), st.floats(0, 1))

FIELDS = ["kind", "null_rate", "minimum", "maximum", "categories"]
TOP_LEVEL = ["version", "rows", "range_tolerance", "null_tolerance", "columns"]


@st.composite
def schema_dicts(draw):
    "A valid schema dict with one thing changed: a top-level or column entry replaced, removed or added, or a column made text"
    data = draw(VALID_SCHEMA)
    name = draw(st.sampled_from(sorted(data["columns"])))
    change = draw(st.sampled_from(["none", "top value", "top removed", "top added", "column value", "column removed", "column added",
                                   "column not a dict", "column name", "whole thing"]))
    if change == "top value": data[draw(st.sampled_from(TOP_LEVEL))] = draw(ANY_VALUE)
    elif change == "top removed": data.pop(draw(st.sampled_from(TOP_LEVEL)))
    elif change == "top added": data[draw(st.text(max_size=8))] = draw(ANY_VALUE)
    elif change == "column value": data["columns"][name][draw(st.sampled_from(FIELDS))] = draw(ANY_VALUE)
    elif change == "column removed": data["columns"][name].pop(draw(st.sampled_from(FIELDS)))
    elif change == "column added": data["columns"][name][draw(st.text(max_size=8))] = draw(ANY_VALUE)
    elif change == "column not a dict": data["columns"][name] = draw(st.one_of(st.sampled_from(COLUMN_KINDS), ANY_VALUE))
    elif change == "column name": data["columns"][draw(st.one_of(st.integers(), st.none(), st.booleans()))] = data["columns"].pop(name)
    elif change == "whole thing": data = draw(st.one_of(ANY_VALUE, st.just({"columns": draw(ANY_VALUE)})))
    return data


@PROPERTY
@given(schema_dicts())
def test_schema_from_dict_parses_or_raises_the_kits_error(data):
    schema = parses_or_kit_error(lambda: Schema.from_dict(data))
    if schema is not None:
        assert Schema.from_dict(schema.to_dict()) == schema  # what parses round-trips through its dict
        assert all(column.kind in COLUMN_KINDS and 0 <= column.null_rate <= 1 for column in schema.columns.values())


@PROPERTY
@given(VALID_SCHEMA)
def test_every_valid_schema_dict_parses(data):
    assert Schema.from_dict(data).to_dict()["columns"].keys() == data["columns"].keys()


# --- case-study arguments --------------------------------------------------------------------------------------------

BAD_SEEDS = st.one_of(st.integers(max_value=-1), st.integers(min_value=SEED_MAX + 1), st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer() and 0 <= x <= SEED_MAX)),
                      st.text(max_size=6), st.none(), st.booleans(), st.lists(st.integers(0, 5), max_size=2))
BAD_SIZES = st.one_of(st.integers(max_value=2_399), st.integers(min_value=2_400_001), st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer())),
                      st.text(max_size=6), st.none(), st.booleans())


@PROPERTY
@given(seed=st.one_of(BAD_SEEDS, st.sampled_from([0, 7, SEED_MAX])), n_rows=st.one_of(BAD_SIZES, st.just(2_400)))
def test_load_case_study_parses_or_raises_the_kits_error(seed, n_rows):
    "Few valid calls (each draws the data), many invalid ones (refused before any work)"
    dataset = parses_or_kit_error(lambda: load_case_study(seed=seed, n_rows=n_rows))
    valid_seed = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= SEED_MAX
    assert (dataset is not None) == (valid_seed and n_rows == 2_400)
    if dataset is not None: assert len(dataset.frame) == 2_400


# --- period frequencies and dates ------------------------------------------------------------------------------------

TIMED = pd.DataFrame({"month": pd.to_datetime(["2024-01-15", "2024-02-15", "2024-05-03"] * 4), "plan": ["a", "b"] * 6,
                      "spend": np.arange(12.0), "left": [0, 1] * 6})
CODES = [*PERIOD_FREQUENCIES, "MS", "ME", "QS", "QE", "YS", "YE", "min", "s", "B", "W-MON", "A", "T", *PERIOD_FREQUENCIES.values()]


@st.composite
def frequencies(draw):
    "A period code, perhaps changed: a number in front, other letter case, a suffix, spaces; or anything else"
    code = draw(st.sampled_from(CODES))
    change = draw(st.sampled_from(["none", "number", "case", "suffix", "spaces", "text", "other"]))
    if change == "number": return f"{draw(st.integers(-3, 12))}{code}"
    if change == "case": return code.swapcase()
    if change == "suffix": return code + draw(st.text(max_size=3))
    if change == "spaces": return f" {code} "
    if change == "text": return draw(st.text(max_size=6))
    if change == "other": return draw(ANY_VALUE)
    return code


@PROPERTY
@given(frequencies())
def test_check_by_period_parses_any_frequency_or_raises_the_kits_error(freq):
    table = parses_or_kit_error(lambda: check_by_period(TIMED, TIMED, "month", freq=freq))
    if table is not None: assert table.empty and list(table.columns) == ["period", "column", "kind", "rows", "message"]
    report = parses_or_kit_error(lambda: quality_report(TIMED, TIMED, time_column="month", freq=freq))
    assert (report is None) == (table is None)  # quality_report accepts exactly the same frequencies


DATES = st.one_of(st.dates().map(str), st.datetimes().map(lambda moment: moment.isoformat()), st.text(max_size=12), ANY_VALUE,
                  st.sampled_from(["2024-02-30", "2024-13-01", "March", "2024", "2024-03", "20240301", "2024-01-01T00:00Z", ""]))


@PROPERTY
@given(start=st.one_of(st.none(), DATES), end=st.one_of(st.none(), DATES))
def test_between_parses_any_dates_or_raises_the_kits_error(start, end):
    dataset = Dataset(TIMED, "left", ["plan", "spend"], time_column="month")
    window = parses_or_kit_error(lambda: dataset.between(start, end))
    if window is not None: assert 0 < len(window.frame) <= len(TIMED)


# --- leakage screening: the task, the positive label and the threshold -------------------------------------------------

from mlops_kit.data import TASKS, screen_leakage

SCREENED = pd.DataFrame({"plan": ["a", "b", "c"] * 8, "spend": np.arange(24) * 0.5, "left": [0, 1] * 12,
                         "tier": ["x", "y", "z", "x"] * 6, "signed": [True, False, False] * 8})
THRESHOLDS = st.one_of(st.floats(-1, 2), st.sampled_from([0, 0.5, 0.98, 1, 1.0001]), ANY_VALUE)


@PROPERTY
@given(target=st.sampled_from(list(SCREENED.columns)), task=st.one_of(st.none(), st.sampled_from(TASKS), ANY_VALUE),
       positive_label=st.one_of(st.none(), st.sampled_from([0, 1, "x", True, "a", 2.5]), ANY_VALUE), threshold=THRESHOLDS)
def test_screening_parses_any_task_label_and_threshold_or_raises_the_kits_error(target, task, positive_label, threshold):
    "Whatever task, positive label and threshold a user passes, the screen answers or refuses in the kit's words, like the report"
    table = parses_or_kit_error(lambda: screen_leakage(SCREENED, target, task=task, positive_label=positive_label, threshold=threshold))
    report = parses_or_kit_error(lambda: quality_report(SCREENED, target=target, task=task, positive_label=positive_label,
                                                        leakage_threshold=threshold))
    assert (report is None) == (table is None)  # the report accepts exactly what the screen accepts
    if table is not None:
        assert set(table.feature) <= set(SCREENED.columns) - {target} and (table.score >= threshold).all()
        assert table.feature.tolist() == report.leakage.feature.tolist()
