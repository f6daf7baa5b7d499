"""Tests of `mlops_kit.data`: the case study, the real dataset and the data-quality checks.

The generator and the checks were written together, so finding the case study's own planted problems proves little.
These tests therefore also plant problems themselves, at random columns, periods and sizes, in clean case-study data
and in the breast cancer data, for ten seeds each, and require the checks to find exactly those problems.
"""
import json

import numpy as np
import pandas as pd
import pytest

from mlops_kit.data import (CASE_STUDY_COSTS, CASE_STUDY_SCENARIOS, PROBLEM_KINDS, REAL_DATASETS, Dataset,
                            case_study_ground_truth, check_by_period, find_duplicates, infer_schema,
                            load_case_study, load_real_dataset, quality_report, screen_leakage, single_feature_scores,
                            validate)
from mlops_kit.errors import MlopsKitError

SEEDS = range(10)
CLEAN_END = "2024-09-01"  # the first planted problem that changes rows (the CRM migration)


def fingerprint(frame):
    return int(pd.util.hash_pandas_object(frame).sum())


def findings(violations):
    "The set of (period, column, kind), or (column, kind) without periods, of a violations table"
    names = ["period", "column", "kind"] if "period" in violations else ["column", "kind"]
    return set(violations[names].itertuples(index=False, name=None))


def expected_violations(dataset):
    "What the planted missing values and incidents of `dataset` should cause: {(month, column, kind)}"
    months = pd.Series(dataset.frame[dataset.time_column].unique())
    kinds = {"missing_values": "null_rate", "quality_incident": "out_of_range"}
    return {(month.strftime("%Y-%m"), column, kinds[problem.kind])
            for problem in dataset.ground_truth if problem.kind in kinds
            for month in months[problem.affects(months)] for column in problem.columns}


# --- the case study --------------------------------------------------------------------------------------------------

def test_same_seed_same_data_other_seed_other_data(case):
    again = load_case_study(seed=42)
    assert fingerprint(again.frame) == fingerprint(case.frame)
    assert again.frame.to_csv().encode() == case.frame.to_csv().encode()
    assert again.ground_truth == case.ground_truth == case_study_ground_truth()
    assert fingerprint(load_case_study(seed=43).frame) != fingerprint(case.frame)


def test_scenarios_plant_each_problem_elsewhere_and_the_lessons_scenario_is_the_default():
    assert list(CASE_STUDY_SCENARIOS) == ["lessons", "practice", "capstone"]
    assert all(isinstance(text, str) and 20 < len(text) < 200 for text in CASE_STUDY_SCENARIOS.values())
    for seed in (0, 7):
        default, lessons = load_case_study(seed=seed, n_rows=2_400), load_case_study(seed=seed, n_rows=2_400, scenario="lessons")
        assert default.frame.to_csv() == lessons.frame.to_csv() and default.ground_truth == lessons.ground_truth
    truths = {name: case_study_ground_truth(name) for name in CASE_STUDY_SCENARIOS}
    for kind in ["missing_values", "quality_incident", "covariate_drift", "concept_drift"]:
        columns = [frozenset(truth.columns(kind)) for truth in truths.values()]
        starts = [truth.of_kind(kind)[0].start for truth in truths.values()]
        assert len(set(columns)) == len(set(starts)) == 3, kind  # other columns and another month in each scenario
    for kind in ["missing_values", "quality_incident"]:  # what the design checks flag is never shared
        assert len(set.union(*map(set, [truth.columns(kind) for truth in truths.values()]))) == sum(len(truth.columns(kind)) for truth in truths.values())
    practice = load_case_study(seed=42, n_rows=2_400, scenario="practice")
    assert practice.scenario == "practice" and practice.ground_truth == truths["practice"]
    assert practice.between(end="2024-07-01").scenario == "practice"
    for wrong in ["exam", "Lessons", None, 1]:
        with pytest.raises(MlopsKitError, match="unknown case-study scenario .*use one of 'lessons', 'practice', 'capstone'"):
            load_case_study(n_rows=2_400, scenario=wrong)


def test_case_study_shape_and_roles(case):
    frame = case.frame
    assert frame.shape == (36_000, 15)
    assert frame.month.min() == pd.Timestamp("2024-01-01") and frame.month.max() == pd.Timestamp("2025-12-01")
    assert (frame.groupby("month").size() == 1_500).all()
    assert (case.target, case.time_column, case.id_column) == ("churned", "month", "customer_id")
    assert case.categorical == ["region", "plan", "contract_type", "payment_method", "paperless_billing"]
    assert case.numerical == ["tenure_months", "monthly_charges", "support_calls", "usage_hours", "inactive_days",
                              "customer_age", "cancel_page_visits"]
    assert 0.10 < case.y.mean() < 0.25
    assert case.costs == CASE_STUDY_COSTS == {"false_positive": 50.0, "false_negative": 500.0}
    assert frame.customer_id.is_unique
    assert "<h4>Lumen churn case study</h4>" in case._repr_html_()
    assert len(load_case_study(n_rows=2_410).frame) == 2_400  # rounded down to a multiple of 24 months
    with pytest.raises(ValueError, match="at least 2,400"):
        load_case_study(n_rows=1_000)


def test_ground_truth_names_every_kind_with_dates(case):
    truth = case.ground_truth
    assert [problem.kind for problem in truth] == list(PROBLEM_KINDS)
    assert truth.columns("leakage") == ["cancel_page_visits"]
    assert truth.clean_until == pd.Timestamp(CLEAN_END)
    assert {problem.kind: (str(problem.start.date()), problem.end and str(problem.end.date())) for problem in truth} == {
        "leakage": ("2024-01-01", None), "missing_values": ("2024-09-01", None),
        "quality_incident": ("2025-02-01", "2025-03-01"), "covariate_drift": ("2025-04-01", "2025-07-01"),
        "concept_drift": ("2025-09-01", None)}
    assert json.loads(json.dumps([problem.magnitude for problem in truth]))  # plain data
    assert list(truth.table().columns) == ["kind", "columns", "start", "end", "magnitude", "description"]


def test_clean_sample_is_before_every_planted_problem_and_without_the_leak(case):
    clean = case.clean_sample()
    assert clean.frame.month.max() < pd.Timestamp(CLEAN_END) and len(clean.frame) == 12_000
    assert "cancel_page_visits" not in clean.frame and "cancel_page_visits" not in clean.features + clean.numerical
    assert clean.frame.notna().all().all() and len(clean.ground_truth) == 0
    sample = case.clean_sample(n=500, seed=3)
    assert len(sample.frame) == 500 and fingerprint(sample.frame) == fingerprint(case.clean_sample(n=500, seed=3).frame)
    with pytest.raises(ValueError, match="between 1 and 12000"):
        case.clean_sample(n=20_000)


def test_missing_values_and_incident_are_where_the_ground_truth_says(case):
    frame = case.frame
    null_share = frame.drop(columns="month").isna().groupby(frame.month).mean()
    after = null_share.index >= pd.Timestamp(CLEAN_END)
    assert (null_share[~after] == 0).all().all()
    assert null_share.loc[after, "usage_hours"].between(0.07, 0.13).all()
    assert null_share.loc[after, "payment_method"].between(0.035, 0.085).all()
    assert (null_share.drop(columns=["usage_hours", "payment_method"]) == 0).all().all()
    charges = frame.groupby("month").monthly_charges
    assert charges.min()["2025-02-01"] >= 1_800 and charges.max().drop(pd.Timestamp("2025-02-01")).max() <= 120


def test_covariate_drift_is_large_in_its_columns_and_months_only(case):
    "Mean shifts (in reference std) and category shares per month, against the first half of 2024"
    from scipy.stats import ks_2samp
    frame = case.frame.drop(columns=["customer_id", "churned", "cancel_page_visits"])  # the leak follows the target
    reference = frame[frame.month < "2024-07-01"]
    episode = case.ground_truth.of_kind("covariate_drift")[0]
    for month, rows in frame.groupby("month"):
        drifting = bool(episode.affects(month)[0])
        for column in case.numerical[:-1]:
            if column == "monthly_charges" and month == pd.Timestamp("2025-02-01"): continue  # the incident
            shift = (rows[column].mean() - reference[column].mean()) / reference[column].std()
            if drifting and column == "tenure_months":
                assert shift < -0.5 and ks_2samp(rows[column], reference[column]).pvalue < 1e-10, (month, shift)
            else: assert abs(shift) < 0.2, (month, column, shift)
        for column in case.categorical:
            change = rows[column].value_counts(normalize=True) - reference[column].value_counts(normalize=True)
            if drifting and column == "contract_type": assert change["month-to-month"] > 0.15, (month, change)
            else: assert change.abs().max() < 0.06, (month, column, change)


def churn_model(dataset):
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    encode = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), dataset.categorical), (numbers, dataset.numerical))
    return make_pipeline(encode, LogisticRegression(max_iter=1_000)).fit(dataset.X, dataset.y)


def test_target_is_learnable_the_leak_too_good_and_concept_drift_hurts(case):
    from sklearn.metrics import roc_auc_score
    clean = case.clean_sample()
    train, test = clean.between(end="2024-07-01"), clean.between(start="2024-07-01")
    honest = roc_auc_score(test.y, churn_model(train).predict_proba(test.X)[:, 1])
    assert 0.75 <= honest <= 0.85, honest
    leaky = case.between(end="2024-07-01"), case.between("2024-07-01", CLEAN_END)
    assert roc_auc_score(leaky[1].y, churn_model(leaky[0]).predict_proba(leaky[1].X)[:, 1]) > 0.98
    model, threshold = churn_model(clean), 50 / 550

    def scores(data):
        probability, churned = model.predict_proba(data.frame[clean.features])[:, 1], data.y.to_numpy() == 1
        offered = probability > threshold
        cost = 50 * (offered & ~churned).sum() + 500 * (~offered & churned).sum()
        return roc_auc_score(churned, probability), (offered & churned).sum() / churned.sum(), cost / len(churned)
    auc_before, recall_before, cost_before = scores(case.between("2025-07-01", "2025-09-01"))
    auc_after, recall_after, cost_after = scores(case.between("2025-09-01"))
    assert auc_before - auc_after > 0.1 and recall_before - recall_after > 0.1 and cost_after > 1.3 * cost_before


@pytest.mark.parametrize("scenario", list(CASE_STUDY_SCENARIOS))
@pytest.mark.parametrize("seed", [42, 7, 2024])
def test_checks_find_exactly_the_planted_problems_of_the_case_study(seed, scenario):
    "In every scenario, for any seed, the design checks find what its ground truth plants: the exercises ask for it"
    case = load_case_study(seed=seed, scenario=scenario)
    report = quality_report(case, reference=case.between(end="2024-07-01"))
    assert findings(report.violations) == expected_violations(case)
    assert report.leakage.feature.tolist() == case.ground_truth.columns("leakage")
    assert report.duplicates.empty


@pytest.mark.parametrize("seed", [42, 7, 2024])
def test_checks_report_nothing_on_a_clean_sample(seed):
    clean = load_case_study(seed=seed).clean_sample()
    assert quality_report(clean, reference=clean.between(end="2024-04-01")).ok
    sample = clean.clean_sample(n=3_000, seed=seed)
    assert quality_report(sample.frame, reference=clean.frame, target="churned", id_column="customer_id").ok


def test_null_tolerance_absorbs_sampling_noise_around_a_nonzero_reference_rate(case):
    "With a reference that has nulls (~10% and ~6%), monthly null rates vary by sampling alone: nothing to report"
    reference = case.between(CLEAN_END, "2024-12-01").frame
    later = case.between("2024-12-01").frame
    assert findings(check_by_period(later, reference, "month")) == {("2025-02", "monthly_charges", "out_of_range")}


# --- problems planted by the tests -----------------------------------------------------------------------------------

def leak_of(target, rng, flip_share):
    "A column equal to the 0/1 `target` except in `flip_share` of each class, dressed as numbers or as categories"
    leak = target.to_numpy().copy()
    for label in (0, 1):
        rows = np.flatnonzero(leak == label)
        flipped = rng.choice(rows, size=int(flip_share * len(rows)), replace=False)
        leak[flipped] = 1 - label
    if rng.random() < 0.5: return leak * rng.uniform(2, 10) + rng.uniform(0, 1, len(leak))
    return np.where(leak == 1, "yes", "no")


def plant_rows(frame, rng, share, within=None):
    "Index labels of `share` of the rows of `frame` (of those in `within`, if given), at least one"
    pool = frame.index if within is None else frame.index[within]
    return rng.choice(pool, size=max(1, int(np.ceil(share * len(pool)))), replace=False)


@pytest.mark.parametrize("seed", SEEDS)
def test_quality_report_finds_problems_planted_in_clean_case_study_data(case, seed):
    """Planted at random columns and months of the clean period (reference: its first three months), detectable range:
    missing values in >= 2% (up to 50%) of one month's rows of any column; a unit change multiplying >= 5% (up to all)
    of one month's rows of a numeric column by a whole factor in [10, 1000]; an unseen category in >= 1% (up to 30%)
    of one month's rows of a categorical column; 1 to 20 duplicated rows (with new ids); a leak, present in the
    reference too, equal to the target except in <= 1% of each class, as numbers or as categories."""
    rng = np.random.default_rng(seed)
    clean = case.clean_sample()
    frame = clean.frame.copy()
    numeric = [name for name in clean.numerical]
    categories = [name for name in clean.categorical if name != "paperless_billing"]
    unit_column, category_column = rng.choice(numeric), rng.choice(categories)
    missing_column = rng.choice([name for name in clean.features if name not in (unit_column, category_column)])
    leak_column = rng.choice([name for name in clean.features if name not in (unit_column, category_column, missing_column)])
    frame[leak_column] = leak_of(frame.churned, rng, rng.uniform(0, 0.01))
    reference, current = frame[frame.month < "2024-04-01"], frame[frame.month >= "2024-04-01"].copy()
    months = current.month.unique()
    planted_months = rng.choice(months, size=3)
    in_month = lambda index: (current.month == planted_months[index]).to_numpy()
    current[missing_column] = current[missing_column].mask(current.index.isin(plant_rows(current, rng, rng.uniform(0.02, 0.5), in_month(0))))
    unit_rows = plant_rows(current, rng, rng.uniform(0.05, 1.0), in_month(1))
    current.loc[unit_rows, unit_column] = current.loc[unit_rows, unit_column] * int(rng.integers(10, 1_001))
    current.loc[plant_rows(current, rng, rng.uniform(0.01, 0.3), in_month(2)), category_column] = f"unknown-{seed}"
    copies = rng.choice(current.index, size=int(rng.integers(1, 21)), replace=False)
    duplicated = current.loc[copies].assign(customer_id=[f"D{number}" for number in range(len(copies))])
    current = pd.concat([current, duplicated.set_axis(range(100_000, 100_000 + len(copies)))])

    report = quality_report(current, reference=reference, target="churned", time_column="month", id_column="customer_id")
    month_text = lambda index: pd.Timestamp(planted_months[index]).strftime("%Y-%m")
    assert findings(report.violations) == {(month_text(0), missing_column, "null_rate"),
                                           (month_text(1), unit_column, "out_of_range"),
                                           (month_text(2), category_column, "unseen_category")}
    assert report.leakage.feature.tolist() == [leak_column]
    assert report.duplicates.values.tolist() == [[100_000 + number, source] for number, source in enumerate(copies)]


@pytest.mark.parametrize("seed", SEEDS)
def test_validation_finds_problems_planted_in_real_data(cancer, seed):
    """Breast cancer data (no dates, no categorical column, so no period and no unseen category). Reference: the whole
    dataset; current: a random 50-100% of its rows. Detectable range: missing values in >= 2% (up to 50%) of the rows
    of any column; a unit change multiplying >= 5% (up to all) of the rows of another column by a whole factor in
    [100, 1000]. (A factor of 10 is not always detectable by a range check here: 'area error' has a maximum 22 times
    its median, so most of its values times 10 stay inside the reference range.)"""
    rng = np.random.default_rng(seed)
    current = cancer.frame.sample(frac=rng.uniform(0.5, 1.0), random_state=seed)
    missing_column, unit_column = rng.choice(cancer.features, size=2, replace=False)
    current[missing_column] = current[missing_column].mask(current.index.isin(plant_rows(current, rng, rng.uniform(0.02, 0.5))))
    unit_rows = plant_rows(current, rng, rng.uniform(0.05, 1.0))
    current.loc[unit_rows, unit_column] = current.loc[unit_rows, unit_column] * int(rng.integers(100, 1_001))
    assert findings(validate(current, cancer.frame)) == {(missing_column, "null_rate"), (unit_column, "out_of_range")}
    assert findings(validate(cancer.frame.sample(frac=0.7, random_state=seed), cancer.frame)) == set()


@pytest.mark.parametrize("dataset", ["case_study", "breast_cancer"])
@pytest.mark.parametrize("seed", SEEDS)
def test_leakage_screen_finds_a_planted_leak_and_only_it(case, cancer, dataset, seed):
    """A random feature replaced by a leak equal to the target except in <= 1% of each class (ROC AUC >= 0.99, the
    threshold is 0.98); breast cancer's best honest feature reaches 0.975 and must not be flagged."""
    rng = np.random.default_rng(seed)
    data = case.clean_sample() if dataset == "case_study" else cancer
    frame = data.frame.copy()
    leak_column = rng.choice(data.features)
    frame[leak_column] = leak_of(frame[data.target], rng, rng.uniform(0, 0.01))
    suspicious = screen_leakage(frame, data.target, features=data.features)
    assert suspicious.feature.tolist() == [leak_column]
    assert suspicious.score[0] >= 0.98 and "check that its value is known before the outcome" in suspicious.message[0]


@pytest.mark.parametrize("dataset", ["case_study", "breast_cancer"])
@pytest.mark.parametrize("seed", SEEDS)
def test_duplicates_found_exactly(case, cancer, dataset, seed):
    "1 to 20 random rows copied at the end (with a new id in the case study): each copy found, with its original"
    rng = np.random.default_rng(seed)
    data = case.clean_sample() if dataset == "case_study" else cancer
    sources = rng.choice(data.frame.index, size=int(rng.integers(1, 21)), replace=False)
    copies = data.frame.loc[sources].set_axis(range(-1, -len(sources) - 1, -1))
    if data.id_column: copies[data.id_column] = [f"copy-{number}" for number in range(len(sources))]
    found = find_duplicates(pd.concat([data.frame, copies]), ignore=data.id_column)
    assert found.values.tolist() == [[-1 - number, source] for number, source in enumerate(sources)]
    assert find_duplicates(data.frame, ignore=data.id_column).empty



@pytest.mark.parametrize("seed", [7, 42])
def test_a_dataset_stands_for_its_frame(seed):
    case = load_case_study(seed=seed)
    clean = case.clean_sample(2_000, seed=0)
    schema = infer_schema(clean)
    assert schema == infer_schema(clean.frame)
    assert schema.validate(case.clean_sample(1_000, seed=1)).empty and validate(clean, schema).empty
    assert check_by_period(clean, schema, "month").empty and find_duplicates(clean, ignore="customer_id").empty
    assert single_feature_scores(clean, "churned").feature.tolist() == single_feature_scores(clean.frame, "churned").feature.tolist()


# --- the real datasets -----------------------------------------------------------------------------------------------

def test_real_datasets(cancer):
    assert cancer.frame.shape == (569, 31) and cancer.target == "malignant" and cancer.y.sum() == 212
    assert cancer.time_column is None and cancer.categorical == [] and len(cancer.numerical) == 30
    assert fingerprint(load_real_dataset("breast_cancer").frame) == fingerprint(cancer.frame)
    wine = load_real_dataset("wine")
    assert wine.frame.shape == (178, 14) and sorted(wine.y.unique()) == [0, 1, 2]
    assert set(REAL_DATASETS) == {"breast_cancer", "wine", "diabetes"}
    assert quality_report(wine).skipped == {"schema": "no reference given"}  # three cultivars are screened, not skipped


def test_single_feature_scores_on_real_data(cancer):
    scores = single_feature_scores(cancer.frame, "malignant")
    assert scores.feature[0] == "worst perimeter" and 0.97 < scores.score[0] < 0.98
    assert screen_leakage(cancer.frame, "malignant").empty


# --- issue 13: the `case-study` and `check-data` commands, run as a user runs them -------------------------------------

import hashlib, subprocess, sys
from pathlib import Path

COMMAND = str(Path(sys.executable).parent / "mlops-kit")


def run_command(*arguments, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([COMMAND, *arguments], capture_output=True, text=True, cwd=cwd, timeout=300)


def hashes(folder:Path)->dict:
    "sha256 of every file under `folder`, by relative path: what a refused command must leave as it was"
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def workspace(tmp_path) -> Path:
    "A folder with a small data file, a read-only file, an empty file, a header-only file and a sub-folder"
    (tmp_path / "churn.csv").write_text("customer_id,month,plan,churned\nC1,2024-01-01,basic,0\nC2,2024-02-01,premium,1\n")
    (tmp_path / "notes.csv").write_text("my own notes")
    (tmp_path / "locked.csv").write_text("kept as it is")
    (tmp_path / "locked.csv").chmod(0o444)
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("customer_id,month,plan,churned\n")
    (tmp_path / "folder").mkdir()
    return tmp_path


@pytest.mark.parametrize("arguments, message", [
    (["case-study", "churn.csv", "--ground-truth", "churn.csv"], "OUTPUT and --ground-truth name the same file (churn.csv)"),
    (["case-study", "churn.csv", "--ground-truth", "./churn.csv", "--overwrite"], "OUTPUT and --ground-truth name the same file"),
    (["case-study", "new.csv", "--ground-truth", "folder/../new.csv"], "OUTPUT and --ground-truth name the same file"),
    (["case-study", "churn.csv"], "churn.csv exists already: choose another file name or remove it first, or pass --overwrite"),
    (["case-study", "new.csv", "--ground-truth", "notes.csv"], "notes.csv exists already"),
    (["case-study", "locked.csv", "--overwrite"], "locked.csv: is read-only: it is kept as it is, even with --overwrite"),
    (["case-study", "folder", "--overwrite"], "folder: is a folder, not a file"),
    (["case-study", "new.csv", "--ground-truth", "folder"], "folder: is a folder, not a file"),
    (["case-study", "missing/new.csv"], "missing: no such folder to write new.csv into"),
    (["case-study", "new.csv", "--seed", "-1"], "`seed` must be a whole number from 0 to 4,294,967,295, got -1"),
    (["case-study", "new.csv", "--seed", "4294967296"], "`seed` must be a whole number from 0 to 4,294,967,295"),
    (["case-study", "new.csv", "--seed", "forty-two"], "invalid int value: 'forty-two'"),
    (["check-data", "churn.csv", "absent.csv"], "absent.csv: no such file"),
    (["check-data", "churn.csv", "folder"], "folder: is a folder, not a CSV file"),
    (["check-data", "churn.csv", "empty.csv"], "empty.csv is not a readable CSV file"),
    (["check-data", "churn.csv", "header.csv"], "header.csv has no rows of data, only a header"),
    (["check-data", "notes.csv", "churn.csv"], "notes.csv has no rows of data"),
    (["check-data", "churn.csv", "churn.csv", "--target", "churn"], "--target 'churn' is not a column of churn.csv; its columns are"),
    (["check-data", "churn.csv", "churn.csv", "--time-column", "when"], "--time-column 'when' is not a column of churn.csv"),
    (["check-data", "churn.csv", "churn.csv", "--id-column", "id"], "--id-column 'id' is not a column of churn.csv"),
    (["check-data", "churn.csv", "churn.csv", "--time-column", "plan"], "--time-column 'plan' of churn.csv does not hold dates"),
    (["check-data", "churn.csv", "churn.csv", "--target", "churned", "--id-column", "churned"], "must name different columns"),
])
def test_data_commands_refuse_bad_arguments_in_one_line_and_write_nothing(workspace, arguments, message):
    before = hashes(workspace)
    result = run_command(*arguments, cwd=workspace)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert hashes(workspace) == before  # nothing written, nothing changed, nothing left behind


def test_case_study_overwrites_only_with_overwrite_and_writes_both_files(workspace):
    before = hashes(workspace)
    result = run_command("case-study", "churn.csv", "--ground-truth", "notes.csv", "--seed", "3", "--overwrite", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(workspace / "churn.csv").shape == load_case_study(seed=3).frame.shape
    assert set(pd.read_csv(workspace / "notes.csv").kind) == set(PROBLEM_KINDS)
    after = hashes(workspace)
    assert {name for name in after if after[name] != before.get(name)} == {"churn.csv", "notes.csv"}  # no temporary file left


# --- issue 14: leakage screening and the quality report for every task ------------------------------------------------

from mlops_kit.data import TASKS


def in_words(cancer):
    "Breast cancer with its diagnosis as words, 'malignant' (the class to find) or 'benign'"
    frame = cancer.frame.assign(diagnosis=cancer.y.map({1: "malignant", 0: "benign"})).drop(columns="malignant")
    return Dataset(frame, "diagnosis", cancer.features, positive_label="malignant", name="breast cancer in words")


def noisy_copy(data, rng):
    """A copy of `data`'s target with a little noise: numbers plus 2% of their spread (regression); else labels with up
    to 1% of the rows given another class, dressed as numbers (class codes, scaled, with noise) or as text"""
    target = data.y
    if data.task == "regression": return target.to_numpy(float) + rng.normal(0, 0.02 * target.std(), len(target))
    codes = pd.Categorical(target, categories=data.classes).codes.astype(int)
    changed = rng.choice(len(codes), size=int(rng.uniform(0, 0.01) * len(codes)), replace=False)
    codes[changed] = (codes[changed] + rng.integers(1, len(data.classes), len(changed))) % len(data.classes)
    if rng.random() < 0.5: return codes * rng.uniform(2, 10) + rng.uniform(0, 1, len(codes))
    return np.asarray([f"code {code}" for code in codes])


def with_leak(data, rng):
    "`data` with one more feature, 'lab_result', a noisy copy of its target"
    frame = data.frame.assign(lab_result=noisy_copy(data, rng))
    return Dataset(frame, data.target, [*data.features, "lab_result"], name=data.name, task=data.task, positive_label=data.positive_label)


@pytest.fixture(scope="module")
def task_datasets(cancer, wine, diabetes):
    return {"wine": wine, "diabetes": diabetes, "breast cancer in words": in_words(cancer)}


@pytest.mark.parametrize("name", ["wine", "diabetes", "breast cancer in words"])
@pytest.mark.parametrize("seed", range(5))
def test_screening_finds_a_leak_planted_in_any_task_and_nothing_else(task_datasets, name, seed):
    data = with_leak(task_datasets[name], np.random.default_rng(seed))
    suspicious = screen_leakage(data, data.target, features=data.features)
    assert suspicious.feature.tolist() == ["lab_result"], suspicious
    measure = {"binary": "ROC AUC", "multiclass": "macro ROC AUC (each class against the rest)", "regression": "Spearman |rho|"}[data.task]
    assert suspicious.measure[0] == measure and suspicious.score[0] >= 0.98 and measure in suspicious.message[0]
    report = quality_report(data, reference=data.frame)
    assert report.leakage.feature.tolist() == ["lab_result"] and report.violations.empty and report.duplicates.empty
    assert quality_report(data.frame, target=data.target).leakage.feature.tolist() == ["lab_result"]  # the task read from the frame


@pytest.mark.parametrize("name, task, best, low, high", [
    ("wine", "multiclass", "flavanoids", 0.85, 0.95), ("diabetes", "regression", "s5", 0.55, 0.65),
    ("breast cancer in words", "binary", "worst perimeter", 0.97, 0.98)])
def test_honest_features_score_on_the_tasks_scale_below_the_threshold(task_datasets, name, task, best, low, high):
    data = task_datasets[name]
    scores = single_feature_scores(data, data.target)
    assert data.task == task and scores.feature[0] == best and low < scores.score[0] < high
    assert quality_report(data).ok and screen_leakage(data, data.target).empty


def test_labels_and_the_positive_class_do_not_change_the_binary_scores(cancer):
    words = in_words(cancer)
    numbers = single_feature_scores(cancer, "malignant")
    for scores in (single_feature_scores(words, "diagnosis"), single_feature_scores(words.frame, "diagnosis", positive_label="benign")):
        np.testing.assert_allclose(scores.score.to_numpy(), numbers.score.to_numpy())
        assert scores.feature.tolist() == numbers.feature.tolist()


@pytest.fixture
def task_files(tmp_path, task_datasets):
    "CSV files of the wine and diabetes data with a planted leak, and of breast cancer in words, and a read-only copy"
    rng = np.random.default_rng(7)
    for name, data in task_datasets.items():
        with_leak(data, rng).frame.to_csv(tmp_path / f"{name.replace(' ', '_')}.csv", index=False)
    (tmp_path / "wine.csv").chmod(0o444)
    return tmp_path


@pytest.mark.parametrize("name, target, task, measure", [
    ("wine", "cultivar", None, "macro ROC AUC"), ("diabetes", "progression", None, "Spearman |rho|"),
    ("breast_cancer_in_words", "diagnosis", None, "with ROC AUC"), ("breast_cancer_in_words", "diagnosis", "multiclass", "macro ROC AUC"),
    ("diabetes", "progression", "regression", "Spearman |rho|")])
def test_check_data_screens_every_task_and_finds_the_planted_leak(task_files, name, target, task, measure):
    before = hashes(task_files)
    result = run_command("check-data", f"{name}.csv", f"{name}.csv", "--target", target, *(["--task", task] if task else []), cwd=task_files)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "possible leakage" in result.stdout and "lab_result" in result.stdout
    assert measure in result.stdout.replace("\n", " ")
    assert hashes(task_files) == before


@pytest.mark.parametrize("arguments, message", [
    (["--target", "diagnosis", "--task", "regression"], "a regression target holds numbers, but 'diagnosis' holds"),
    (["--target", "cultivar", "--task", "binary"], "a binary target holds two labels, but 'cultivar' holds 3: use task='multiclass'"),
    (["--task", "binary"], "--task says what the target holds: give --target too"),
    (["--target", "diagnosis", "--task", "ordinal"], "argument --task: invalid choice: 'ordinal'"),
])
def test_check_data_refuses_a_task_that_does_not_fit_and_writes_nothing(task_files, arguments, message):
    before = hashes(task_files)
    data = "wine.csv" if "cultivar" in arguments else "breast_cancer_in_words.csv"
    result = run_command("check-data", data, data, *arguments, cwd=task_files)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert hashes(task_files) == before


def test_the_commands_tasks_are_the_librarys():
    from mlops_kit.cli import _TASK_CHOICES
    assert _TASK_CHOICES == TASKS
