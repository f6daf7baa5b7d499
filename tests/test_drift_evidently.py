"""Our drift statistics equal Evidently 0.7's, on numbers Evidently itself computed.

`tests/fixtures/evidently/make_fixtures.py` builds a separate environment with `evidently==0.7.*` and `pandas<3`, runs
Evidently's public Report API (`DataDriftPreset`) on deterministic data and saves the data with Evidently's per-column
method, threshold, score and verdict, and its dataset verdict. Here the same data goes through
`mlops_kit.deployment.drift_report`: the methods, thresholds and verdicts must be identical and the scores equal to
1e-9 (relative; Evidently puts string categories in a Python set, so sums run in another order and the last digits of
a score may differ). The fixtures cover columns with 2, 3, 5, 6, 20 and 21 unique values, integer columns with 10 and
11, a category only in the current window, NaN and +-inf, PSI with empty bins, references of at most and of more than
1,000 rows, categorical and numerical columns, and the dataset's drift share.

Where we differ on purpose: Evidently tests free-text columns with a classifier; we skip them with the reason (the
issue asks for that), so text columns are checked to be skipped and left out of the dataset share.
"""
import json, math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_kit.deployment import drift_report

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "evidently").glob("*.json"))
ENCODED = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


def decoded_frame(columns: dict, dtypes: dict) -> pd.DataFrame:
    "A frame from the fixture's columns: 'NaN' / 'Infinity' / '-Infinity' in numerical columns, null for a missing string"
    frame = {}
    for name, values in columns.items():
        dtype = dtypes[name]
        if dtype.startswith(("float", "int")):
            frame[name] = pd.Series([ENCODED.get(value, value) if isinstance(value, str) else value for value in values], dtype=dtype)
        elif dtype == "bool":
            frame[name] = pd.Series(values, dtype=bool)
        else:
            frame[name] = pd.Series(values, dtype="str")
    return pd.DataFrame(frame)


def declared_kinds(definition: dict) -> dict | None:
    "The column kinds the fixture declared to Evidently, or None where Evidently inferred them"
    kinds = {}
    for key, kind in [("numerical_columns", "numerical"), ("categorical_columns", "categorical")]:
        kinds.update({name: kind for name in definition.get(key) or []})
    return kinds or None


def run_cases():
    for path in FIXTURES:
        fixture = json.loads(path.read_text())
        for number, run in enumerate(fixture["runs"]):
            yield pytest.param(fixture, run, id=f"{path.stem}-{number}-{json.dumps(run['preset_kwargs'], sort_keys=True)}")


@pytest.mark.parametrize("fixture, run", list(run_cases()))
def test_drift_report_equals_evidently(fixture, run):
    reference = decoded_frame(fixture["data"]["reference"], fixture["dtypes"])
    current = decoded_frame(fixture["data"]["current"], fixture["dtypes"])
    evidently_columns = run["columns"]
    text_columns = [name for name, result in evidently_columns.items() if "text_content" in result["stattest"]]
    compared = [name for name in evidently_columns if name not in text_columns]
    options = run["preset_kwargs"]
    methods = {name: options["method"] for name in compared} if "method" in options else None
    kinds = declared_kinds(fixture["data_definition"])
    report = drift_report(reference, current, columns=list(evidently_columns), kinds=kinds and {name: kinds[name] for name in evidently_columns if name in kinds},
                          methods=methods, drift_share=options.get("drift_share", 0.5))
    for name in text_columns:
        assert (report[name].kind, report[name].status) == ("text", "skipped"), report[name]
    for name in compared:
        ours, theirs = report[name], evidently_columns[name]
        assert (ours.method, ours.threshold) == (theirs["stattest"], theirs["threshold"]), f"{name}: {ours}"
        assert math.isclose(ours.score, theirs["score"], rel_tol=1e-9, abs_tol=1e-300), f"{name}: ours {ours.score!r}, Evidently {theirs['score_repr']}"
        assert ours.drifted == theirs["drift_detected"], f"{name}: ours {ours.status}, Evidently drift={theirs['drift_detected']}"
    if not text_columns:
        dataset = run["dataset"]
        assert len(report.drifted_columns) == dataset["drifted_count"]
        assert report.share == pytest.approx(dataset["drifted_share"], rel=1e-12)
        assert report.dataset_drift == dataset["dataset_drift"]


def test_the_fixtures_cover_what_the_issue_lists():
    "Every case the issue names is in some fixture: unique counts, integer cardinalities, both size regimes, every method"
    methods, sizes, names = set(), set(), set()
    for path in FIXTURES:
        fixture = json.loads(path.read_text())
        sizes.add(fixture["sizes"]["reference"] > 1000)
        for run in fixture["runs"]:
            methods |= {result["stattest"] for result in run["columns"].values()}
            names |= set(run["columns"])
    assert sizes == {True, False}
    assert {"ks", "wasserstein", "chisquare", "z", "jensenshannon", "psi"} <= methods
    joined = " ".join(sorted(names))
    for needed in ["2u", "3u", "5u", "6u", "20u", "21u", "10u", "11u"]:
        assert needed in joined, f"no fixture column for {needed}: {sorted(names)[:20]}"
