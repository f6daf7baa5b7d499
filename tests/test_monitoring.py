"""Tests of `mlops_kit.deployment`: data drift per column and per dataset.

What this file proves:
- On the case study, month by month against the first six clean months, the detector flags exactly the input episodes
  the ground truth planted (the unit incident, the spring campaign), in their months and only there; the missing
  values and the concept drift change no input distribution and raise no flag.
- Drift we plant ourselves (random column, split and size, ten seeds) in the clean case study and in two real datasets
  is found, in both size regimes (KS / chi-square / Z up to 1,000 reference rows, Wasserstein / Jensen-Shannon above);
  two halves of the same data raise no flag (distance methods) or few (p-value methods, bound stated in the test).
- Edge cases end in a status and a reason, bad arguments in a `DriftError` that says what to fix.
- Per-column overrides change the method, threshold and verdict; reports explain themselves; `dataset_drift` follows
  the `share >= drift_share` rule exactly.
"""
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import REFERENCE_END
from mlops_kit.data import load_real_dataset
from mlops_kit.deployment import DRIFT_METHODS, DriftError, DriftReport, column_drift, drift_report, drift_type

SEEDS = range(10)
LAST_MONTH = "2025-12-01"
TABLE_COLUMNS = ["column", "kind", "method", "threshold", "score", "status", "reference_rows", "current_rows",
                 "unique_values", "reason", "warning"]


@pytest.fixture(scope="module")
def clean(case):
    "The case study before its first planted problem, without the leaking column"
    return case.clean_sample()


@pytest.fixture(scope="module")
def monthly_reports(case, clean, reference):
    "Month ('YYYY-MM') -> drift report of that month's features against the reference, from 2024-07 to 2025-12"
    frame = case.frame[(case.frame.month >= REFERENCE_END) & (case.frame.month <= LAST_MONTH)]
    return {month.strftime("%Y-%m"): drift_report(reference, rows[clean.features]) for month, rows in frame.groupby("month")}


def planted_input_columns(case, month:str)->set:
    "Columns whose distribution the ground truth changes in `month` (missing values and concept drift change none)"
    kinds = ("quality_incident", "covariate_drift")
    return {column for problem in case.ground_truth if problem.kind in kinds and problem.affects(month).all()
            for column in problem.columns}


# ---------------------------------------------------------------- 1. the case study, month by month

def test_reference_is_six_clean_months_of_features(reference, clean):
    "The reference holds 2024-01..2024-06 of the clean sample: no leaking column, no missing values"
    assert "cancel_page_visits" not in reference.columns and list(reference.columns) == clean.features
    assert len(reference) == 6 * 1500 and not reference.isna().any().any()


def test_monthly_reports_cover_every_month_after_the_reference(monthly_reports):
    assert list(monthly_reports) == [month.strftime("%Y-%m") for month in pd.date_range(REFERENCE_END, LAST_MONTH, freq="MS")]


def test_each_month_flags_exactly_the_planted_input_episodes(case, monthly_reports):
    "Drifted columns == the columns a planted input episode changes that month; empty in every other month"
    flagged = {month: set(report.drifted_columns) for month, report in monthly_reports.items()}
    expected = {month: planted_input_columns(case, month) for month in monthly_reports}
    assert flagged == expected


def test_episode_dates_are_the_ones_this_file_reasons_about(case, monthly_reports):
    "Guards the reading above: quiet until 2025-02, the unit incident in 2025-02, the campaign in 2025-04..06"
    episodes = {month: planted_input_columns(case, month) for month in monthly_reports}
    assert {month for month, columns in episodes.items() if columns} == {"2025-02", "2025-04", "2025-05", "2025-06"}
    assert episodes["2025-02"] == {"monthly_charges"}
    assert episodes["2025-05"] == {"contract_type", "tenure_months"}


def test_no_drift_before_the_first_input_episode(case, monthly_reports):
    "2024-07..2025-01: nothing drifts, not even after the CRM migration starts dropping values (2024-09)"
    first_episode = case.ground_truth.of_kind("quality_incident")[0].start
    quiet = [month for month in monthly_reports if pd.Timestamp(month) < first_episode]
    assert quiet[0] == "2024-07" and quiet[-1] == "2025-01"
    for month in quiet: assert monthly_reports[month].drifted_columns == [], month


def test_missing_values_shrink_the_sample_without_shifting_it(case, monthly_reports):
    "From 2024-09 about 10% of usage_hours and 6% of payment_method are dropped before testing; neither drifts"
    for month, report in monthly_reports.items():
        for column, share in case.ground_truth.of_kind("missing_values")[0].magnitude.items():
            result = report[column]
            assert result.status == "no drift", (month, column)
            if month < "2024-09": assert result.current_rows == 1500
            else: assert 1500 * (1 - 2 * share) < result.current_rows < 1500, (month, column, result.current_rows)


def test_unit_incident_flags_monthly_charges_in_february_2025_only(monthly_reports):
    "Charges in cents (x100) give a Wasserstein score far above the threshold; March is back to normal"
    incident = monthly_reports["2025-02"]["monthly_charges"]
    assert incident.method == "wasserstein" and incident.drifted and incident.score > 100 * incident.threshold
    assert monthly_reports["2025-01"]["monthly_charges"].status == "no drift"
    assert monthly_reports["2025-03"]["monthly_charges"].status == "no drift"


def test_campaign_flags_contract_type_and_tenure_from_april_to_june_2025(monthly_reports):
    "The covariate drift is flagged in all three months of the episode and in none after it ends (2025-07)"
    for month in ["2025-04", "2025-05", "2025-06"]:
        assert monthly_reports[month]["contract_type"].method == "jensenshannon"
        assert monthly_reports[month]["tenure_months"].method == "wasserstein"
        assert set(monthly_reports[month].drifted_columns) == {"contract_type", "tenure_months"}, month
    for month in ["2025-03", "2025-07", "2025-08"]: assert monthly_reports[month].drifted_columns == [], month


def test_concept_drift_is_invisible_to_input_drift(case, monthly_reports):
    "From 2025-09 only the link between inputs and churn changes: an input drift report cannot see it"
    start = case.ground_truth.of_kind("concept_drift")[0].start
    later = [month for month in monthly_reports if pd.Timestamp(month) >= start]
    assert later == ["2025-09", "2025-10", "2025-11", "2025-12"]
    for month in later: assert monthly_reports[month].drifted_columns == [], month


def test_two_drifted_columns_of_eleven_are_no_dataset_drift_by_default(monthly_reports):
    "At the default drift_share 0.5 no month is a dataset drift; the campaign's 2 of 11 columns are 18%"
    assert not any(report.dataset_drift for report in monthly_reports.values())
    campaign = monthly_reports["2025-05"]
    assert len(campaign.tested) == 11 and campaign.share == pytest.approx(2 / 11)
    assert DriftReport(campaign.columns, drift_share=0.15).dataset_drift


# ---------------------------------------------------------------- 2. drift we plant ourselves

def numerical_columns(frame:pd.DataFrame)->list:
    return [name for name in frame.columns if drift_type(frame[name]) == "numerical"]


def categorical_columns(frame:pd.DataFrame)->list:
    return [name for name in frame.columns if drift_type(frame[name]) == "categorical"]


def shifted(frame:pd.DataFrame, column:str, size:float, scale:float)->pd.DataFrame:
    "`frame` with `size` x `scale` added to `column`"
    return frame.assign(**{column: frame[column].astype(float) + size * scale})


def with_more_of(frame:pd.DataFrame, column:str, category, points:float, rng)->pd.DataFrame:
    "`frame` where the share of `category` in `column` grows by `points` (0.15: 15 points), taken from the others"
    others = np.flatnonzero((frame[column] != category).to_numpy())
    relabel = rng.choice(others, size=round(points * len(frame)), replace=False)
    values = frame[column].to_numpy(copy=True)
    values[relabel] = category
    return frame.assign(**{column: values})


def split_case_study(clean, rng, small:bool)->tuple:
    "Reference = months before a random start month (2024-03..2024-08), 1,000 of its rows if `small`; current = that month"
    frame = clean.frame
    start = rng.choice(pd.date_range("2024-03-01", "2024-08-01", freq="MS"))
    reference = frame.loc[frame.month < start, clean.features]
    if small: reference = reference.sample(n=1000, random_state=int(rng.integers(1 << 31)))
    return reference, frame.loc[frame.month == start, clean.features]


def split_real(dataset, rng)->tuple:
    "Rows shuffled, cut at a random 40-60% point: reference before the cut, current after"
    frame = dataset.X.sample(frac=1, random_state=int(rng.integers(1 << 31)))
    cut = int(rng.uniform(0.4, 0.6) * len(frame))
    return frame.iloc[:cut], frame.iloc[cut:]


@pytest.fixture(scope="module")
def real_datasets():
    return {name: load_real_dataset(name) for name in ["breast_cancer", "wine"]}


# (dataset, small reference?) -> (detectable mean shift range in reference standard deviations, expected method)
NUMERICAL_REGIMES = {
    ("case study", False): ((0.3, 1.0), "wasserstein"),  # reference 3,000-10,500 rows, current 1,500
    ("case study", True): ((0.3, 1.0), "ks"),            # reference 1,000 rows, current 1,500
    ("breast_cancer", True): ((0.5, 1.0), "ks"),         # 569 rows: about 285 a side
    ("wine", True): ((1.0, 1.5), "ks"),                  # 178 rows: about 89 a side, so only large shifts are certain
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dataset, small", list(NUMERICAL_REGIMES))
def test_planted_mean_shift_is_flagged(dataset, small, seed, clean, real_datasets):
    """A mean shift in the stated range, on a random numerical column after a random split, is flagged by the
    regime's method: 0.3-1.0 std on the case study (both regimes), 0.5-1.0 on breast_cancer, 1.0-1.5 on wine"""
    rng = np.random.default_rng(seed)
    (low, high), method = NUMERICAL_REGIMES[(dataset, small)]
    reference, current = split_case_study(clean, rng, small) if dataset == "case study" else split_real(real_datasets[dataset], rng)
    column = rng.choice(numerical_columns(reference))
    size = rng.uniform(low, high)
    report = drift_report(reference, shifted(current, column, size, reference[column].std()))
    result = report[column]
    assert (len(reference) <= 1000) == small
    assert result.method == method and result.drifted, (column, size, result.explain())


# (small reference?) -> (share change in points that the regime's method must catch, expected methods)
CATEGORICAL_REGIMES = {
    True: ((0.10, 0.20), {"chisquare", "z"}),  # 1,000 reference rows: p-value tests catch 10-20 points
    False: ((0.18, 0.25), {"jensenshannon"}),  # Jensen-Shannon 0.1 needs about 15 points; see the test below
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("small", [True, False])
def test_planted_category_share_change_is_flagged(small, seed, clean):
    """A random category of a random categorical column gains 10-20 points (reference <= 1,000 rows: chi-square or Z)
    or 18-25 points (reference > 1,000 rows: Jensen-Shannon) in the current window; the column drifts"""
    rng = np.random.default_rng(seed)
    (low, high), methods = CATEGORICAL_REGIMES[small]
    reference, current = split_case_study(clean, rng, small)
    column = rng.choice(categorical_columns(reference))
    category = rng.choice(reference[column].unique())
    points = rng.uniform(low, high)
    result = drift_report(reference, with_more_of(current, column, category, points, rng))[column]
    assert result.method in methods and result.drifted, (column, category, points, result.explain())


def test_jensen_shannon_at_its_default_threshold_misses_a_ten_point_change(clean):
    "The limit of the large regime, stated: contract_type 50% -> 60% month-to-month scores about 0.07 < 0.1"
    frame = clean.frame[clean.features]
    reference, current = frame.iloc[:6000], frame.iloc[6000:7500]
    moved = with_more_of(current, "contract_type", "month-to-month", 0.10, np.random.default_rng(0))
    result = drift_report(reference, moved)["contract_type"]
    assert result.method == "jensenshannon" and 0.05 < result.score < 0.1 and result.status == "no drift"
    assert column_drift(reference["contract_type"].sample(1000, random_state=0), moved["contract_type"]).drifted


def random_halves(frame:pd.DataFrame, seed:int)->tuple:
    shuffled = frame.sample(frac=1, random_state=seed)
    return shuffled.iloc[:len(frame) // 2], shuffled.iloc[len(frame) // 2:]


@pytest.mark.parametrize("seed", SEEDS)
def test_halves_of_the_same_large_data_never_drift(seed, clean):
    "Two random halves of the clean case study (6,000 rows each): Wasserstein and Jensen-Shannon flag no column"
    reference, current = random_halves(clean.frame[clean.features], seed)
    report = drift_report(reference, current)
    assert {result.method for result in report.tested} == {"wasserstein", "jensenshannon"}
    assert report.drifted_columns == [] and not report.dataset_drift


@pytest.fixture(scope="module")
def small_halves_flags(clean, real_datasets)->dict:
    "Method -> (flagged, tested) over 10 seeds of two random halves of 2,000 clean case-study rows, breast_cancer and wine"
    samples = {"case study": clean.frame[clean.features].sample(2000, random_state=0),
               **{name: dataset.X for name, dataset in real_datasets.items()}}
    counts = {}
    for frame in samples.values():
        for seed in SEEDS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # see the unseen-category check in nbs/deployment/05_drift.ipynb
                report = drift_report(*random_halves(frame, seed))
            for result in report.tested:
                flagged, tested = counts.get(result.method, (0, 0))
                counts[result.method] = (flagged + bool(result.drifted), tested + 1)
    return counts


def test_small_halves_use_the_p_value_methods(small_halves_flags):
    assert set(small_halves_flags) == {"ks", "chisquare", "z"}
    assert sum(tested for _, tested in small_halves_flags.values()) == 10 * (11 + 30 + 13)


@pytest.mark.parametrize("method", ["ks", "z"])
def test_halves_of_the_same_small_data_flag_at_most_twice_the_nominal_rate(small_halves_flags, method):
    """A p-value method at 0.05 should flag about 5% of columns on two halves of the same data; the bound is 10% of the
    column tests over 10 seeds (KS: 480 tests, Z: 10, where one flag is allowed). Chi-square is left out on purpose:
    Evidently's chi-square (which we reproduce exactly, see test_drift_evidently.py) takes the reference's shares as
    exact expected values, so with a reference no larger than the window it flags well above 5% (about 20% here);
    a larger reference (or another method) is the remedy, as nbs/deployment/05_drift.ipynb says"""
    flagged, tested = small_halves_flags[method]
    assert flagged <= max(1, 0.10 * tested), f"{method}: {flagged} of {tested} column tests flagged with no drift planted"


# ---------------------------------------------------------------- 3. edge cases

@pytest.fixture
def small_frame():
    "500 rows: a normal number, a 3-category text column and a boolean"
    rng = np.random.default_rng(0)
    return pd.DataFrame({"amount": rng.normal(50, 10, 500), "colour": rng.choice(["red", "green", "blue"], 500),
                         "flag": rng.random(500) < 0.4})


def test_empty_current_window_is_an_error_not_a_report_of_no_drift(small_frame):
    "Issue 13: a window without rows used to read '0 of 0 tested columns drifted', which sounds like good news"
    with pytest.raises(DriftError, match="The current frame has no rows: there is nothing to compare"):
        drift_report(small_frame, small_frame.iloc[:0])
    with pytest.raises(DriftError, match="The reference frame has no rows"):
        drift_report(small_frame.iloc[:0], small_frame)


# ---------------------------------------------------------------- 4. per-column overrides

@pytest.fixture
def slightly_shifted():
    "1,000 normal reference values and the same values + 0.2 std: KS sees it (p ~ 1e-4), PSI at 0.1 does not (~0.05)"
    reference = pd.DataFrame({"amount": np.random.default_rng(1).normal(0, 1, 1000)})
    return reference, reference + 0.2


def test_method_override_changes_method_and_verdict(slightly_shifted):
    reference, current = slightly_shifted
    default = drift_report(reference, current)["amount"]
    chosen = drift_report(reference, current, methods={"amount": "psi"})["amount"]
    assert default.method == "ks" and default.status == "drift"
    assert chosen.method == "psi" and chosen.reason == "you chose it" and chosen.threshold == DRIFT_METHODS["psi"]["threshold"]
    assert chosen.status == "no drift" and chosen.score < chosen.threshold


def test_threshold_override_changes_threshold_and_verdict(clean):
    "tenure_months + 0.3 std: Wasserstein ~0.3 drifts at the default 0.1, not at 0.5"
    frame = clean.frame[clean.features]
    reference, current = frame.iloc[:6000], frame.iloc[6000:]
    current = shifted(current, "tenure_months", 0.3, reference["tenure_months"].std())
    default = drift_report(reference, current)["tenure_months"]
    raised = drift_report(reference, current, thresholds={"tenure_months": 0.5})["tenure_months"]
    assert default.method == raised.method == "wasserstein" and default.threshold == 0.1 and default.drifted
    assert raised.threshold == 0.5 and raised.score == pytest.approx(default.score) and raised.status == "no drift"
    assert "0.5" in raised.explain()


def test_p_value_threshold_override_is_compared_the_method_s_way(slightly_shifted):
    "For KS a smaller threshold is stricter: p <= threshold"
    reference, current = slightly_shifted
    default = drift_report(reference, current)["amount"]
    strict = drift_report(reference, current, thresholds={"amount": default.score / 2})["amount"]
    exact = drift_report(reference, current, thresholds={"amount": default.score})["amount"]
    assert strict.status == "no drift" and exact.status == "drift"  # ks drifts when p <= threshold


def test_kind_override_makes_an_integer_column_categorical():
    "An integer column with 12 values is numerical (KS); declared categorical it gets chi-square"
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"rooms": rng.integers(1, 13, 500)})
    current = pd.DataFrame({"rooms": rng.integers(1, 13, 300)})
    assert drift_report(reference, current)["rooms"].method == "ks"
    declared = drift_report(reference, current, kinds={"rooms": "categorical"})["rooms"]
    assert declared.kind == "categorical" and declared.method == "chisquare"


def test_kind_override_makes_a_small_integer_column_numerical(clean):
    "support_calls (0-5) is inferred categorical; declared numerical it has 6 values > 5, so KS"
    reference = clean.frame[["support_calls"]].iloc[:800]
    current = clean.frame[["support_calls"]].iloc[800:1600]
    assert drift_report(reference, current)["support_calls"].method == "chisquare"
    declared = drift_report(reference, current, kinds={"support_calls": "numerical"})["support_calls"]
    assert declared.kind == "numerical" and declared.method == "ks"


# ---------------------------------------------------------------- 5. the report explains itself

def test_explain_states_method_threshold_score_and_verdict(monthly_reports):
    report = monthly_reports["2025-05"]
    lines = report.explain().splitlines()
    assert lines[0] == ("The dataset did not drift: 2 of 11 tested columns drifted (18%; the dataset drifts from 50%).")
    assert len(lines) == 1 + len(report.columns)
    for line, result in zip(lines[1:], report.columns):
        assert line.startswith(f"- {result.column} ({result.kind}): {result.method} ")
        assert f"{result.score:.4g}" in line and f"{result.threshold:g}" in line and f": {result.status}." in line
        assert DRIFT_METHODS[result.method]["score"] in line and "Method chosen because" in line


def test_table_has_one_row_per_column_with_the_documented_columns(monthly_reports):
    report = monthly_reports["2025-02"]
    table = report.table()
    assert list(table.columns) == TABLE_COLUMNS
    assert table.column.tolist() == [result.column for result in report.columns] and len(table) == 11
    row = table.set_index("column").loc["monthly_charges"]
    assert row.status == "drift" and row.method == "wasserstein" and row.threshold == 0.1 and row.current_rows == 1500


def four_columns(drifting:int, total:int=4)->tuple:
    "Reference and current frames of `total` columns, the first `drifting` of which drift for certain"
    reference = pd.DataFrame({f"c{number}": [5.0] * 100 for number in range(total)})
    current = reference.copy()
    for number in range(drifting): current[f"c{number}"] = 7.0
    return reference, current


@pytest.mark.parametrize("drifting, total, drift_share, expected", [
    (2, 4, 0.5, True),     # 0.5 >= 0.5: the boundary counts as drift
    (1, 3, 0.5, False),
    (1, 3, 1 / 3, True),
    (1, 2, 0.5, True),
    (3, 4, 0.75, True),
    (2, 4, 0.51, False),
    (4, 4, 1.0, True),
    (0, 4, 0.25, False),
])
def test_dataset_drift_follows_the_drift_share_rule_at_the_boundary(drifting, total, drift_share, expected):
    report = drift_report(*four_columns(drifting, total), drift_share=drift_share)
    assert len(report.drifted_columns) == drifting and report.share == pytest.approx(drifting / total)
    assert report.dataset_drift is expected


def test_repr_names_the_drifted_columns(monthly_reports):
    assert repr(monthly_reports["2025-04"]) == "DriftReport(dataset no drift: 2/11 columns drifted: contract_type, tenure_months)"
